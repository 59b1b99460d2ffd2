"""Coexistence with an application's own OpenTelemetry setup; each scenario in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def run(scenario: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(HERE / "global_scenarios.py"), scenario],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=HERE,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_by_default_spans_and_metrics_go_to_the_applications_providers_under_its_spans():
    result = run("the_applications_provider_gets_the_spans")
    assert result["names"] == ["app work", "things/get_thing", "things/get_thing", "things/get_thing"]
    assert result["one_trace"]
    assert result["call_is_under_the_app_span"]
    assert "rpc.server.call.duration" in result["metrics"]
    assert "rpc.client.call.duration" in result["metrics"]
    assert result["global_is_the_apps"]


def test_the_plugins_own_providers_leave_the_applications_alone():
    result = run("the_plugins_own_provider_leaves_the_global_one_alone")
    assert result == {"app_spans": 0, "global_is_the_apps": True}


def test_set_global_installs_the_plugins_providers():
    assert run("set_global_installs_the_plugins_providers") == {"global_is_sdk": True}


def test_an_application_that_sets_its_provider_after_start_up_gets_the_spans_from_then_on():
    result = run("before_the_application_sets_a_provider_calls_make_no_spans")
    assert result == {"spans": ["things/get_thing"]}
