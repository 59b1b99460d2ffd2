"""The Client's own transport over real HTTP: pooling, keep-alive, timeouts, bounded answers, proxies, TLS."""

from __future__ import annotations

import http.server
import re
import select
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyservice
import pytest
import requests
from pyservice._transport import HTTPTransport, RequestsTransport
from pyservice.testing import LiveServer, client_for, free_port

APPS = Path(__file__).parent / "apps"
API = {
    "name": "clientapp",
    "operations": {
        "echo": {"idempotent": True},
        "create": {},
        "slow": {"idempotent": True},
        "big": {"idempotent": True},
    },
}


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer("client_app:service", workers=2, cwd=APPS) as running:
        yield running


def client_of(server: LiveServer, **options: Any) -> pyservice.Client:
    return pyservice.Client(**API, endpoint={"port": server.port}, **options)


def idle(client: pyservice.Client) -> int:
    transport = client.transport
    assert isinstance(transport, HTTPTransport)
    return sum(len(pool.idle) for pool in transport._pools.values())


def test_the_default_transport_is_the_clients_own_pool(server):
    with client_of(server) as client:
        assert isinstance(client.transport, HTTPTransport)
        assert client.session is None
        assert client.echo(a=1).a == 1


def test_a_kept_alive_connection_carries_the_next_calls(server):
    with client_of(server) as client:
        pids = {client.echo(n=n).pid for n in range(20)}
        # One connection, reused: one worker answered every call.
        assert len(pids) == 1
        assert idle(client) == 1


def test_many_threads_share_one_client_and_the_pool_stays_bounded(server):
    with client_of(server, pool_size=3) as client:
        errors: list[BaseException] = []
        pids: set[int] = set()

        def work(thread: int) -> None:
            try:
                for n in range(100):
                    answer = client.echo(thread=thread, n=n)
                    assert (answer.thread, answer.n) == (thread, n)
                    pids.add(answer.pid)
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(thread,)) for thread in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(pids) == 2  # both workers served
        assert 1 <= idle(client) <= 3


def test_a_slow_answer_is_a_call_timeout_and_the_connection_is_not_reused(server):
    with client_of(server) as client:
        with pytest.raises(pyservice.CallTimeout, match="timed out"):
            client.call("slow", {"seconds": 1.0}, timeout=0.2)
        assert idle(client) == 0
        assert client.echo(a=2).a == 2


def test_the_read_timeout_is_sent_as_the_calls_deadline(server):
    with client_of(server) as client:
        assert client.call("echo", {}, timeout=(1, 4)).timeout_header == "4.000"


def test_an_answer_over_the_size_limit_is_refused_and_its_connection_closed(server):
    with client_of(server, max_response_size=1000) as client:
        with pytest.raises(pyservice.InvalidResponse, match="larger than 1000 bytes") as raised:
            client.big(size=5000)
        assert raised.value.status == 200
        assert idle(client) == 0
        assert len(client.big(size=10).blob) == 10


def test_a_big_answer_within_the_limit_is_read_whole(server):
    with client_of(server) as client:
        assert len(client.big(size=3_000_000).blob) == 3_000_000


def test_a_connection_the_server_dropped_while_idle_is_not_used(server):
    # A non-idempotent call is never retried: only the check before reuse saves it.
    with client_of(server) as client:
        assert client.create(name="a").created == "a"
        [(connection, _)] = list(next(iter(client.transport._pools.values())).idle)
        peer = connection.sock.getpeername()
        closer = one_shot_keepalive_server()
        # Point the pooled connection's socket at a server that has hung up, as an idle server does.
        connection.sock.close()
        connection.sock = closer.dropped_socket()
        assert client.create(name="b").created == "b"
        assert peer[1] == server.port


class one_shot_keepalive_server:
    """A listener whose one accepted connection is closed by the peer at once."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)

    def dropped_socket(self) -> socket.socket:
        sock = socket.create_connection(self.listener.getsockname())
        accepted, _ = self.listener.accept()
        accepted.close()
        self.listener.close()
        select.select([sock], [], [], 2)  # the FIN has arrived
        return sock


def test_a_refused_connection_names_where_it_went():
    port = free_port()
    client = pyservice.Client(operations=["get"], endpoint={"port": port})
    with client, pytest.raises(pyservice.TransportError, match=re.escape(f"127.0.0.1:{port}")) as raised:
        client.get()
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)


def test_a_session_carries_the_calls_when_given(server):
    session = requests.Session()
    with pyservice.Client(session=session, **API, endpoint={"port": server.port}) as client:
        assert isinstance(client.transport, RequestsTransport)
        assert client.session is session
        assert client.echo(a=3).a == 3


def test_transport_settings_with_a_session_are_refused():
    with pytest.raises(TypeError, match=r"set them on the requests\.Session"):
        pyservice.Client(session=requests.Session(), verify=False, operations=["get"])


def test_attempt_hooks_see_one_response_shape_on_both_transports(server):
    seen = []
    for session in (None, requests.Session()):
        client = pyservice.Client(session=session, **API, endpoint={"port": server.port})

        @client.plugin(scope="attempt")
        def look(context):
            context.process_request()
            answer = context.http_response
            assert isinstance(answer, pyservice.ClientResponse)
            seen.append((answer.status, answer.status_code, answer.headers.get("content-type"), answer.content[:1]))

        client.echo()
        client.close()
    assert seen == [(200, 200, "application/json", b"{"), (200, 200, "application/json", b"{")]


# ---------------------------------------------------------------- proxies


class Proxy:
    """A forward proxy on a free port: absolute-URI requests and CONNECT tunnels, counted."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.auth: list[str | None] = []
        self.direct = requests.Session()
        self.direct.trust_env = False  # never through the proxy the test sets in the environment
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy.serve(self.request)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, client: socket.socket) -> None:
        with client.makefile("rb") as reader:
            self.relay(client, reader)

    def relay(self, client: socket.socket, reader: Any) -> None:
        while True:
            line = reader.readline()
            if not line:
                return
            method, target, _ = line.decode().split(" ", 2)
            headers = {}
            while (header := reader.readline()) not in (b"\r\n", b""):
                name, _, value = header.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            self.requests.append(f"{method} {target}")
            self.auth.append(headers.get("proxy-authorization"))
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                with socket.create_connection((host, int(port))) as upstream:
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    pipe(client, upstream)
                return
            parts = urlsplit(target)
            body = reader.read(int(headers.get("content-length", 0)))
            forwarded = {k: v for k, v in headers.items() if k != "proxy-authorization"}
            answer = self.direct.post(f"http://{parts.netloc}{parts.path}", data=body, headers=forwarded, timeout=5)
            client.sendall(
                f"HTTP/1.1 {answer.status_code} OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(answer.content)}\r\n\r\n".encode()
                + answer.content
            )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.direct.close()


