"""Plugins start in each process before its first call (after the fork, in a worker) and stop when it ends."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pyservice
import pytest
from pyservice import Plugin
from pyservice.testing import LiveServer, client_for

APPS = Path(__file__).parent / "apps"


def lifecycle_plugin(name: str, events: list[str], *, fail_start: bool = False, fail_stop: bool = False) -> type:
    def setup(self: Plugin, owner: Any) -> None:
        events.append(f"setup {name} {owner.side}")

    def start(self: Plugin, owner: Any) -> None:
        if fail_start:
            raise RuntimeError(f"{name} cannot start")
        events.append(f"start {name} {owner.side}")

    def stop(self: Plugin, owner: Any) -> None:
        events.append(f"stop {name} {owner.side}")
        if fail_stop:
            raise RuntimeError(f"{name} cannot stop")

    return type(name.title(), (Plugin,), {"name": name, "setup": setup, "start": start, "stop": stop})


def service_with(*classes: type) -> pyservice.Service:
    service = pyservice.Service(operations=["op"], plugins={cls.name: {} for cls in classes}, available_plugins=classes)
    service.operation("op")(lambda request, response, context: None)
    return service


def test_plugins_start_on_the_first_call_in_order_and_only_once(wsgi):
    events: list[str] = []
    service = service_with(lifecycle_plugin("outer", events), lifecycle_plugin("inner", events))
    assert events == ["setup outer service", "setup inner service"]
    service.compile()
    assert events == ["setup outer service", "setup inner service"]
    for _ in range(3):
        assert wsgi(service.wsgi_application, "/api/v1/op").status == 200
    assert events[2:] == ["start outer service", "start inner service"]


def test_a_health_probe_starts_the_plugins_too(wsgi):
    events: list[str] = []
    service = service_with(lifecycle_plugin("pool", events))
    assert wsgi(service.wsgi_application, "/health/ready", b"", method="GET").status == 200
    assert events[-1] == "start pool service"


def test_stop_runs_in_reverse_order_and_a_later_call_starts_again(wsgi):
    events: list[str] = []
    service = service_with(lifecycle_plugin("outer", events), lifecycle_plugin("inner", events))
    wsgi(service.wsgi_application, "/api/v1/op")
    service.stop()
    assert events[-2:] == ["stop inner service", "stop outer service"]
    service.stop()  # not started any more: nothing to do
    assert events[-1] == "stop outer service"
    wsgi(service.wsgi_application, "/api/v1/op")
    assert events[-2:] == ["start outer service", "start inner service"]


def test_a_plugin_that_fails_to_start_fails_the_call_and_the_started_ones_stop(wsgi):
    events: list[str] = []
    service = service_with(lifecycle_plugin("outer", events), lifecycle_plugin("broken", events, fail_start=True))
    with pytest.raises(RuntimeError, match="broken cannot start"):
        wsgi(service.wsgi_application, "/api/v1/op")
    assert events[2:] == ["start outer service", "stop outer service"]
    with pytest.raises(RuntimeError):
        wsgi(service.wsgi_application, "/api/v1/op")
    assert events[-2:] == ["start outer service", "stop outer service"]


def test_a_plugin_that_fails_to_stop_is_logged_and_the_others_still_stop(wsgi, caplog):
    events: list[str] = []
    service = service_with(lifecycle_plugin("outer", events), lifecycle_plugin("inner", events, fail_stop=True))
    wsgi(service.wsgi_application, "/api/v1/op")
    service.stop()
    assert events[-2:] == ["stop inner service", "stop outer service"]
    assert "plugin 'inner' failed to stop" in caplog.text


def test_a_client_starts_its_plugins_on_its_first_call():
    events: list[str] = []
    pool = lifecycle_plugin("pool", events)
    service = service_with(pool)
    client = client_for(service, available_plugins=[pool])
    assert "start pool client" not in events
    client.op()
    assert events[-2:] == ["start pool client", "start pool service"]
    client.stop()
    assert events[-1] == "stop pool client"


def test_an_owner_without_start_or_stop_work_keeps_its_plain_routes():
    service = pyservice.Service(operations=["op"])
    assert type(service.compile()) is dict
    assert type(service._compiled) is dict


def test_after_a_fork_the_child_starts_its_own_and_stops_them_at_exit(tmp_path):
    script = tmp_path / "fork.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys
            sys.path.insert(0, sys.argv[1])
            os.environ["LIFECYCLE_LOG"] = sys.argv[2]
            from lifecycle_app import service
            from pyservice.testing import client_for

            plain = {"name": "lifecycle", "operations": ["whoami"]}  # a client without the plugin
            client_for(service, plain).whoami()  # the parent starts its plugins
            pid = os.fork()
            if pid == 0:
                client_for(service, plain).whoami()
                sys.exit(0)  # a normal exit: atexit stops what the child started
            os.waitpid(pid, 0)
            print(pid)
            """
        )
    )
    log = tmp_path / "log"
    result = subprocess.run(
        [sys.executable, str(script), str(APPS), str(log)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    child = int(result.stdout)
    lines = log.read_text().splitlines()
    parent = int(lines[0].split()[1])
    assert lines == [f"setup {parent}", f"start {parent}", f"start {child}", f"stop {child}", f"stop {parent}"]


def calls_until_both_workers(port: int) -> dict[int, Any]:
    answers: dict[int, Any] = {}
    for _ in range(200):  # bounded: the server spreads new connections over its workers
        # A new client each time, so a new connection, which either worker may take.
        with pyservice.Client(name="lifecycle", operations=["whoami"], endpoint={"port": port}) as client:
            answer = client.whoami()
        answers[answer.pid] = answer
        if len(answers) == 2:
            break
    return answers


def test_under_pyservice_serve_each_worker_starts_its_plugins_after_the_fork(tmp_path):
    log = tmp_path / "lifecycle.log"
    with LiveServer("lifecycle_app:service", workers=2, cwd=APPS, env={"LIFECYCLE_LOG": str(log)}) as server:
        answers = calls_until_both_workers(server.port)
        master = server.process.pid if server.process is not None else None
        lines = log.read_text().splitlines()
    assert len(answers) == 2
    # Each worker used the pool it opened itself, never one opened in another process.
    for pid, answer in answers.items():
        assert answer.pool_pid == pid
    starts = [int(line.split()[1]) for line in lines if line.startswith("start")]
    assert sorted(starts) == sorted(answers)
    assert master not in starts
    assert [line for line in lines if line.startswith("setup")] == [f"setup {master}"]


def test_under_pyservice_serve_each_worker_stops_its_plugins_when_it_stops(tmp_path):
    log = tmp_path / "lifecycle.log"
    with LiveServer("lifecycle_app:service", workers=2, cwd=APPS, env={"LIFECYCLE_LOG": str(log)}) as server:
        answers = calls_until_both_workers(server.port)
    lines = log.read_text().splitlines()
    stops = [int(line.split()[1]) for line in lines if line.startswith("stop")]
    assert sorted(stops) == sorted(answers)
    assert os.getpid() not in stops


def test_closing_a_client_stops_its_plugins():
    events: list[str] = []
    pool = lifecycle_plugin("pool", events)
    client = client_for(service_with(pool), available_plugins=[pool])
    client.op()
    client.close()
    assert "stop pool client" in events
