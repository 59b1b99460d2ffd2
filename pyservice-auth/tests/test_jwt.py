"""Bearer tokens: pinned algorithms, required claims, bounded leeway."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from auth_helpers import make_service, refusal, wsgi_call
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pyservice import ApiError
from pyservice.testing import client_for
from pyservice_auth import Auth, Unauthenticated

ISSUER = "https://issuer.test"
AUDIENCE = "orders"
HS_SECRET = "jwt-hs-secret-0123456789abcdef0123456789ab"


def _pem(key: Any, private: bool) -> str:
    if private:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def rsa_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> Any:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def service(rsa_key: Any, ec_key: Any) -> Any:
    return jwt_service(rsa_key, ec_key)


def jwt_service(rsa_key: Any, ec_key: Any, **settings: Any) -> Any:
    jwt_config = {
        "keys": {
            "rsa-1": {"algorithm": "RS256", "key": _pem(rsa_key, private=False)},
            "ec-1": {"algorithm": "ES256", "key": _pem(ec_key, private=True)},
            "hs-1": {"algorithm": "HS256", "key": HS_SECRET},
        },
        "audience": AUDIENCE,
        "issuer": ISSUER,
        **settings,
    }
    return make_service({"mode": "jwt", "jwt": jwt_config, "allow": ["authenticated"]})


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "svc-d", "aud": AUDIENCE, "iss": ISSUER, "exp": now + 300, "iat": now, "roles": ["reader"]}
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def token(key: Any, algorithm: str = "RS256", kid: str | None = "rsa-1", **changes: Any) -> str:
    headers = {} if kid is None else {"kid": kid}
    return jwt.encode(claims(**changes), key, algorithm=algorithm, headers=headers)


def bearer(service: Any, value: str) -> tuple[int, dict[str, Any]]:
    status, answer, _ = wsgi_call(service, headers={"Authorization": f"Bearer {value}"})
    return status, answer


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_an_rs256_token_is_accepted_with_its_subject_and_roles(service: Any, rsa_key: Any) -> None:
    status, answer = bearer(service, token(rsa_key))
    assert (status, answer["principal"], answer["roles"], answer["caller"]) == (200, "svc-d", ["reader"], "svc-d")


def test_an_es256_key_given_as_a_private_key_verifies_tokens(service: Any, ec_key: Any) -> None:
    assert bearer(service, token(ec_key, "ES256", "ec-1"))[0] == 200


def test_an_hs256_token_is_accepted_for_its_hs256_key(service: Any) -> None:
    assert bearer(service, token(HS_SECRET, "HS256", "hs-1"))[0] == 200


def test_the_client_sends_its_token(service: Any, rsa_key: Any) -> None:
    api = {**service.api.raw, "plugins": {"auth": {"mode": "jwt", "token": token(rsa_key)}}}
    assert client_for(service, api, available_plugins=[Auth]).echo().principal == "svc-d"


def test_the_client_asks_its_token_provider_on_every_attempt(service: Any, rsa_key: Any) -> None:
    calls: list[int] = []

    def provider() -> str:
        calls.append(1)
        return token(rsa_key)

    api = {**service.api.raw, "plugins": {"auth": {"mode": "jwt", "token_provider": provider}}}
    client = client_for(service, api, available_plugins=[Auth])
    client.echo()
    client.echo()
    assert len(calls) == 2


def test_alg_none_is_refused(service: Any) -> None:
    unsigned = _b64({"alg": "none", "kid": "rsa-1", "typ": "JWT"}) + "." + _b64(claims()) + "."
    assert bearer(service, unsigned)[0] == 401
    assert bearer(service, unsigned + "AAAA")[0] == 401


def test_an_hs256_token_signed_with_the_rs_public_key_is_refused(service: Any, rsa_key: Any) -> None:
    public_pem = _pem(rsa_key, private=False).encode()
    header = _b64({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"})
    payload = _b64(claims())
    import hashlib
    import hmac

    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    status, answer = bearer(service, forged)
    assert (status, refusal(answer)) == (401, ("Unauthenticated", "authentication failed"))


def test_a_token_signed_with_another_keys_algorithm_is_refused(service: Any) -> None:
    assert bearer(service, token(HS_SECRET, "HS256", "rsa-1"))[0] == 401


def test_a_token_without_exp_is_refused(service: Any, rsa_key: Any) -> None:
    assert bearer(service, token(rsa_key, exp=None))[0] == 401


@pytest.mark.parametrize("change", [{"aud": "billing"}, {"aud": None}, {"iss": "https://evil.test"}, {"iss": None}])
def test_a_wrong_or_missing_audience_or_issuer_is_refused(service: Any, rsa_key: Any, change: Any) -> None:
    assert bearer(service, token(rsa_key, **change))[0] == 401


def test_a_token_without_a_subject_is_refused(service: Any, rsa_key: Any) -> None:
    assert bearer(service, token(rsa_key, sub=None))[0] == 401


def test_an_expired_token_is_refused(service: Any, rsa_key: Any) -> None:
    assert bearer(service, token(rsa_key, exp=int(time.time()) - 5))[0] == 401


def test_a_token_not_yet_valid_is_refused(service: Any, rsa_key: Any) -> None:
    assert bearer(service, token(rsa_key, nbf=int(time.time()) + 120))[0] == 401


def test_leeway_accepts_a_token_expired_within_it_and_refuses_one_beyond(rsa_key: Any, ec_key: Any) -> None:
    service = jwt_service(rsa_key, ec_key, leeway=60)
    now = int(time.time())
    assert bearer(service, token(rsa_key, exp=now - 30))[0] == 200
    assert bearer(service, token(rsa_key, exp=now - 90))[0] == 401


def test_a_leeway_over_60_seconds_is_refused_at_start_up(rsa_key: Any, ec_key: Any) -> None:
    with pytest.raises(ApiError, match=r"jwt.leeway: expected seconds from 0 to 60"):
        jwt_service(rsa_key, ec_key, leeway=61)


@pytest.mark.parametrize("kid", [None, "unknown"])
def test_a_token_without_a_known_kid_is_refused(service: Any, rsa_key: Any, kid: str | None) -> None:
    assert bearer(service, token(rsa_key, kid=kid))[0] == 401


def test_a_token_signed_by_another_key_is_refused(service: Any) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert bearer(service, token(other))[0] == 401


def test_a_token_with_critical_header_extensions_is_refused(service: Any, rsa_key: Any) -> None:
    value = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa-1", "crit": ["exp"]})
    assert bearer(service, value)[0] == 401


def test_a_roles_claim_that_is_not_a_list_of_strings_is_refused(service: Any, rsa_key: Any) -> None:
    assert bearer(service, token(rsa_key, roles="admin"))[0] == 401


def test_a_tampered_payload_is_refused(service: Any, rsa_key: Any) -> None:
    header, _, signature = token(rsa_key).split(".")
    forged = f"{header}.{_b64(claims(sub='admin'))}.{signature}"
    assert bearer(service, forged)[0] == 401


def test_the_client_raises_unauthenticated_for_an_expired_token(service: Any, rsa_key: Any) -> None:
    api = {**service.api.raw, "plugins": {"auth": {"mode": "jwt", "token": token(rsa_key, exp=1)}}}
    with pytest.raises(Unauthenticated):
        client_for(service, api, available_plugins=[Auth]).echo()


def test_an_algorithm_outside_the_allowed_set_is_refused_at_start_up() -> None:
    config = {"keys": {"k": {"algorithm": "none", "key": "x"}}, "audience": AUDIENCE, "issuer": ISSUER}
    with pytest.raises(ApiError, match=r"jwt.keys.k.algorithm: expected one of"):
        make_service({"mode": "jwt", "jwt": config})


def test_a_short_hmac_key_is_refused_at_start_up() -> None:
    config = {"keys": {"k": {"algorithm": "HS256", "key": "short"}}, "audience": AUDIENCE, "issuer": ISSUER}
    with pytest.raises(ApiError, match=r"at least 32 bytes"):
        make_service({"mode": "jwt", "jwt": config})


def test_a_public_key_as_an_hmac_secret_is_refused_at_start_up(rsa_key: Any) -> None:
    pem = _pem(rsa_key, private=False)
    config = {"keys": {"k": {"algorithm": "HS256", "key": pem}}, "audience": AUDIENCE, "issuer": ISSUER}
    with pytest.raises(ApiError, match=r"cannot be used with HS256"):
        make_service({"mode": "jwt", "jwt": config})


def test_an_ec_key_for_an_rsa_algorithm_is_refused_at_start_up(ec_key: Any) -> None:
    config = {
        "keys": {"k": {"algorithm": "RS256", "key": _pem(ec_key, private=False)}},
        "audience": AUDIENCE,
        "issuer": ISSUER,
    }
    with pytest.raises(ApiError, match=r"cannot be used with RS256"):
        make_service({"mode": "jwt", "jwt": config})


def test_a_key_file_is_read_at_start_up(tmp_path: Any, rsa_key: Any) -> None:
    path = tmp_path / "public.pem"
    path.write_text(_pem(rsa_key, private=False))
    config = {"keys": {"rsa-1": {"algorithm": "RS256", "key_file": str(path)}}, "audience": AUDIENCE, "issuer": ISSUER}
    service = make_service({"mode": "jwt", "jwt": config, "allow": ["authenticated"]})
    assert bearer(service, token(rsa_key))[0] == 200


def test_audience_and_issuer_are_required_at_start_up() -> None:
    config = {"keys": {"k": {"algorithm": "HS256", "key": HS_SECRET}}, "issuer": ISSUER}
    with pytest.raises(ApiError, match=r"jwt.audience: required"):
        make_service({"mode": "jwt", "jwt": config})
