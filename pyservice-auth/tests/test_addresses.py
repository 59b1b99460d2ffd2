"""Address allow and deny lists, trusted proxies and X-Forwarded-For."""

from __future__ import annotations

from typing import Any

import pytest
from auth_helpers import make_service, refusal, wsgi_call
from pyservice import ApiError
from pyservice_auth import AddressRules, parse_address, parse_networks, resolve_client_address

FORBIDDEN = ("Forbidden", "not allowed")


def open_service(operations: Any = None, **auth: Any) -> Any:
    return make_service({"mode": "none", "allow": ["anonymous"], **auth}, operations=operations)


def from_(service: Any, address: str | None, forwarded: str | None = None, path: str = "/api/v1/echo") -> Any:
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    status, answer, _ = wsgi_call(service, headers=headers, remote_addr=address, path=path)
    return status, answer


@pytest.mark.parametrize(
    ("address", "status"),
    [("10.1.2.3", 200), ("10.255.255.255", 200), ("11.0.0.1", 403), ("2001:db8::1", 200), ("2001:db9::1", 403)],
)
def test_an_allow_list_admits_only_its_ipv4_and_ipv6_networks(address: str, status: int) -> None:
    service = open_service(allow_from=["10.0.0.0/8", "2001:db8::/32"])
    assert from_(service, address)[0] == status


def test_a_refused_address_gets_forbidden_without_a_reason() -> None:
    status, answer = from_(open_service(allow_from=["10.0.0.0/8"]), "192.0.2.1")
    assert (status, refusal(answer)) == (403, FORBIDDEN)


@pytest.mark.parametrize(("address", "status"), [("10.0.0.5", 403), ("10.0.1.5", 200), ("fd00::5", 403)])
def test_a_deny_list_wins_over_the_allow_list(address: str, status: int) -> None:
    service = open_service(allow_from=["10.0.0.0/8", "fd00::/8"], deny_from=["10.0.0.0/24", "fd00::/64"])
    assert from_(service, address)[0] == status


def test_an_ipv4_mapped_ipv6_peer_matches_ipv4_rules() -> None:
    service = open_service(deny_from=["192.0.2.0/24"])
    assert from_(service, "::ffff:192.0.2.7")[0] == 403
    assert from_(service, "::ffff:198.51.100.7")[0] == 200


def test_an_ipv4_rule_never_matches_an_ipv6_caller() -> None:
    assert from_(open_service(allow_from=["0.0.0.0/0"]), "2001:db8::1")[0] == 403


def test_a_peer_without_an_address_is_refused_once_there_are_address_rules() -> None:
    assert from_(open_service(allow_from=["10.0.0.0/8"]), None)[0] == 403
    assert from_(open_service(), None)[0] == 200


def test_per_operation_allow_lists_replace_the_services() -> None:
    operations = {"echo": {}, "other": {"plugins": {"auth": {"allow_from": ["192.0.2.0/24"]}}}}
    service = open_service(operations, allow_from=["10.0.0.0/8"])
    assert from_(service, "10.0.0.1", path="/api/v1/echo")[0] == 200
    assert from_(service, "10.0.0.1", path="/api/v1/other")[0] == 403
    assert from_(service, "192.0.2.1", path="/api/v1/other")[0] == 200


def test_per_operation_deny_lists_add_to_the_services() -> None:
    operations = {"echo": {}, "other": {"plugins": {"auth": {"deny_from": ["10.0.0.0/24"]}}}}
    service = open_service(operations, deny_from=["10.9.0.0/16"])
    assert from_(service, "10.9.0.1", path="/api/v1/other")[0] == 403
    assert from_(service, "10.0.0.1", path="/api/v1/other")[0] == 403
    assert from_(service, "10.0.0.1", path="/api/v1/echo")[0] == 200


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    service = open_service(allow_from=["10.0.0.0/8"], trusted_proxies=["192.0.2.10/32"])
    status, _ = from_(service, "198.51.100.9", forwarded="10.0.0.1")
    assert status == 403
    status, answer = from_(open_service(trusted_proxies=["192.0.2.10/32"]), "198.51.100.9", forwarded="10.0.0.1")
    assert (status, answer["caller"]) == (200, "198.51.100.9")


