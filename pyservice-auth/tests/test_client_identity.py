"""The client's credential identity: what a client-side cache keys on, never the secret (issue 20)."""

from __future__ import annotations

from typing import Any

import pytest
from auth_helpers import PEPPER, SECRET
from pyservice import Client
from pyservice_auth import Auth, generate_api_key
from pyservice_auth._client import credential_identity

ALICE = generate_api_key(PEPPER, prefix="alice").key
BOB = generate_api_key(PEPPER, prefix="bob").key


def test_a_credential_identity_is_a_fingerprint_that_does_not_hold_the_secret() -> None:
    identity = credential_identity("api_key", ALICE)
    secret = ALICE.partition(".")[2]
    assert (identity.kind, identity.scheme) == ("credential", "api_key")
    assert secret not in identity.key
    assert ALICE not in identity.key
    assert len(identity.id or "") == 32


def test_the_same_credential_gives_the_same_identity_and_another_credential_another() -> None:
    assert credential_identity("api_key", ALICE) == credential_identity("api_key", ALICE)
    assert credential_identity("api_key", ALICE) != credential_identity("api_key", BOB)
    assert credential_identity("api_key", ALICE) != credential_identity("jwt", ALICE)


def _seen_identity(auth: dict[str, Any]) -> Any:
    client = Client(available_plugins=[Auth], name="ident", operations=["op"], plugins={"auth": auth})
    seen: list[Any] = []

    # Registered after the plugin's hooks: it runs inside them, where a cache's hook would.
    @client.plugin("operation")
    def capture(request: Any, response: Any, context: Any) -> None:
        seen.append(context.caller_identity)

    client.op()
    return seen[0]


@pytest.mark.parametrize(
    ("auth", "scheme"),
    [
        ({"mode": "api_key", "api_key": ALICE}, "api_key"),
        ({"mode": "signed", "key_id": "k", "secret": SECRET}, "signed"),
        ({"mode": "jwt", "token": "a.b.c"}, "jwt"),
        ({"mode": "jwt", "token_provider": lambda: "a.b.c"}, "jwt"),
    ],
)
def test_each_credential_sets_the_calls_identity_before_the_hooks_inside_the_plugin(
    auth: dict[str, Any], scheme: str
) -> None:
    identity = _seen_identity(auth)
    assert (identity.kind, identity.scheme) == ("credential", scheme)


def test_a_client_without_credentials_names_no_identity() -> None:
    assert _seen_identity({"mode": "none"}) is None
