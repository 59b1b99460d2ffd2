"""Rules that name the scheme, over real HTTP (issue 20): a JWT subject is not a signing key's principal.

``pyservice serve`` with two workers, signed requests (Redis nonce store)
and JWTs accepted, and an operation allowed to ``signed:signer`` only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from identity_service import AUDIENCE, ISSUER, JWT_SECRET, SIGNING_SECRET
from pyservice import Client
from pyservice_auth import Auth

HERE = Path(__file__).parent


def _bearer(subject: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": subject, "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + 300}
    return {"Authorization": f"Bearer {jwt.encode(claims, JWT_SECRET, algorithm='HS256', headers={'kid': 'hs'})}"}


def _server(live_server: Any, redis_url: str, redis_prefix: str, allow: list[str]) -> Any:
    env = {"AUTH_REDIS_URL": redis_url, "AUTH_REDIS_PREFIX": redis_prefix, "AUTH_ALLOW": json.dumps(allow)}
    return live_server("identity_service:service", workers=2, cwd=HERE, env=env, start_timeout=20)


def test_a_jwt_whose_subject_is_the_signing_keys_principal_is_not_that_principal(
    live_server: Any, redis_url: str, redis_prefix: str
) -> None:
    server = _server(live_server, redis_url, redis_prefix, ["signed:signer"])
    answer = requests.post(f"{server.url}/api/v1/signer_only", json={}, headers=_bearer("signer"), timeout=10)
    assert answer.status_code == 403
    signer = Client(
        available_plugins=[Auth],
        name="ident",
        operations=["signer_only"],
        endpoint={"port": server.port},
        plugins={"auth": {"mode": "signed", "key_id": "signer", "secret": SIGNING_SECRET}},
    )
    with signer:
        assert signer.signer_only().identity == "signed:signer"


def test_a_rule_naming_the_jwt_scheme_admits_the_subject_and_not_the_signing_key(
    live_server: Any, redis_url: str, redis_prefix: str
) -> None:
    server = _server(live_server, redis_url, redis_prefix, ["jwt:signer"])
    answer = requests.post(f"{server.url}/api/v1/signer_only", json={}, headers=_bearer("signer"), timeout=10)
    assert (answer.status_code, answer.json()) == (200, {"identity": "jwt:signer"})
    signer = Client(
        available_plugins=[Auth],
        name="ident",
        operations=["signer_only"],
        endpoint={"port": server.port},
        plugins={"auth": {"mode": "signed", "key_id": "signer", "secret": SIGNING_SECRET}},
    )
    with signer, pytest.raises(signer.exceptions.Forbidden):
        signer.signer_only()


def test_a_bare_principal_rule_with_two_schemes_refuses_to_start(
    live_server: Any, redis_url: str, redis_prefix: str
) -> None:
    with pytest.raises(RuntimeError, match=r"'principal:signer' matches that id proved by any of the modes"):
        _server(live_server, redis_url, redis_prefix, ["principal:signer"])