def test_forwarded_for_without_trusted_proxies_is_ignored() -> None:
    status, answer = from_(open_service(), "198.51.100.9", forwarded="10.0.0.1")
    assert (status, answer["caller"]) == (200, "198.51.100.9")


def test_forwarded_for_from_a_trusted_proxy_gives_the_caller() -> None:
    service = open_service(trusted_proxies=["192.0.2.0/24"])
    assert from_(service, "192.0.2.10", forwarded="203.0.113.5")[1]["caller"] == "203.0.113.5"


def test_forwarded_for_is_walked_from_the_right_past_trusted_proxies_only() -> None:
    # The caller wrote "10.0.0.1" itself; the trusted proxies appended the rest.
    service = open_service(trusted_proxies=["192.0.2.0/24", "2001:db8::/32"])
    forwarded = "10.0.0.1, 203.0.113.5, 192.0.2.11,2001:db8::7"
    assert from_(service, "192.0.2.10", forwarded=forwarded)[1]["caller"] == "203.0.113.5"


def test_a_spoofed_allowed_address_behind_a_trusted_proxy_is_refused() -> None:
    service = open_service(allow_from=["10.0.0.0/8"], trusted_proxies=["192.0.2.0/24"])
    assert from_(service, "192.0.2.10", forwarded="10.0.0.1, 203.0.113.5")[0] == 403
    assert from_(service, "192.0.2.10", forwarded="203.0.113.5, 10.0.0.1")[0] == 200


def test_when_every_hop_is_trusted_the_leftmost_is_the_caller() -> None:
    service = open_service(trusted_proxies=["192.0.2.0/24"])
    assert from_(service, "192.0.2.10", forwarded="192.0.2.3, 192.0.2.4")[1]["caller"] == "192.0.2.3"


@pytest.mark.parametrize("forwarded", ["", "unknown", "203.0.113.5:443", "[2001:db8::1]", "203.0.113.5;x", " , "])
def test_a_malformed_entry_vouched_for_by_a_trusted_proxy_is_refused(forwarded: str) -> None:
    service = open_service(trusted_proxies=["192.0.2.0/24"])
    assert from_(service, "192.0.2.10", forwarded=forwarded)[0] == 403


def test_a_malformed_entry_left_of_the_caller_is_never_read() -> None:
    service = open_service(trusted_proxies=["192.0.2.0/24"])
    assert from_(service, "192.0.2.10", forwarded="garbage, 203.0.113.5")[1]["caller"] == "203.0.113.5"


def test_a_chain_of_more_trusted_hops_than_the_limit_is_refused() -> None:
    networks = parse_networks(["192.0.2.0/24"])
    with pytest.raises(ValueError, match="trusted hops"):
        resolve_client_address("192.0.2.1", ", ".join(["192.0.2.2"] * 40), networks)


def test_the_principal_not_the_address_is_the_caller_once_authenticated() -> None:
    from auth_helpers import KEY_ID, SECRET, signed

    service = make_service(
        {"mode": "signed", "keys": {KEY_ID: SECRET}, "allow": ["authenticated"], "trusted_proxies": ["192.0.2.0/24"]}
    )
    _, answer, _ = wsgi_call(service, headers={**signed(), "X-Forwarded-For": "203.0.113.5"}, remote_addr="192.0.2.1")
    assert answer["caller"] == KEY_ID


@pytest.mark.parametrize("value", ["10.0.0.1/8", "10.0.0.0/33", "not-a-network", "fe80::/129"])
def test_a_bad_network_fails_at_start_up(value: str) -> None:
    with pytest.raises(ApiError, match=r"plugins.auth.allow_from.*expected CIDR strings"):
        open_service(allow_from=[value])


def test_address_rules_and_parsing_as_documented() -> None:
    rules = AddressRules(allow=parse_networks(["10.0.0.0/8"]), deny=parse_networks(["10.0.0.0/24"]))
    assert rules.permits(parse_address("10.1.0.1"))
    assert not rules.permits(parse_address("10.0.0.1"))
    assert not rules.permits(None)
    assert AddressRules().permits(None)
    assert parse_address("fe80::1%eth0") == parse_address("fe80::1")
    assert parse_address("01.2.3.4") is None
