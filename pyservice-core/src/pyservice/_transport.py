"""How a Client's HTTP attempts travel: its own pool of ``http.client`` connections, or a ``requests`` session.

The default transport keeps, per origin, a stack of kept-alive
``http.client`` connections: no adapter layers, no per-call URL parsing or
settings merge. It is the part of ``requests`` the Client uses, measured at
several times its calls per second (docs/performance.md). A user who needs
``requests``' adapters or auth passes a ``requests.Session`` and the same
Client runs on it.

Both hand attempt hooks the same ``ClientResponse``.
"""

from __future__ import annotations

import base64
import email.message
import http.client
import os
import select
import socket
import ssl
import threading
import time
import urllib.request
import weakref
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias
from urllib.parse import unquote, urlsplit

from ._errors import CallTimeout, InvalidResponse, TransportError

if TYPE_CHECKING:
    import requests

    from ._api import Timeout

__all__ = ["ClientResponse", "HTTPTransport", "RequestsTransport", "ResponseHeaders", "Transport"]

_READ_CHUNK = 64 * 1024
# An idle connection older than this is closed rather than reused: servers
# drop idle connections (gunicorn after 2 s, nginx after 75 s), and one
# dropped while a request is on its way is a failed call that never reached
# the service. The readability check below catches those already dropped.
_MAX_IDLE = 60.0


#: An answer's headers: case-insensitive, ``get`` for the optional ones
#: (``http.client``'s message, or ``requests``' case-insensitive dict).
ResponseHeaders: TypeAlias = "email.message.Message | Mapping[str, str]"


class ClientResponse:
    """One HTTP answer, as attempt hooks see it (``context.http_response``).

    The same object whichever transport carried the call. Read the body
    with ``content``: it is read once, at most the Client's
    ``max_response_size`` bytes, and kept, so a hook that reads it leaves
    it for the Client too.

    Attributes:
        status: the HTTP status.
        reason: the status line's reason phrase.
        headers: the answer's headers, case-insensitive
            (``headers.get("Retry-After")``).
        operation: the operation the answer is for.
    """

    __slots__ = ("_body", "_limit", "headers", "operation", "reason", "status")

    def __init__(
        self,
        status: int,
        headers: ResponseHeaders,
        content: bytes | None = b"",
        *,
        reason: str = "",
        operation: str = "",
        limit: int = 1 << 62,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers: ResponseHeaders = _message(headers) if isinstance(headers, Mapping) else headers
        self.operation = operation
        self._body = content
        self._limit = limit

    @property
    def status_code(self) -> int:
        """The HTTP status, by the name ``requests`` gives it."""
        return self.status

    @property
    def content(self) -> bytes:
        """The whole body, read at most once and kept.

        Raises:
            InvalidResponse: the body is larger than the Client's
                ``max_response_size``.
            CallTimeout: the body did not arrive in time.
            TransportError: the connection broke while reading.
        """
        body = self._body
        if body is None:
            body = self._body = self._read(self._limit)
        return body

    def close(self) -> None:
        """Give the connection back, or close it if the body was not read whole."""

    def _read(self, limit: int) -> bytes:  # the streaming transports' own
        raise NotImplementedError

    def _too_large(self) -> InvalidResponse:
        return InvalidResponse(
            f"{self.operation}: answer larger than {self._limit} bytes", operation=self.operation, status=self.status
        )

    def __repr__(self) -> str:
        return f"<ClientResponse {self.status} {self.reason}>"


def _message(headers: Mapping[str, str]) -> email.message.Message:
    message = email.message.Message()
    for name, value in headers.items():
        message[name] = value
    return message


class Cancel:
    """Lets one thread abort another thread's attempt: how a hedged call closes its loser.

    The transport attaches the attempt's socket once connected; ``cancel()``
    shuts it down, so a read blocked on it returns at once with an error.
    """

    __slots__ = ("_lock", "_sock", "cancelled")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.cancelled = False

    def attach(self, sock: socket.socket | None) -> None:
        """Note the attempt's socket; shut it down at once if already cancelled."""
        with self._lock:
            self._sock = sock
            if self.cancelled:
                _shutdown(sock)

    def cancel(self) -> None:
        """Abort the attempt: its socket is shut down and will not be reused."""
        with self._lock:
            self.cancelled = True
            _shutdown(self._sock)

    def detach(self) -> bool:
        """Forget the socket, which goes back to the pool; True if it was cancelled (then it must not)."""
        with self._lock:
            self._sock = None
            return self.cancelled


def _shutdown(sock: socket.socket | None) -> None:
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed: nothing left to abort


class Transport(Protocol):
    """What carries a Client's HTTP attempts.

    ``target(url)`` is called once per operation, when the Client compiles
    its routes; ``send`` once per attempt.
    """

    def target(self, url: str) -> Any:
        """Whatever ``send`` needs to reach ``url``, prepared once."""

    def send(
        self,
        target: Any,
        body: bytes,
        headers: Mapping[str, str],
        timeout: Timeout,
        operation: str,
        limit: int,
        cancel: Cancel | None = None,
    ) -> ClientResponse:
        """POST ``body`` and return the answer with its body unread.

        Raises:
            CallTimeout: no connection or no answer within ``timeout``.
            TransportError: the exchange failed.
        """

    def close(self) -> None:
        """Close every pooled connection."""


# ---------------------------------------------------------------- http.client


class _Target:
    __slots__ = ("head", "path", "pool")

    def __init__(self, pool: _Pool, path: str, host: str) -> None:
        self.pool = pool
        self.path = path
        # The request line and the headers every call to this URL sends, encoded once.
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in pool.proxy_headers.items()]
        self.head = ("\r\n".join(lines) + "\r\n").encode("latin-1")


