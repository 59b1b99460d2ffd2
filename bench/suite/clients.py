"""Section 3: the client side, against a fast server (granian serving the bare app).

Every case does the same work per call: encode the request fields, POST
them over a kept-alive connection, read the answer, decode it. The server
is the same for all, so the ratios compare the clients.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
import pyservice
import requests
import urllib3

from .apps import PATH, expected_result
from .modes import Mode
from .payloads import SMALL
from .progress import Progress
from .served import Server
from .timing import Case, run_rounds

SECTION = "client"
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def _case(label: str, call: Callable[[], Any], group: str) -> Case:
    def batch(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            call()
        return time.perf_counter() - started

    def check() -> None:
        got = call()
        if dict(got) != expected_result(SMALL):
            raise RuntimeError(f"{label}: expected {expected_result(SMALL)!r}, got {got!r}")

    return Case(label, batch, group, check=check)


class FastResponse:
    """Just what pyservice's Client reads from an answer."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status_code = response.status
        self.headers = {name.lower(): value for name, value in response.getheaders()}
        self.content = response.read()

    def iter_content(self, size: int) -> Iterator[bytes]:
        yield self.content

    def close(self) -> None:
        pass


class _Headers(dict[str, str]):
    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)


class HTTPClientSession:
    """A demo transport: the part of ``requests.Session`` the Client uses, on http.client.

    Not a supported API (the Client's ``session`` is typed ``requests.Session``
    and its error translation expects requests' exceptions); it shows what a
    leaner transport behind the same Client API would gain.
    """

    def __init__(self) -> None:
        self.connections: dict[tuple[str, int], http.client.HTTPConnection] = {}

    def post(self, url: str, data: bytes, headers: Mapping[str, str], timeout: Any, stream: bool = False) -> Any:
        parts = urlsplit(url)
        key = (parts.hostname or "", parts.port or 80)
        connection = self.connections.get(key)
        if connection is None:
            connection = self.connections[key] = http.client.HTTPConnection(*key, timeout=timeout[1])
        connection.request("POST", parts.path, data, dict(headers))
        answer = FastResponse(connection.getresponse())
        answer.headers = _Headers(answer.headers)
        return answer

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


def cases(port: int) -> tuple[list[Case], Callable[[], None]]:
    url = f"http://127.0.0.1:{port}{PATH}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def with_http_client() -> Any:
        connection.request("POST", PATH, orjson.dumps(SMALL), HEADERS)
        return orjson.loads(connection.getresponse().read())

    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1, timeout=10.0)

    def with_urllib3() -> Any:
        return orjson.loads(pool.request("POST", PATH, body=orjson.dumps(SMALL), headers=HEADERS).data)

    session = requests.Session()

    def with_requests() -> Any:
        return orjson.loads(session.post(url, data=orjson.dumps(SMALL), headers=HEADERS, timeout=(10, 10)).content)

    api = {"name": "bench", "operations": ["echo"], "endpoint": {"port": port}}
    client = pyservice.Client(**api)
    fast = pyservice.Client(session=HTTPClientSession(), **api)  # type: ignore[arg-type]

    def close() -> None:
        connection.close()
        pool.close()
        session.close()
        client.close()
        fast.close()

    return [
        _case("http.client, kept alive", with_http_client, "limit"),
        _case("urllib3 connection pool", with_urllib3, "transports"),
        _case("requests.Session", with_requests, "transports"),
        _case("pyservice Client", lambda: client.echo(**SMALL), "pyservice"),
        _case("pyservice Client on an http.client session (demo)", lambda: fast.echo(**SMALL), "pyservice"),
    ], close


def run(mode: Mode, progress: Progress) -> dict[str, Any]:
    server = Server("bare", "granian", workers=1)
    server.start()
    try:
        server.wait_ready()
        measured, close = cases(server.port)
        try:
            progress.step(SECTION, f"{len(measured)} clients against granian (1 worker) serving the bare app")
            results = run_rounds(SECTION, measured, rounds=mode.rounds, target=mode.client_target, progress=progress)
        finally:
            close()
    finally:
        server.stop()
    by_label = {result.label: result for result in results}
    limit, session = by_label["http.client, kept alive"], by_label["requests.Session"]
    rows = []
    for result in results:
        row = result.summary(limit)
        row["ratio_to_requests"] = session.median / result.median
        rows.append(row)
    return {"rows": rows, "settings": {"server": "granian", "workers": 1, "app": "bare"}}
