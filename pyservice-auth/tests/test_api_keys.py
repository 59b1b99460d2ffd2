"""API keys: stored as peppered hashes, looked up by prefix, rotated with overlap."""

from __future__ import annotations

import hmac
import time
from typing import Any

import pytest
from auth_helpers import PEPPER, make_service, refusal, wsgi_call
from pyservice import ApiError
from pyservice.testing import client_for
from pyservice_auth import Auth, Unauthenticated, generate_api_key, hash_api_key_secret, split_api_key
from pyservice_auth.__main__ import main

UNAUTHENTICATED = ("Unauthenticated", "authentication failed")


def key_service(*keys: Any, **auth: Any) -> Any:
    api_keys = {}
    for generated, principal, extra in keys:
        api_keys[generated.prefix] = {"hash": generated.hash, "principal": principal, **extra}
    config = {"mode": "api_key", "api_keys": api_keys, "pepper": PEPPER, "allow": ["authenticated"], **auth}
    return make_service(config)


def test_a_generated_key_is_accepted_with_its_principal_and_roles() -> None:
    generated = generate_api_key(PEPPER)
    service = key_service((generated, "svc-b", {"roles": ["reader"]}))
    status, answer, _ = wsgi_call(service, headers={"Authorization": f"ApiKey {generated.key}"})
    assert (status, answer["principal"], answer["roles"], answer["caller"]) == (200, "svc-b", ["reader"], "svc-b")


def test_the_client_plugin_sends_its_api_key() -> None:
    generated = generate_api_key(PEPPER)
    service = key_service((generated, "svc-b", {}))
    api = {**service.api.raw, "plugins": {"auth": {"mode": "api_key", "api_key": generated.key}}}
    assert client_for(service, api, available_plugins=[Auth]).echo().principal == "svc-b"


def test_the_stored_hash_is_the_hmac_of_the_secret_under_the_pepper() -> None:
    generated = generate_api_key(PEPPER, prefix="orders")
    prefix, secret = generated.key.split(".", 1)
    assert prefix == "orders"
    assert generated.hash == hmac.new(PEPPER.encode(), secret.encode(), "sha256").hexdigest()
    assert generated.key not in repr(generated)


def test_a_wrong_secret_is_refused() -> None:
    generated = generate_api_key(PEPPER)
    service = key_service((generated, "svc-b", {}))
    wrong = generated.prefix + "." + "x" * 43
    status, answer, _ = wsgi_call(service, headers={"Authorization": f"ApiKey {wrong}"})
    assert (status, refusal(answer)) == (401, UNAUTHENTICATED)


def test_an_unknown_prefix_is_refused() -> None:
    generated = generate_api_key(PEPPER)
    service = key_service((generated, "svc-b", {}))
    other = generated.key.replace(generated.prefix, "unknown", 1)
    assert wsgi_call(service, headers={"Authorization": f"ApiKey {other}"})[0] == 401


@pytest.mark.parametrize("value", ["ApiKey", "ApiKey nodot", "ApiKey a.short", "ApiKey a.b c", "ApiKey .x" + "y" * 40])
def test_a_malformed_api_key_is_refused(value: str) -> None:
    service = key_service((generate_api_key(PEPPER), "svc-b", {}))
    assert wsgi_call(service, headers={"Authorization": value})[0] == 401


def test_a_key_hashed_with_another_pepper_is_refused() -> None:
    generated = generate_api_key("another-pepper-0123456789abcdef0123456789")
    service = key_service((generated, "svc-b", {}))
    assert wsgi_call(service, headers={"Authorization": f"ApiKey {generated.key}"})[0] == 401


def test_both_keys_are_valid_during_a_rotation_and_the_old_one_stops_at_its_expiry() -> None:
    old, new = generate_api_key(PEPPER), generate_api_key(PEPPER)
    now = [time.time()]
    service = key_service((old, "svc-b", {"expires": now[0] + 60}), (new, "svc-b", {}), clock=lambda: now[0])
    for generated in (old, new):
        assert wsgi_call(service, headers={"Authorization": f"ApiKey {generated.key}"})[1]["principal"] == "svc-b"
    now[0] += 61
    assert wsgi_call(service, headers={"Authorization": f"ApiKey {old.key}"})[0] == 401
    assert wsgi_call(service, headers={"Authorization": f"ApiKey {new.key}"})[0] == 200