class _Pool:
    """Kept-alive connections to one origin (through one proxy, if any)."""

    __slots__ = ("connect", "idle", "maxsize", "origin", "proxy_headers")

    def __init__(self, connect: Any, maxsize: int, proxy_headers: dict[str, str], origin: str) -> None:
        self.connect = connect
        self.origin = origin
        # deque.append and .pop are atomic: threads share it without a lock.
        self.idle: deque[tuple[http.client.HTTPConnection, float]] = deque()
        self.maxsize = maxsize
        self.proxy_headers = proxy_headers

    def acquire(self, now: float) -> http.client.HTTPConnection | None:
        idle = self.idle
        while True:
            try:
                connection, since = idle.pop()  # the most recently used: the least likely dropped
            except IndexError:
                return None
            sock = connection.sock
            if sock is not None and now - since < _MAX_IDLE and not _dropped(sock):
                return connection
            connection.close()

    def release(self, connection: http.client.HTTPConnection) -> None:
        if len(self.idle) < self.maxsize:
            self.idle.append((connection, time.monotonic()))
        else:
            connection.close()  # more callers than the pool keeps: this one goes

    def close(self) -> None:
        while True:
            try:
                connection, _ = self.idle.pop()
            except IndexError:
                return
            connection.close()


def _dropped(sock: socket.socket) -> bool:
    # An idle kept-alive socket is readable only if the peer closed it (or
    # sent something unasked for): either way it cannot carry a new request.
    try:
        readable, _, _ = select.select((sock,), (), (), 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class HTTPTransport:
    """The default transport: pooled, kept-alive ``http.client`` connections.

    Thread-safe. Each origin keeps at most ``pool_size`` idle connections;
    more concurrent calls than that open extra connections, closed after
    their call (no call ever waits for a pooled one).

    Args:
        pool_size: idle connections kept per origin.
        verify: verify the service's TLS certificate: ``True`` with the
            system's CA store (or a bundle named by ``REQUESTS_CA_BUNDLE``,
            ``CURL_CA_BUNDLE`` or ``SSL_CERT_FILE`` when ``trust_env``),
            ``False`` not at all, or the path of a CA bundle file or
            directory.
        cert: a client certificate for TLS: the path of a PEM file holding
            the certificate and its key, or ``(certificate, key)`` paths.
        proxies: proxy URLs by scheme (``{"https": "http://proxy:3128"}``),
            as ``requests`` takes them; ``"no"`` lists hosts to reach
            directly, comma-separated.
        trust_env: also read proxies from ``HTTP_PROXY``, ``HTTPS_PROXY``,
            ``ALL_PROXY`` and ``NO_PROXY``, and the CA bundle from the
            variables above, as ``requests`` does.
    """

    def __init__(
        self,
        *,
        pool_size: int = 32,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: Mapping[str, str] | None = None,
        trust_env: bool = True,
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size: expected an integer greater than 0, got {pool_size!r}")
        self.pool_size = pool_size
        self.verify = verify
        self.cert = cert
        self.proxies = dict(proxies or {})
        self.trust_env = trust_env
        self._pools: dict[tuple[str, str, int, str | None], _Pool] = {}
        self._lock = threading.Lock()
        self._ssl_context: ssl.SSLContext | None = None
        # A Client dropped without close() closes its idle connections, as urllib3's pools do.
        weakref.finalize(self, _close_pools, self._pools)

    def target(self, url: str) -> _Target:
        """The pool and request path for ``url``; its proxy settled here, once."""
        parts = urlsplit(url)
        scheme = parts.scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"expected an http or https URL, got {url!r}")
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        proxy = self._proxy_for(scheme, host)
        key = (scheme, host, port, proxy)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = self._new_pool(scheme, host, port, proxy)
        netloc = parts.netloc.rpartition("@")[2]
        if proxy is not None and scheme == "http":
            # A plain-HTTP proxy is sent the whole URL; an HTTPS one gets a CONNECT tunnel.
            path = f"http://{netloc}{path}"
        return _Target(pool, path, netloc)

    def _proxy_for(self, scheme: str, host: str) -> str | None:
        proxies = dict(self.proxies)
        if self.trust_env:
            for name, value in urllib.request.getproxies_environment().items():
                proxies.setdefault(name, value)
        proxy = proxies.get(scheme) or proxies.get("all")
        if not proxy:
            return None
        no_proxy = proxies.get("no")
        if no_proxy and urllib.request.proxy_bypass_environment(host, {"no": no_proxy}):  # type: ignore[attr-defined]
            return None
        return proxy if "://" in proxy else "http://" + proxy

    def _new_pool(self, scheme: str, host: str, port: int, proxy: str | None) -> _Pool:
        context = self._context() if scheme == "https" else None
        proxy_headers: dict[str, str] = {}
        if proxy is None:
            connect_host, connect_port = host, port
        else:
            parsed = urlsplit(proxy)
            if parsed.scheme not in ("http", ""):
                raise ValueError(f"proxy {proxy!r}: only http:// proxies are supported")
            connect_host, connect_port = parsed.hostname or "", parsed.port or 8080
            if parsed.username is not None:
                credentials = f"{unquote(parsed.username)}:{unquote(parsed.password or '')}"
                proxy_headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()

        def connect(timeout: float) -> http.client.HTTPConnection:
            connection: http.client.HTTPConnection
            if context is not None:
                connection = http.client.HTTPSConnection(connect_host, connect_port, timeout=timeout, context=context)
                if proxy is not None:
                    connection.set_tunnel(host, port, headers=proxy_headers)
            else:
                connection = http.client.HTTPConnection(connect_host, connect_port, timeout=timeout)
            connection.connect()
            return connection

        # Through an HTTPS tunnel the proxy's credentials went with CONNECT, not with each request.
        origin = f"{scheme}://{host}:{port}" + ("" if proxy is None else f" through {connect_host}:{connect_port}")
        return _Pool(connect, self.pool_size, proxy_headers if context is None else {}, origin)

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is not None:
            return self._ssl_context
        verify = self.verify
        if verify is True and self.trust_env:
            for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
                if os.environ.get(name):
                    verify = os.environ[name]
                    break
        if verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif verify is True:
            context = ssl.create_default_context()  # honours SSL_CERT_FILE and SSL_CERT_DIR
        elif os.path.isdir(verify):
            context = ssl.create_default_context(capath=verify)
        else:
            context = ssl.create_default_context(cafile=verify)
        if self.cert is not None:
            certificate, key = (self.cert, None) if isinstance(self.cert, str) else self.cert
            context.load_cert_chain(certificate, key)
        self._ssl_context = context
        return context

    def send(
        self,
        target: _Target,
        body: bytes,
        headers: Mapping[str, str],
        timeout: Timeout,
        operation: str,
        limit: int,
        cancel: Cancel | None = None,
    ) -> ClientResponse:
        """POST ``body`` on a pooled connection; see ``Transport``."""
        pool = target.pool
        connection = pool.acquire(time.monotonic())
        answer: http.client.HTTPResponse | None = None
        try:
            if connection is None:
                connection = pool.connect(timeout.connect)
            sock = connection.sock
            sock.settimeout(timeout.read)
            if cancel is not None:
                cancel.attach(sock)
            # One write for the request line, the headers and the body: http.client's
            # request() makes two, and checks each header with two regular expressions.
            sock.sendall(target.head + _header_block(headers, len(body)) + body)
            answer = http.client.HTTPResponse(sock, method="POST")
            answer.begin()
        except BaseException as exc:
            if answer is not None:
                answer.close()  # its file holds the socket open
            if connection is not None:
                connection.close()
            if not isinstance(exc, _FAILURES):
                raise
            if cancel is not None and cancel.cancelled:
                raise TransportError(f"{operation}: cancelled", operation=operation) from exc
            doing = f"calling {pool.origin}; timeouts {timeout.connect:.3g}s to connect, {timeout.read:.3g}s to read"
            raise _failure(operation, exc, doing) from exc
        return _PooledResponse(answer, connection, pool, operation, limit, cancel)

    def close(self) -> None:
        """Close every idle pooled connection; ones in use close when their call ends."""
        with self._lock:
            _close_pools(self._pools)

    def __repr__(self) -> str:
        return f"<HTTPTransport pool_size={self.pool_size}>"


def _header_block(headers: Mapping[str, str], length: int) -> bytes:
    lines = []
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
            # A header split into two would be a second header the caller never wrote.
            raise ValueError(f"invalid HTTP header {name!r}: {value!r}")
        lines.append(f"{name}: {value}\r\n")
    lines.append(f"Content-Length: {length}\r\n\r\n")
    return "".join(lines).encode("latin-1")


# What a broken exchange raises: socket errors (TLS ones included), and
# http.client's for an answer that is not HTTP.
_FAILURES = (OSError, http.client.HTTPException)


def _close_pools(pools: dict[Any, _Pool]) -> None:
    for pool in list(pools.values()):
        pool.close()


def _failure(operation: str, exc: BaseException, doing: str) -> TransportError:
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since 3.10
        return CallTimeout(f"{operation}: timed out {doing}", operation=operation)
    return TransportError(f"{operation}: {type(exc).__name__}: {exc} ({doing})", operation=operation)


class _PooledResponse(ClientResponse):
    __slots__ = ("_answer", "_cancel", "_connection", "_pool")

    def __init__(
        self,
        answer: http.client.HTTPResponse,
        connection: http.client.HTTPConnection,
        pool: _Pool,
        operation: str,
        limit: int,
        cancel: Cancel | None,
    ) -> None:
        self.status = answer.status
        self.reason = answer.reason
        self.headers = answer.msg
        self.operation = operation
        self._body = None
        self._limit = limit
        self._answer: http.client.HTTPResponse | None = answer
        self._connection = connection
        self._pool = pool
        self._cancel = cancel

    def _read(self, limit: int) -> bytes:
        answer = self._answer
        if answer is None:
            raise TransportError(
                f"{self.operation}: the answer was closed before it was read", operation=self.operation
            )
        try:
            length = answer.length
            if length is not None and length <= limit:
                body = answer.read()
            else:
                parts = []
                received = 0
                while True:
                    chunk = answer.read(_READ_CHUNK)
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > limit:
                        raise self._too_large()
                    parts.append(chunk)
                body = b"".join(parts)
        except _FAILURES as exc:
            self._abandon()
            raise _failure(self.operation, exc, f"reading the answer from {self._pool.origin}") from exc
        except BaseException:
            self._abandon()
            raise
        self._release()
        return body

    def _abandon(self) -> None:
        answer, self._answer = self._answer, None
        if answer is not None:
            answer.close()
        self._connection.close()

    def _release(self) -> None:
        answer, self._answer = self._answer, None
        connection = self._connection
        reusable = answer is not None and answer.isclosed() and not answer.will_close and connection.sock is not None
        # A hedged attempt's socket is shut down when it loses; once pooled, it is no longer the attempt's.
        if self._cancel is not None and self._cancel.detach():
            reusable = False
        if reusable:
            # http.client's HTTPResponse closes only its own file once read; the socket stays the pool's.
            self._pool.release(connection)
        else:
            if answer is not None:
                answer.close()
            connection.close()

    def close(self) -> None:
        """Give the connection back if the body was read whole, else close it."""
        answer = self._answer
        if answer is None:
            return
        if not answer.isclosed() and answer.length is not None and answer.length <= _READ_CHUNK:
            # A small unread answer (a 503 before a retry): read it, keep the connection.
            try:
                answer.read()
            except _FAILURES:
                self._abandon()
                return
        self._release()


# ------------------------------------------------------------------- requests


class RequestsTransport:
    """Runs a Client's attempts on a ``requests.Session``, for its adapters and auth.

    Args:
        session: the session; the Client never changes its settings.
    """

    def __init__(self, session: requests.Session) -> None:
        import requests

        self.session = session
        self._timeout = requests.Timeout
        self._error = requests.RequestException

    def target(self, url: str) -> str:
        """The URL itself: the session resolves it on every call."""
        return url

    def send(
        self,
        target: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: Timeout,
        operation: str,
        limit: int,
        cancel: Cancel | None = None,
    ) -> ClientResponse:
        """POST ``body`` through the session; see ``Transport``.

        A cancelled attempt cannot be interrupted here: it is closed when
        its answer arrives.
        """
        try:
            answer = self.session.post(target, data=body, headers=headers, timeout=timeout, stream=True)
        except self._timeout as exc:
            raise CallTimeout(f"{operation}: no answer within {tuple(timeout)}s: {exc}", operation=operation) from exc
        except self._error as exc:
            raise TransportError(f"{operation}: {type(exc).__name__}: {exc}", operation=operation) from exc
        return _RequestsResponse(answer, operation, limit, self)

    def close(self) -> None:
        """Close the session."""
        self.session.close()

    def __repr__(self) -> str:
        return f"<RequestsTransport {self.session!r}>"


class _RequestsResponse(ClientResponse):
    __slots__ = ("_answer", "_transport")

    def __init__(self, answer: requests.Response, operation: str, limit: int, transport: RequestsTransport) -> None:
        self.status = answer.status_code
        self.reason = answer.reason or ""
        self.headers = answer.headers
        self.operation = operation
        self._body = None
        self._limit = limit
        self._answer = answer
        self._transport = transport

    def _read(self, limit: int) -> bytes:
        answer = self._answer
        length = answer.headers.get("Content-Length")
        try:
            if length is not None and length.isascii() and length.isdigit() and int(length) <= limit:
                return answer.content
            parts = []
            received = 0
            for chunk in answer.iter_content(_READ_CHUNK):
                received += len(chunk)
                if received > limit:
                    raise self._too_large()
                parts.append(chunk)
            return b"".join(parts)
        except self._transport._timeout as exc:
            raise CallTimeout(f"{self.operation}: the answer did not arrive in time", operation=self.operation) from exc
        except self._transport._error as exc:
            raise TransportError(f"{self.operation}: reading the answer: {exc}", operation=self.operation) from exc
        finally:
            answer.close()

    def close(self) -> None:
        """Give the connection back to the session's pool."""
        self._answer.close()
