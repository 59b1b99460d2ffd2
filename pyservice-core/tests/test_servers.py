"""`pyservice serve` under each server it offers."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pyservice
import pytest
from pyservice.testing import LiveServer

APPS = Path(__file__).parent / "apps"


@pytest.mark.skipif(importlib.util.find_spec("granian") is None, reason="granian is not installed")
def test_granian_serves_the_same_protocol():
    with LiveServer("live_app:service", server="granian", workers=1, cwd=APPS) as server:
        client = pyservice.Client(operations=["echo", "refuse"], exceptions=["Refused"], endpoint={"port": server.port})
        assert client.echo(a=1) == {"a": 1, "stamped": True}
        with pytest.raises(client.exceptions.Refused):
            client.refuse()


def serve(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyservice", "serve", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=APPS,
        check=False,
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("live_app", "expected MODULE:SERVICE"),
        ("live_app:nothing", "has no attribute 'nothing'"),
        ("live_app:api", "is a dict, not a pyservice.Service"),
    ],
)
def test_serve_says_what_is_wrong_with_the_target(target, message):
    result = serve(target)
    assert result.returncode != 0
    assert message in result.stderr


def test_serve_refuses_a_read_timeout_over_the_worker_timeout():
    result = serve("live_app:service", "--server", "gunicorn", "--timeout", "5", "--read-timeout", "10")
    assert result.returncode != 0
    assert "--read-timeout (10.0) must be below --timeout (5)" in result.stderr
