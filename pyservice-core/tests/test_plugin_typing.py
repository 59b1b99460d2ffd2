"""The hook shapes of ``pyservice.typing`` catch a hook of the wrong shape under ``mypy --strict``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

USAGE = textwrap.dedent(
    """
    from pyservice import ClientContext, Container
    from pyservice.typing import AttemptHook, OperationHook, RequestHook


    def sign(context: ClientContext) -> None:
        context.headers["X-Signature"] = "..."
        context.process_request()


    def audit(request: Container, response: Container, context: object) -> None: ...


    attempt: AttemptHook = sign
    operation: OperationHook = audit
    request: RequestHook = sign
    """
)


def check(tmp_path: Path, source: str) -> tuple[str, int]:
    path = tmp_path / "usage.py"
    path.write_text(source)
    out, err, status = mypy_api.run(["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(path)])
    return out + err, status


def test_hooks_of_the_right_shape_type_check(tmp_path):
    output, status = check(tmp_path, USAGE)
    assert status == 0, output


def test_an_operation_hook_given_as_an_attempt_hook_is_a_type_error(tmp_path):
    output, status = check(tmp_path, USAGE + "\nwrong: AttemptHook = audit\n")
    assert status == 1
    assert 'variable has type "AttemptHook"' in output