def pipe(a: socket.socket, b: socket.socket) -> None:
    sockets = [a, b]
    while True:
        readable, _, _ = select.select(sockets, [], [], 5)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            (b if sock is a else a).sendall(data)


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    running = Proxy()
    yield running
    running.close()


def test_a_given_proxy_carries_plain_http_calls(server, proxy):
    with client_of(server, proxies={"http": proxy.url}) as client:
        assert client.echo(a=1).a == 1
        assert client.echo(a=2).a == 2
    assert proxy.requests == [f"POST http://127.0.0.1:{server.port}/api/v1/echo"] * 2


def test_a_proxy_from_the_environment_is_used_unless_no_proxy_names_the_host(server, proxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with client_of(server) as client:
        client.echo()
    assert len(proxy.requests) == 1
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with client_of(server) as client:
        client.echo()
    assert len(proxy.requests) == 1
    monkeypatch.delenv("NO_PROXY")
    with client_of(server, trust_env=False) as client:
        client.echo()
    assert len(proxy.requests) == 1


def test_proxy_credentials_are_sent_to_the_proxy(server, proxy):
    url = proxy.url.replace("http://", "http://user:s%40cret@")
    with client_of(server, proxies={"http": url}) as client:
        client.echo()
    assert proxy.auth == ["Basic dXNlcjpzQGNyZXQ="]  # user:s@cret


# -------------------------------------------------------------------- TLS


class TLSService:
    """The protocol over HTTPS: echoes the request fields, with a certificate from a test CA."""

    def __init__(self, tmp_path: Path) -> None:
        trustme = pytest.importorskip("trustme")
        self.ca = trustme.CA()
        self.ca_path = tmp_path / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def client(self, **options: Any) -> pyservice.Client:
        return pyservice.Client(operations=["echo"], endpoint={"scheme": "https", "port": self.port}, **options)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[TLSService]:
    running = TLSService(tmp_path)
    yield running
    running.close()


def test_tls_is_verified_against_the_given_ca_bundle(tls):
    with tls.client(verify=str(tls.ca_path)) as client:
        assert client.echo(a=1).a == 1


def test_a_certificate_from_an_unknown_ca_is_a_transport_error(tls, monkeypatch):
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    with tls.client() as client, pytest.raises(pyservice.TransportError) as raised:
        client.echo()
    assert isinstance(raised.value.__cause__, ssl.SSLCertVerificationError)


def test_verify_false_accepts_any_certificate(tls):
    with tls.client(verify=False) as client:
        assert client.echo(a=2).a == 2


def test_the_ca_bundle_is_read_from_the_environment_as_requests_does(tls, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_path))
    with tls.client() as client:
        assert client.echo(a=3).a == 3


def test_an_https_call_through_a_proxy_goes_through_a_connect_tunnel(tls, proxy):
    with tls.client(verify=str(tls.ca_path), proxies={"https": proxy.url}) as client:
        assert client.echo(a=4).a == 4
        assert client.echo(a=5).a == 5
    assert proxy.requests == [f"CONNECT 127.0.0.1:{tls.port}"]  # one tunnel, kept alive


# ------------------------------------------------------------ undeclared names


def test_an_undeclared_operation_names_the_declared_ones(items_service):
    client = client_for(items_service)
    with pytest.raises(pyservice.UndeclaredOperation) as raised:
        client.get_iten  # noqa: B018 - the lookup is what is tested
    message = str(raised.value)
    assert "'get_iten'" in message
    assert "did you mean 'get_item'" in message
    assert "declared operations: get_item, put_item" in message
    assert raised.value.declared == ["get_item", "put_item"]
    with pytest.raises(AttributeError, match="declared operations: get_item, put_item"):
        client.call("gret")


def test_an_undeclared_operation_keeps_getattr_semantics(items_service):
    client = client_for(items_service)
    assert not hasattr(client, "gret")
    assert getattr(client, "gret", None) is None
    assert hasattr(client, "get_item")


def test_a_header_value_with_a_line_break_is_refused_before_sending(server):
    with client_of(server) as client, pytest.raises(ValueError, match="invalid HTTP header"):
        client.call("echo", {}, headers={"X-Tenant": "t1\r\nX-Admin: yes"})