def test_api_key_hashes_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    generated = generate_api_key(PEPPER)
    service = key_service((generated, "svc-b", {}))
    compared: list[Any] = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append(b) or real(a, b))
    wrong = generated.prefix + "." + "x" * 43
    assert wsgi_call(service, headers={"Authorization": f"ApiKey {wrong}"})[0] == 401
    # The stored hash, as the bytes it is decoded to at start-up.
    assert compared == [bytes.fromhex(generated.hash)]


def test_the_pepper_is_read_from_the_environment_variable_the_config_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_AUTH_PEPPER", PEPPER)
    generated = generate_api_key(PEPPER)
    service = key_service((generated, "svc-b", {}), pepper=None, pepper_env="TEST_AUTH_PEPPER")
    assert wsgi_call(service, headers={"Authorization": f"ApiKey {generated.key}"})[0] == 200


def test_an_unset_pepper_variable_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_AUTH_PEPPER", raising=False)
    with pytest.raises(ApiError, match=r"pepper_env.*'TEST_AUTH_PEPPER'.*unset or empty"):
        key_service((generate_api_key(PEPPER), "svc-b", {}), pepper=None, pepper_env="TEST_AUTH_PEPPER")


def test_a_short_pepper_fails_at_start_up() -> None:
    with pytest.raises(ApiError, match=r"pepper.*at least 32 bytes"):
        key_service((generate_api_key(PEPPER), "svc-b", {}), pepper="short")


def test_a_plain_key_in_place_of_a_hash_fails_at_start_up() -> None:
    api_keys = {"svc": {"hash": "svc.not-a-hash", "principal": "svc-b"}}
    with pytest.raises(ApiError, match=r"expected 'hash' as 64 hex digits"):
        make_service({"mode": "api_key", "api_keys": api_keys, "pepper": PEPPER})


def test_the_client_refuses_an_api_key_variable_that_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_AUTH_KEY", raising=False)
    service = key_service((generate_api_key(PEPPER), "svc-b", {}))
    api = {**service.api.raw, "plugins": {"auth": {"mode": "api_key", "api_key_env": "TEST_AUTH_KEY"}}}
    with pytest.raises(ApiError, match=r"api_key_env.*TEST_AUTH_KEY"):
        client_for(service, api, available_plugins=[Auth])


def test_the_client_raises_unauthenticated_for_a_revoked_key() -> None:
    revoked = generate_api_key(PEPPER)
    service = key_service((generate_api_key(PEPPER), "svc-b", {}))
    api = {**service.api.raw, "plugins": {"auth": {"mode": "api_key", "api_key": revoked.key}}}
    with pytest.raises(Unauthenticated):
        client_for(service, api, available_plugins=[Auth]).echo()


def test_split_api_key_takes_the_prefix_before_the_first_dot() -> None:
    assert split_api_key("abc." + "s" * 32) == ("abc", "s" * 32)
    assert split_api_key("abc." + "s" * 31) is None
    assert split_api_key("a.b." + "s" * 32) is None


def test_the_command_line_prints_a_key_and_its_config_entry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEST_AUTH_PEPPER", PEPPER)
    assert main(["api-key", "--pepper-env", "TEST_AUTH_PEPPER", "--prefix", "billing", "--principal", "svc-c"]) == 0
    output = capsys.readouterr().out
    key = output.split("): ", 1)[1].split("\n", 1)[0]
    prefix, secret = key.split(".", 1)
    assert prefix == "billing"
    assert f'"hash": "{hash_api_key_secret(PEPPER, secret)}"' in output
    assert '"principal": "svc-c"' in output


def test_the_command_line_refuses_an_unset_pepper_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TEST_AUTH_PEPPER", raising=False)
    assert main(["api-key", "--pepper-env", "TEST_AUTH_PEPPER"]) == 2
    assert "TEST_AUTH_PEPPER" in capsys.readouterr().err
