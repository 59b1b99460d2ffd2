"""Caller addresses: CIDR allow and deny lists, trusted proxies, X-Forwarded-For."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Address",
    "AddressRules",
    "Network",
    "UnresolvableAddress",
    "parse_address",
    "parse_networks",
    "resolve_client_address",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: X-Forwarded-For entries walked at most; a longer chain of trusted proxies is refused.
MAX_HOPS = 32


class UnresolvableAddress(ValueError):
    """X-Forwarded-For, as sent by a trusted proxy, does not name an address."""


def parse_address(text: str | None) -> Address | None:
    """Parse one IP address, or return ``None`` when ``text`` is not one.

    IPv4-mapped IPv6 addresses (``::ffff:192.0.2.1``) become the IPv4
    address, so one rule matches a caller however its socket reports it. A
    zone id (``fe80::1%eth0``) is dropped. Ports and brackets are not
    accepted.
    """
    if not text or len(text) > 64:
        return None
    text, _, _ = text.partition("%")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Parse CIDR networks (``10.0.0.0/8``, ``2001:db8::/32``; a bare address is a /32 or /128).

    Raises:
        ValueError: naming the first entry that is not a network, or one
            with host bits set (``10.0.0.1/8``: a mistake more often than not).
    """
    networks = []
    for value in values:
        if not isinstance(value, str):
            raise ValueError(f"expected CIDR strings like '10.0.0.0/8', got {value!r}")
        try:
            network = ipaddress.ip_network(value.strip(), strict=True)
        except ValueError as exc:
            raise ValueError(f"expected CIDR strings like '10.0.0.0/8', got {value!r} ({exc})") from None
        networks.append(network)
    return tuple(networks)


def _within(address: Address, networks: tuple[Network, ...]) -> bool:
    # An address is never within a network of the other IP version.
    return any(address in network for network in networks)


@dataclass(frozen=True)
class AddressRules:
    """Which caller addresses may call: ``deny`` wins, then ``allow`` (empty: any address).

    Attributes:
        allow: the networks callers must come from; empty allows all.
        deny: the networks callers may not come from.
    """

    allow: tuple[Network, ...] = ()
    deny: tuple[Network, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.allow or self.deny)

    def permits(self, address: Address | None) -> bool:
        """Whether ``address`` may call; an unknown address may not, once there are rules."""
        if address is None:
            return not self
        if self.deny and _within(address, self.deny):
            return False
        return not self.allow or _within(address, self.allow)


def resolve_client_address(
    remote_addr: str | None, forwarded_for: str | None, trusted_proxies: tuple[Network, ...]
) -> Address | None:
    """The caller's address, believing X-Forwarded-For only from trusted proxies.

    When the socket's peer is a trusted proxy, ``X-Forwarded-For`` is walked
    from the right (the entry the nearest proxy appended) to the first
    address that is not a trusted proxy: that is the caller. Entries further
    left were written by the caller or by untrusted hops, and are never
    read. When every entry is a trusted proxy, the leftmost is the caller.

    Args:
        remote_addr: the socket's peer (``REMOTE_ADDR``).
        forwarded_for: the ``X-Forwarded-For`` header, or ``None``.
        trusted_proxies: the networks of the proxies whose header is believed.

    Returns:
        The caller's address; ``None`` when the peer has none (a Unix socket).

    Raises:
        UnresolvableAddress: the peer is a trusted proxy and the entries it
            vouches for hold something that is not an address, or more
            than :data:`MAX_HOPS` trusted hops.
    """
    peer = parse_address(remote_addr)
    if peer is None or forwarded_for is None or not trusted_proxies or not _within(peer, trusted_proxies):
        return peer
    entries = forwarded_for.split(",")
    caller = peer
    for hops, entry in enumerate(reversed(entries)):
        if hops == MAX_HOPS:
            raise UnresolvableAddress(f"more than {MAX_HOPS} trusted hops in X-Forwarded-For")
        caller_or_none = parse_address(entry.strip(" \t"))
        if caller_or_none is None:
            raise UnresolvableAddress("X-Forwarded-For holds an entry that is not an IP address")
        caller = caller_or_none
        if not _within(caller, trusted_proxies):
            return caller
    return caller
