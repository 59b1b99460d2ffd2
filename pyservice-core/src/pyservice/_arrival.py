"""When a request arrived, from the kernel's receive timestamps.

A worker answers one call at a time, in its loop's thread. While a call is
stuck (a database that does not answer until the deadline cuts it off), the
worker reads nothing: a call sent meanwhile on another of its connections
waits in the kernel's buffer. Read only afterwards, it would get its whole
deadline from then on, and be answered long after the caller gave up.

Linux stamps each received packet with the time it arrived, and hands the
stamp to a reader that asked for it (``SO_TIMESTAMPING``, software receive
stamps). After a long call the worker peeks at what waits on its other
connections and learns when each call arrived; the core counts the call's
deadline from then (``ENVIRON_KEY`` in the WSGI environ). Peeking is one
``recvmsg`` per connection and only after a long call: the usual path pays
nothing.

The kernel does not stamp every packet (about one call in eight came
unstamped under the project's tests, on loopback under load; plain sockets
on an idle machine were always stamped). Bytes that wait unstamped are
taken to have arrived when the long call began: they may have come later,
so such a call may be refused as late when it had time left, but never
kept past its deadline. Off Linux, and where the kernel refuses the option,
deadlines count from when a request is read, as before.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Any

__all__ = ["ENVIRON_KEY", "enable", "peek_arrival"]

#: The environ key for the ``time.monotonic()`` at which a request's first
#: byte arrived, set by pyservice's server only when it read the request late.
ENVIRON_KEY = "pyservice.arrived"

# Linux's values (asm-generic/socket.h, linux/net_tstamp.h); Python names
# only the first, and only on some builds.
_SO_TIMESTAMPING = getattr(socket, "SO_TIMESTAMPING", 37)
_RX_SOFTWARE = 1 << 3
_SOFTWARE = 1 << 4
# struct scm_timestamping: three timespecs, the first the software stamp.
_STAMP_SPACE = socket.CMSG_SPACE(48) if hasattr(socket, "CMSG_SPACE") else 0
_PEEK = getattr(socket, "MSG_PEEK", 0) | getattr(socket, "MSG_DONTWAIT", 0)


def enable(listener: Any) -> bool:
    """Ask for receive stamps on every connection ``listener`` accepts (they inherit it).

    Returns whether the kernel agreed; ``False`` off Linux.
    """
    if not sys.platform.startswith("linux") or not _STAMP_SPACE:
        return False
    try:
        listener.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPING, _RX_SOFTWARE | _SOFTWARE)
    except OSError:
        return False
    return True


def peek_arrival(connection: Any, unstamped: float) -> float:
    """The ``time.monotonic()`` at which the first unread byte on ``connection`` arrived.

    ``connection`` is a socket, or the socket-like object an event loop's
    transport gives (anything with ``family`` and ``fileno()``). Returns 0.0
    when nothing waits, ``unstamped`` when bytes wait without the kernel's
    stamp. Reads nothing: the bytes stay for the loop to read.
    """
    # A socket object over the same descriptor, detached unclosed: no dup(),
    # no probing syscalls, because family and type are given.
    peeker = socket.socket(connection.family, socket.SOCK_STREAM, 0, connection.fileno())
    try:
        _, ancillary, _, _ = peeker.recvmsg(1, _STAMP_SPACE, _PEEK)
    except OSError:
        return 0.0
    finally:
        peeker.detach()
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPING and len(data) >= 16:
            seconds, nanoseconds = struct.unpack_from("qq", data)
            if seconds > 0:
                ago: float = time.time() - (seconds + nanoseconds / 1e9)
                return time.monotonic() - max(0.0, ago)
    return unstamped
