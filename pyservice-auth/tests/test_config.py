"""Bad config fails at start-up, naming the key; secrets never appear in messages or descriptions."""

from __future__ import annotations

from typing import Any

import pytest
from auth_helpers import KEY_ID, SECRET, make_service, signed_service
from pyservice import ApiError
from pyservice.testing import client_for
from pyservice_auth import Auth


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, r"plugins.auth.mode.*is required"),
        ({"mode": "password"}, r"plugins.auth.mode.*expected 'none', or one or more distinct modes"),
        ({"mode": ["signed", "signed"]}, r"distinct modes"),
        ({"mode": "signed"}, r"plugins.auth.keys.*needs at least one signing key"),
        ({"mode": "api_key", "pepper": "p" * 40}, r"plugins.auth.api_keys.*needs at least one API key"),
        ({"mode": "jwt"}, r"plugins.auth.jwt.*needs the 'jwt' settings"),
        ({"mode": "signed", "keys": {KEY_ID: "short"}}, r"at least 32 bytes"),
        ({"mode": "signed", "keys": {"bad id": SECRET}}, r"expected key ids"),
        ({"mode": "signed", "keys": {KEY_ID: {"secret": SECRET, "secret_env": "X"}}}, r"exactly one of"),
        ({"mode": "signed", "keys": {KEY_ID: {"secret": SECRET, "color": "red"}}}, r"unknown key 'color'"),
        ({"mode": "signed", "keys": {KEY_ID: SECRET}, "max_skew": 0}, r"max_skew.*from 1 to 3600"),
        ({"mode": "signed", "keys": {KEY_ID: SECRET}, "nonce_store": "disk"}, r"expected 'memory', 'redis'"),
        ({"mode": "signed", "keys": {KEY_ID: SECRET}, "nonce_store": "redis"}, r"redis_url.*needs a redis_url"),
        ({"mode": "signed", "keys": {KEY_ID: {"secret": SECRET, "expires": "tomorrow"}}}, r"expires"),
        ({"mode": "none", "colour": 1}, r"plugins.auth.colour.*unknown key"),
    ],
)
def test_bad_config_fails_at_start_up(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiError, match=message):
        make_service(config)


def test_a_signing_secret_variable_that_is_unset_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_AUTH_SECRET", raising=False)
    with pytest.raises(ApiError, match=r"keys.svc-a.*'TEST_AUTH_SECRET'.*unset or empty"):
        signed_service(keys={KEY_ID: {"secret_env": "TEST_AUTH_SECRET"}})


def test_a_short_secret_is_not_shown_in_the_error() -> None:
    with pytest.raises(ApiError) as caught:
        make_service({"mode": "signed", "keys": {KEY_ID: "hunter2-secret"}})
    assert "hunter2" not in str(caught.value)


def test_secrets_are_masked_in_the_chain_description() -> None:
    service = signed_service()
    description = service.describe_chain("echo", verbose=True)
    assert "plugin auth" in description
    assert SECRET not in description


@pytest.mark.parametrize(
    ("client_config", "message"),
    [
        ({"mode": "signed"}, r"exactly one credential.*got none"),
        ({"mode": "signed", "secret": SECRET}, r"needs both key_id and secret"),
        ({"mode": "api_key", "key_id": KEY_ID, "secret": SECRET}, r"credential is for 'signed'"),
        ({"mode": "none", "key_id": KEY_ID, "secret": SECRET}, r"mode 'none' with signed credentials"),
        ({"mode": "signed", "key_id": KEY_ID, "secret": SECRET, "api_key": "a." + "b" * 32}, r"exactly one"),
    ],
)
def test_a_client_without_exactly_one_usable_credential_fails_at_start_up(
    client_config: dict[str, Any], message: str
) -> None:
    service = signed_service()
    api = {**service.api.raw, "plugins": {"auth": client_config}}
    with pytest.raises(ApiError, match=message):
        client_for(service, api, available_plugins=[Auth])


def test_a_client_api_key_that_is_malformed_is_not_shown_in_the_error() -> None:
    service = signed_service()
    api = {**service.api.raw, "plugins": {"auth": {"mode": "api_key", "api_key": "leaky-value"}}}
    with pytest.raises(ApiError) as caught:
        client_for(service, api, available_plugins=[Auth])
    assert "leaky-value" not in str(caught.value)


def test_the_plugin_is_installed_under_its_entry_point() -> None:
    from pyservice import installed_plugins

    assert any(plugin.name == "auth" and plugin.value == "pyservice_auth:Auth" for plugin in installed_plugins())
