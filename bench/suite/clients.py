"""Section 3: the client side, against a fast server (granian serving the bare app).

Every case does the same work per call: encode the request fields, POST
them over a kept-alive connection, read the answer, decode it. The server
is the same for all, so the ratios compare the clients: first each transport
library alone (the candidates for the Client's transport), then the Client
on its default transport and on ``requests``, then the Client with each
retry feature, whose cost per call is the difference to ``no retry budget``.
"""

from __future__ import annotations

import http.client
import importlib
import io
import time
from collections.abc import Callable
from typing import Any

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


def _optional(name: str) -> Any:
    # pycurl and httpx are measured when installed (bench/requirements.txt lists them);
    # niquests is not: it replaces urllib3 with its fork in the same environment.
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def transport_cases(port: int, closers: list[Callable[[], None]]) -> list[Case]:
    """The same call on each transport library, outside pyservice: the candidates."""
    url = f"http://127.0.0.1:{port}{PATH}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    closers.append(connection.close)

    def with_http_client() -> Any:
        connection.request("POST", PATH, orjson.dumps(SMALL), HEADERS)
        return orjson.loads(connection.getresponse().read())

    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1, timeout=10.0, retries=False)
    closers.append(pool.close)

    def with_urllib3() -> Any:
        answer = pool.urlopen("POST", PATH, body=orjson.dumps(SMALL), headers=HEADERS, redirect=False)
        return orjson.loads(answer.data)

    session = requests.Session()
    closers.append(session.close)

    def with_requests() -> Any:
        return orjson.loads(session.post(url, data=orjson.dumps(SMALL), headers=HEADERS, timeout=(10, 10)).content)

    cases = [
        _case("http.client, kept alive", with_http_client, "limit"),
        _case("urllib3 connection pool", with_urllib3, "transports"),
        _case("requests.Session", with_requests, "transports"),
    ]
    httpx = _optional("httpx")
    if httpx is not None:
        hx = httpx.Client(timeout=10.0)
        closers.append(hx.close)

        def with_httpx() -> Any:
            return orjson.loads(hx.post(url, content=orjson.dumps(SMALL), headers=HEADERS).content)

        cases.append(_case("httpx.Client", with_httpx, "transports"))
    pycurl = _optional("pycurl")
    if pycurl is not None:
        curl = pycurl.Curl()
        closers.append(curl.close)
        header_lines = [f"{name}: {value}" for name, value in HEADERS.items()]
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.HTTPHEADER, header_lines)
        curl.setopt(pycurl.CONNECTTIMEOUT, 10)
        curl.setopt(pycurl.TIMEOUT, 10)

        def with_pycurl() -> Any:
            buffer = io.BytesIO()
            curl.setopt(pycurl.POSTFIELDS, orjson.dumps(SMALL))
            curl.setopt(pycurl.WRITEDATA, buffer)
            curl.perform()
            return orjson.loads(buffer.getvalue())

        cases.append(_case("pycurl (libcurl)", with_pycurl, "transports"))
    return cases


def cases(port: int) -> tuple[list[Case], Callable[[], None]]:
    closers: list[Callable[[], None]] = []
    measured = transport_cases(port, closers)
    api: dict[str, Any] = {"name": "bench", "operations": ["echo"], "endpoint": {"port": port}}
    # The Client's own rows: the default transport, then requests via session=, then each retry
    # feature on top of the bare default (no budget, no breaker), so each row's cost is its own.
    clients = {
        "pyservice Client": pyservice.Client(**api),
        "pyservice Client on requests.Session (session=)": pyservice.Client(session=requests.Session(), **api),
        "pyservice Client, no retry budget": pyservice.Client(**api, retry_budget=None),
        "pyservice Client, circuit breaker": pyservice.Client(**api, circuit_breaker={}),
        "pyservice Client, hedged (no hedge sent)": pyservice.Client(
            **{**api, "operations": {"echo": {"idempotent": True, "hedge": {"delay": 5.0}}}}
        ),
    }
    for label, client in clients.items():
        closers.append(client.close)
        group = "retry features" if "," in label else "pyservice"
        measured.append(_case(label, lambda client=client: client.echo(**SMALL), group))

    def close() -> None:
        for closer in closers:
            closer()

    return measured, close


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
