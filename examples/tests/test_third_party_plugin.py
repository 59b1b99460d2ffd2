"""A third-party plugin, built as a wheel and installed in a fresh virtual environment, is found by name."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "pyservice-audit"
CORE = ROOT / "pyservice-core"

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import pyservice
    from pyservice.testing import client_for

    api = {"operations": ["greet"], "plugins": {"audit": {"path": sys.argv[1], "include_request": True}}}
    service = pyservice.Service(**api)

    @service.operation()
    def greet(request, response, context):
        response.greeting = "hello " + request.name

    client = client_for(service)
    print(json.dumps(dict(client.greet(name="wheel"))))
    """
)


def run(*command: str | Path) -> str:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_plugin_installed_from_its_wheel_is_enabled_by_name(tmp_path):
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", wheels, PLUGIN)
    (wheel,) = wheels.glob("pyservice_audit-0.1.0-*.whl")

    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", CORE, wheel)

    listed = run(environment / "bin" / "pyservice", "plugins")
    assert "audit" in listed
    assert "pyservice-audit 0.1.0" in listed

    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    log = tmp_path / "audit.jsonl"
    # Run outside the checkout, so only the installed distributions can be imported.
    result = subprocess.run(
        [str(python), str(script), str(log)], capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert json.loads(output) == {"greeting": "hello wheel"}
    # The same api enables the plugin on both sides: the service's line, then the client's.
    lines = [json.loads(text) for text in log.read_text().splitlines()]
    assert [line["side"] for line in lines] == ["service", "client"]
    for line in lines:
        assert (line["operation"], line["outcome"], line["status"], line["fields"]) == ("greet", "ok", 200, ["name"])
