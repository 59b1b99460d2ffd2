"""Property-based: whatever the headers say, the service answers 200, 401 or 403, never 500."""

from __future__ import annotations

import time
from typing import Any

from auth_helpers import KEY_ID, PEPPER, SECRET, make_service, signed, wsgi_call
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyservice_auth import generate_api_key, parse_signature_header, resolve_client_address, split_api_key
from pyservice_auth._network import parse_networks

# WSGI header values are str decoded from latin-1 bytes.
header_text = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=300)
KEY = generate_api_key(PEPPER, prefix="fuzz")
SERVICE = make_service(
    {
        "mode": ["signed", "api_key", "jwt"],
        "keys": {KEY_ID: SECRET},
        "api_keys": {"fuzz": {"hash": KEY.hash, "principal": "svc-fuzz"}},
        "pepper": PEPPER,
        "jwt": {
            "keys": {"k": {"algorithm": "HS256", "key": "jwt-secret-0123456789abcdef0123456789abcdef"}},
            "audience": "a",
            "issuer": "i",
        },
        "allow": ["authenticated"],
        "allow_from": ["10.0.0.0/8", "2001:db8::/32"],
        "trusted_proxies": ["192.0.2.0/24"],
    }
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _signed_header_parts() -> st.SearchStrategy[str]:
    token = st.text(st.sampled_from("abcdefABCDEF0123456789-_.=, "), max_size=70)
    return st.builds(
        lambda key, ts, nonce, sig: f"PYSERVICE-HMAC-SHA256 key={key}, ts={ts}, nonce={nonce}, sig={sig}",
        token,
        st.one_of(st.integers(-(10**15), 10**15).map(str), token),
        token,
        token,
    )


@FUZZ
@given(authorization=st.one_of(header_text, _signed_header_parts(), header_text.map(lambda t: "Bearer " + t)))
def test_any_authorization_header_is_answered_401_never_500(authorization: str) -> None:
    status, answer, _ = wsgi_call(SERVICE, headers={"Authorization": authorization}, remote_addr="10.0.0.1")
    assert status == 401, answer


@FUZZ
@given(forwarded=header_text, peer=st.sampled_from(["192.0.2.1", "10.0.0.1", "198.51.100.1", "::ffff:192.0.2.9"]))
def test_any_forwarded_for_header_is_answered_without_a_500(forwarded: str, peer: str) -> None:
    headers = {**signed(), "X-Forwarded-For": forwarded}
    status, answer, _ = wsgi_call(SERVICE, headers=headers, remote_addr=peer)
    assert status in (200, 403), answer


@FUZZ
@given(peer=st.one_of(header_text, st.ip_addresses().map(str)))
def test_any_peer_address_is_answered_without_a_500(peer: str) -> None:
    status, answer, _ = wsgi_call(SERVICE, headers=signed(), remote_addr=peer)
    assert status in (200, 403), answer


@FUZZ
@given(value=st.one_of(header_text, _signed_header_parts()))
def test_the_signature_header_parser_returns_parts_or_none(value: str) -> None:
    parsed = parse_signature_header(value)
    if parsed is not None:
        assert value.endswith(parsed.signature)
        assert 0 <= parsed.timestamp < 10**12


@FUZZ
@given(value=header_text)
def test_the_api_key_splitter_returns_parts_or_none(value: str) -> None:
    parts = split_api_key(value)
    assert parts is None or f"{parts[0]}.{parts[1]}" == value


@FUZZ
@given(forwarded=header_text, addresses=st.lists(st.ip_addresses(), max_size=5))
def test_resolving_forwarded_for_returns_an_address_or_refuses_by_value_error(
    forwarded: str, addresses: list[Any]
) -> None:
    trusted = parse_networks(["192.0.2.0/24", "2001:db8::/32"])
    header = ", ".join([forwarded, *map(str, addresses)])
    try:
        resolved = resolve_client_address("192.0.2.1", header, trusted)
    except ValueError:
        return
    assert resolved is not None


@settings(max_examples=50, deadline=None)
@given(body=st.binary(max_size=200))
def test_a_signed_request_with_any_body_reaches_the_decoder(body: bytes) -> None:
    status, answer, _ = wsgi_call(SERVICE, headers=signed(body, timestamp=int(time.time())), body=body,
                                  remote_addr="10.0.0.1")  # fmt: skip
    assert status in (200, 400), answer
