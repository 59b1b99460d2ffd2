"""Per-operation authorization: deny by default, principals and roles, the principal on the context."""

from __future__ import annotations

from typing import Any

import pytest
from auth_helpers import PEPPER, make_service, refusal, wsgi_call
from pyservice import ApiError
from pyservice.testing import client_for
from pyservice_auth import AllowRule, Auth, Forbidden, Principal, generate_api_key, parse_allow

READER = generate_api_key(PEPPER, prefix="reader")
WRITER = generate_api_key(PEPPER, prefix="writer")
API_KEYS = {
    "reader": {"hash": READER.hash, "principal": "svc-reader", "roles": ["read"]},
    "writer": {"hash": WRITER.hash, "principal": "svc-writer", "roles": ["read", "write"]},
}


def service_with(allow: list[str] | None = None, operations: Any = None) -> Any:
    config: dict[str, Any] = {"mode": "api_key", "api_keys": API_KEYS, "pepper": PEPPER}
    if allow is not None:
        config["allow"] = allow
    return make_service(config, operations=operations)


def as_(key: Any, service: Any, path: str = "/api/v1/echo") -> tuple[int, dict[str, Any]]:
    headers = {} if key is None else {"Authorization": f"ApiKey {key.key}"}
    status, answer, _ = wsgi_call(service, headers=headers, path=path)
    return status, answer


def test_without_rules_an_authenticated_principal_is_forbidden() -> None:
    status, answer = as_(WRITER, service_with())
    assert (status, refusal(answer)) == (403, ("Forbidden", "not allowed"))


def test_without_rules_an_anonymous_call_is_unauthenticated() -> None:
    assert as_(None, service_with())[0] == 401


def test_a_principal_listed_by_id_may_call() -> None:
    service = service_with(["principal:svc-reader"])
    assert as_(READER, service)[0] == 200
    assert as_(WRITER, service)[0] == 403


def test_a_role_listed_lets_its_holders_call() -> None:
    service = service_with(["role:write"])
    assert as_(WRITER, service)[0] == 200
    assert as_(READER, service)[0] == 403


def test_authenticated_lets_any_principal_call_but_not_anonymous_ones() -> None:
    service = service_with(["authenticated"])
    assert (as_(READER, service)[0], as_(WRITER, service)[0], as_(None, service)[0]) == (200, 200, 401)


def test_anonymous_lets_everyone_call_and_still_checks_credentials_given() -> None:
    service = service_with(["anonymous"])
    assert as_(None, service)[1]["principal"] is None
    assert as_(READER, service)[1]["principal"] == "svc-reader"
    bad = wsgi_call(service, headers={"Authorization": "ApiKey reader." + "x" * 43})[0]
    assert bad == 401


def test_operation_rules_override_the_service_wide_rule() -> None:
    operations = {"echo": {}, "other": {"plugins": {"auth": {"allow": ["role:write"]}}}}
    service = service_with(["role:read"], operations)
    assert as_(READER, service, "/api/v1/echo")[0] == 200
    assert as_(READER, service, "/api/v1/other")[0] == 403
    assert as_(WRITER, service, "/api/v1/other")[0] == 200


def test_an_operation_with_the_plugin_switched_off_is_open_and_has_no_principal() -> None:
    operations = {"echo": {}, "other": {"plugins": {"auth": False}}}
    service = service_with([], operations)
    status, answer = as_(None, service, "/api/v1/other")
    assert (status, answer["principal"], answer["caller"]) == (200, None, None)


def test_the_client_raises_forbidden_by_name() -> None:
    service = service_with(["role:write"])
    api = {**service.api.raw, "plugins": {"auth": {"mode": "api_key", "api_key": READER.key}}}
    with pytest.raises(Forbidden, match="not allowed"):
        client_for(service, api, available_plugins=[Auth]).echo()


def test_the_handler_sees_the_principal_and_the_caller() -> None:
    answer = as_(WRITER, service_with(["authenticated"]))[1]
    assert (answer["principal"], answer["roles"], answer["caller"]) == ("svc-writer", ["read", "write"], "svc-writer")


@pytest.mark.parametrize("entry", ["everyone", "principal:", "role:", "*", 3])
def test_an_unknown_allow_entry_fails_at_start_up(entry: Any) -> None:
    with pytest.raises(ApiError, match=r"plugins.auth.allow.*expected entries 'anonymous', 'authenticated'"):
        service_with([entry])


def test_an_unknown_operation_allow_entry_fails_at_start_up() -> None:
    with pytest.raises(ApiError, match=r"operations.other.plugins.auth.allow"):
        service_with([], {"other": {"plugins": {"auth": {"allow": ["admins"]}}}})


def test_allow_rules_match_as_documented() -> None:
    rule = parse_allow(["principal:a", "role:r", "jwt:c"])
    assert rule == AllowRule(principals=frozenset({"a"}), roles=frozenset({"r"}), callers=frozenset({"jwt:c"}))
    assert rule.permits(Principal("a"))
    assert rule.permits(Principal("b", frozenset({"r"})))
    assert not rule.permits(Principal("b", frozenset({"x"})))
    assert not rule.permits(None)
    assert not parse_allow([]).permits(Principal("a"))


def test_the_handler_sees_the_caller_identity_with_its_scheme() -> None:
    service = service_with(["anonymous"])
    assert as_(WRITER, service)[1]["identity"] == "api_key:svc-writer"
    assert as_(None, service)[1]["identity"] == "anonymous:127.0.0.1"


def test_a_rule_naming_the_scheme_admits_only_that_scheme() -> None:
    rule = parse_allow(["signed:signer"])
    assert rule.permits(Principal("signer", scheme="signed"))
    assert not rule.permits(Principal("signer", scheme="jwt"))
    assert not rule.permits(Principal("signer", scheme="api_key"))


def test_a_bare_principal_matches_the_id_of_any_scheme() -> None:
    rule = parse_allow(["principal:signer"])
    assert rule.permits(Principal("signer", scheme="signed"))
    assert rule.permits(Principal("signer", scheme="jwt"))


def test_an_api_key_rule_naming_the_scheme_lets_its_principal_call() -> None:
    service = service_with(["api_key:svc-reader"])
    assert (as_(READER, service)[0], as_(WRITER, service)[0]) == (200, 403)


def test_a_bare_principal_with_several_modes_fails_at_start_up() -> None:
    config = {"mode": ["api_key", "signed"], "api_keys": API_KEYS, "pepper": PEPPER, "keys": {"k": "s" * 32}}
    with pytest.raises(ApiError, match=r"plugins\.auth\.allow.*'principal:svc-reader'.*'api_key:svc-reader' or"):
        make_service({**config, "allow": ["principal:svc-reader"]})


def test_a_bare_principal_in_an_operation_with_several_modes_names_the_operation() -> None:
    config = {"mode": ["api_key", "signed"], "api_keys": API_KEYS, "pepper": PEPPER, "keys": {"k": "s" * 32}}
    with pytest.raises(ApiError, match=r"operations\.other\.plugins\.auth\.allow"):
        make_service(config, {"echo": {}, "other": {"plugins": {"auth": {"allow": ["principal:x"]}}}})


def test_a_rule_naming_a_scheme_the_service_does_not_accept_fails_at_start_up() -> None:
    with pytest.raises(ApiError, match=r"plugins\.auth\.allow.*'jwt:svc-reader' names the scheme 'jwt'"):
        service_with(["jwt:svc-reader"])
