"""The pytest plugin of pyservice-core, registered through ``pytest11``.

Fixtures:

- ``redis_url``: the Redis server tests may use (``PYSERVICE_TEST_REDIS``,
  default ``redis://127.0.0.1:6379/15``).
- ``postgresql_url``: the PostgreSQL database tests may use
  (``PYSERVICE_TEST_POSTGRESQL``, default
  ``postgresql://postgres@127.0.0.1:5432/test``).
- ``live_server``: a factory of ``LiveServer``
  instances, stopped after the test.
- ``service_client``: a factory of in-process clients,
  ``service_client(service)`` (see ``client_for``),
  closed after the test.
- ``private_redis``, ``private_postgres``: a started server of the test's own
  (``PrivateRedis``,
  ``PrivatePostgres``), which it may stop, restart
  and freeze; closed after the test. For a server shared by a module, make
  one in a fixture of your own and pass
  ``PrivateServerUnavailable`` to ``unavailable``.

Where Redis or PostgreSQL does not answer (or, for the private servers, is
not installed), the tests that ask for them are skipped with the reason,
unless ``PYSERVICE_REQUIRE_SERVICES=1`` is set (CI sets it): then they fail,
so a missing service never passes as green.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest

from ._client import Client
from .testing import LiveServer, PrivatePostgres, PrivateRedis, PrivateServerUnavailable, client_for

REQUIRE_SERVICES_ENV = "PYSERVICE_REQUIRE_SERVICES"
REDIS_ENV = "PYSERVICE_TEST_REDIS"
POSTGRESQL_ENV = "PYSERVICE_TEST_POSTGRESQL"


def unavailable(what: str, reason: str) -> NoReturn:
    """Skip the calling test because ``what`` is missing, or fail it in CI.

    Use it for any test that needs something from outside Python (a server,
    a binary): it skips with the reason, unless ``PYSERVICE_REQUIRE_SERVICES=1``
    is set, when it fails, so a missing service never passes as green.
    """
    message = f"{what} is not available: {reason}"
    if os.environ.get(REQUIRE_SERVICES_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_SERVICES_ENV}=1 forbids skipping)", pytrace=False)
    pytest.skip(message)


def _reachable(url: str, default_port: int, probe: bytes | None = None) -> str | None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            if probe is not None:
                sock.sendall(probe)
                sock.settimeout(1.0)
                if not sock.recv(64):
                    return f"{host}:{port} closed the connection"
    except OSError as exc:
        return f"cannot connect to {host}:{port} ({exc})"
    return None


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis URL that answers PING; skips (or fails in CI) otherwise."""
    url = os.environ.get(REDIS_ENV, "redis://127.0.0.1:6379/15")
    problem = _reachable(url, 6379, b"PING\r\n")
    if problem:
        unavailable("Redis", problem)
    return url


@pytest.fixture(scope="session")
def postgresql_url() -> str:
    """A PostgreSQL URL that accepts connections; skips (or fails in CI) otherwise."""
    url = os.environ.get(POSTGRESQL_ENV, "postgresql://postgres@127.0.0.1:5432/test")
    problem = _reachable(url, 5432)
    if problem:
        unavailable("PostgreSQL", problem)
    return url


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """Start services under ``pyservice serve``: ``live_server("app:service", cwd=...)``."""
    started: list[LiveServer] = []

    def start(target: str, **options: Any) -> LiveServer:
        server = LiveServer(target, **options)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def service_client() -> Iterator[Callable[..., Client]]:
    """Make in-process clients: ``service_client(service)``, with ``client_for``'s options."""
    made: list[Client] = []

    def make(service: Any, api: Mapping[str, Any] | None = None, **options: Any) -> Client:
        client = client_for(service, api, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A started ``redis-server`` of the test's own; skips (or fails in CI) without the binary."""
    try:
        server = PrivateRedis()
    except PrivateServerUnavailable as exc:
        unavailable("a private Redis", str(exc))
    with server:
        yield server


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started PostgreSQL cluster of the test's own; skips (or fails in CI) without the binaries."""
    try:
        server = PrivatePostgres()
    except PrivateServerUnavailable as exc:
        unavailable("a private PostgreSQL", str(exc))
    with server:
        yield server
