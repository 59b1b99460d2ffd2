"""Services, raw WSGI calls and signed requests shared by the tests."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from typing import Any

import independent_signer
from pyservice import Service
from pyservice_auth import Auth

SECRET = "test-secret-0123456789abcdef0123456789abcdef"
OTHER_SECRET = "other-secret-0123456789abcdef0123456789abcd"
KEY_ID = "svc-a"
PEPPER = "pepper-0123456789abcdef0123456789abcdef"


def make_service(auth: Mapping[str, Any], operations: Any = None, **api: Any) -> Service:
    """A service whose operations answer the principal and caller they saw."""
    service = Service(
        available_plugins=[Auth],
        name="authtest",
        operations=operations or {"echo": {"idempotent": True}, "other": {}},
        plugins={"auth": dict(auth)},
        **api,
    )

    def answer(request: Any, response: Any, context: Any) -> None:
        principal = context.principal
        response.principal = None if principal is None else principal.id
        response.roles = None if principal is None else sorted(principal.roles)
        response.caller = context.caller
        response.identity = context.caller_identity.key
        response.got = dict(request)

    for name in service.api.operations:
        service.operation(name)(answer)
    return service


def signed_service(**auth: Any) -> Service:
    config = {"mode": "signed", "keys": {KEY_ID: SECRET}, "allow": ["authenticated"], **auth}
    return make_service(config)


def wsgi_call(
    service: Any,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"{}",
    path: str = "/api/v1/echo",
    method: str = "POST",
    query: str = "",
    remote_addr: str | None = "127.0.0.1",
    extra_environ: Mapping[str, Any] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Call the WSGI app directly (no HTTP library reshaping the headers); status, JSON body, headers."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
    }
    if remote_addr is not None:
        environ["REMOTE_ADDR"] = remote_addr
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    environ.update(extra_environ or {})
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started["status"] = status
        started["headers"] = response_headers
        return lambda data: None

    content = b"".join(service(environ, start_response))
    return int(started["status"].split()[0]), json.loads(content), dict(started["headers"])


def signed(
    body: bytes = b"{}",
    *,
    path: str = "/api/v1/echo",
    secret: str = SECRET,
    key_id: str = KEY_ID,
    timestamp: int | None = None,
    nonce: str | None = None,
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
    query: str = "",
) -> dict[str, str]:
    """Headers of a request signed by the independent implementation."""
    import uuid

    return independent_signer.signed_headers(
        secret,
        key_id,
        int(time.time()) if timestamp is None else timestamp,
        nonce or uuid.uuid4().hex,
        path,
        body,
        dict(headers if headers is not None else {"Content-Type": "application/json"}),
        method=method,
        query=query,
    )


def refusal(answer: dict[str, Any]) -> tuple[str, str]:
    error = answer["error"]
    return error["name"], error["message"]


class PrivateRedis:
    """A redis-server of our own on a free port, which a test may freeze (SIGSTOP) and thaw."""

    def __init__(self) -> None:
        import shutil
        import subprocess
        import tempfile

        from pyservice.testing import free_port

        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="auth-redis-")
        command = [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", self.dir]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.025)
        self.close()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def freeze(self) -> None:
        """Stop the server without closing anything: connections stay open, nothing answers."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        import shutil

        self.thaw()  # a stopped process would not act on SIGTERM
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
