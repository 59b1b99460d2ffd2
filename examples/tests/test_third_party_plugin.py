"""A third-party plugin, built as a wheel and installed in a fresh virtual environment, is found by name.

Then it is served under ``pyservice serve`` with two workers: its ``after = ("auth",)`` places it inside an
``auth`` plugin listed after it, and its per-worker ``start`` opens its file in each worker, after the fork.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import venv
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "pyservice-audit"
CORE = ROOT / "pyservice-core"

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import pyservice
    from pyservice.testing import client_for

    # The client's own option, from the environment: it never enters the shared description.
    os.environ["PYSERVICE_AUDIT_CLIENT_LABEL"] = "script"

    api = {"operations": ["greet"], "plugins": {"audit": {"path": sys.argv[1], "include_request": True}}}
    service = pyservice.Service(**api)

    @service.operation()
    def greet(request, response, context):
        response.greeting = "hello " + request.name

    client = client_for(service)
    print(json.dumps(dict(client.greet(name="wheel"))))
    """
)

# Served by the fresh environment's `pyservice serve`. The "auth" plugin here stands for pyservice-auth: it
# sets context.caller. The api lists audit first; audit's `after = ("auth",)` puts it inside auth anyway.
APP = textwrap.dedent(
    """
    import os
    import pyservice


    class Auth(pyservice.Plugin):
        name = "auth"

        def setup(self, owner):
            @owner.plugin("request", name=self.name)
            def authenticate(context):
                context.caller = context.headers.get("X-Caller")
                context.process_request()


    api = {
        "name": "audited",
        "operations": ["whoami"],
        "plugins": {"audit": {"path": os.environ["AUDIT_LOG"]}, "auth": {}},
    }
    service = pyservice.Service(**api, available_plugins=[Auth])


    @service.operation()
    def whoami(request, response, context):
        response.pid = os.getpid()
    """
)


def run(*command: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=600, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with pyservice-core (and its server extra) and the plugin's wheel."""
    folder = tmp_path_factory.mktemp("third-party")
    wheels = folder / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", wheels, PLUGIN)
    (wheel,) = wheels.glob("pyservice_audit-0.2.0-*.whl")
    environment = folder / "venv"
    venv.create(environment, with_pip=True)
    run(environment / "bin" / "python", "-m", "pip", "install", "--quiet", f"{CORE}[server]", wheel)
    return environment


def test_a_plugin_installed_from_its_wheel_is_enabled_by_name(environment, tmp_path):
    listed = run(environment / "bin" / "pyservice", "plugins")
    assert "audit" in listed
    assert "pyservice-audit 0.2.0" in listed

    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    log = tmp_path / "audit.jsonl"
    # Run outside the checkout, so only the installed distributions can be imported.
    output = run(environment / "bin" / "python", script, log, cwd=tmp_path)
    assert json.loads(output) == {"greeting": "hello wheel"}
    # The same api enables the plugin on both sides: the service's line, then the client's.
    lines = [json.loads(text) for text in log.read_text().splitlines()]
    assert [line["side"] for line in lines] == ["service", "client"]
    for line in lines:
        assert (line["operation"], line["outcome"], line["status"], line["fields"]) == ("greet", "ok", 200, ["name"])
    # The client's own option, read by the client only.
    assert [line["caller"] for line in lines] == [None, "script"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "pyservice serve exited before it listened"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    pytest.fail("pyservice serve did not listen within 30 s")


def open_files(pid: int) -> set[str]:
    folder = Path(f"/proc/{pid}/fd")
    found = set()
    for entry in folder.iterdir():
        try:
            found.add(os.readlink(entry))
        except OSError:  # closed meanwhile
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="reads a process's open files from /proc")
def test_under_pyservice_serve_with_two_workers_the_order_and_the_per_worker_start_hold(environment, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    log = tmp_path / "audit.jsonl"
    port = free_port()
    env = {**os.environ, "AUDIT_LOG": str(log), "PYTHONPATH": ""}
    chain = subprocess.run(
        [str(environment / "bin" / "pyservice"), "chain", "app:service", "whoami"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert chain.returncode == 0, chain.stderr
    assert chain.stdout.splitlines()[1:3] == [
        "  request   plugin auth  (listed 2nd in plugins, moved; before audit (AuditPlugin.after))",
        "  request   plugin audit  (listed 1st in plugins, moved; after auth (AuditPlugin.after))",
    ]
    server = subprocess.Popen(
        [str(environment / "bin" / "pyservice"), "serve", "app:service", "--workers", "2", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_listening(port, server)
        answered: set[int] = set()
        with requests.Session() as session:
            for _ in range(200):  # bounded: a new connection each time, until both workers answered
                answer = session.post(
                    f"http://127.0.0.1:{port}/api/v1/whoami",
                    json={},
                    headers={"X-Caller": "alice", "Connection": "close"},
                    timeout=10,
                )
                assert answer.status_code == 200, answer.text
                answered.add(answer.json()["pid"])
                if len(answered) == 2:
                    break
        ready = requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        # Each worker opened the file itself, after the fork; the master never did.
        holding = {pid for pid in (*answered, server.pid) if str(log) in open_files(pid)}
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode(errors="replace")
    assert len(answered) == 2, output
    assert holding == answered
    lines = [json.loads(text) for text in log.read_text().splitlines()]
    assert {line["pid"] for line in lines} == answered
    # Inside auth although listed first: every line knows the caller.
    assert {line["caller"] for line in lines} == {"alice"}
