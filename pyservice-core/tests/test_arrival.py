"""When a request arrived: the kernel's receive stamps, read without reading the bytes."""

from __future__ import annotations

import socket
import sys
import time

import pytest
from pyservice import _arrival

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="receive stamps are read on Linux only")


#: What peek_arrival is told to give for bytes that wait unstamped.
UNSTAMPED = -1.0


@pytest.fixture
def pair():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        assert _arrival.enable(listener)
        with socket.create_connection(listener.getsockname()) as sender:
            accepted, _ = listener.accept()
            with accepted:
                yield sender, accepted


def test_bytes_waiting_unread_are_dated_when_they_arrived_not_when_peeked(pair):
    sender, accepted = pair
    # The kernel may leave a packet unstamped (see _arrival): of three, one must be stamped.
    for _ in range(3):
        sender.sendall(b"POST / HTTP/1.1\r\n")
        arrived = time.monotonic()
        time.sleep(0.3)
        stamp = _arrival.peek_arrival(accepted, unstamped=UNSTAMPED)
        accepted.recv(100)
        if stamp != UNSTAMPED:
            break
    assert stamp != UNSTAMPED, "three packets arrived without the kernel's receive stamp"
    assert abs(stamp - arrived) < 0.1


def test_peeking_leaves_the_bytes_for_the_reader(pair):
    sender, accepted = pair
    sender.sendall(b"hello")
    time.sleep(0.05)
    _arrival.peek_arrival(accepted, unstamped=UNSTAMPED)
    assert accepted.recv(100) == b"hello"


def test_nothing_waiting_is_no_arrival(pair):
    _, accepted = pair
    assert _arrival.peek_arrival(accepted, unstamped=UNSTAMPED) == 0.0
