"""pyservice-audit: one JSON line per call, written by a request-scope hook."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import pyservice

__all__ = ["AuditPlugin"]


class AuditPlugin(pyservice.Plugin):
    """Append one JSON line per call to ``path``: side, operation, outcome, status, duration."""

    name: ClassVar[str] = "audit"
    options: ClassVar[Mapping[str, pyservice.Option]] = {
        "path": pyservice.Option(str, doc="The file to append the lines to."),
        "include_request": pyservice.Option(bool, False, "Also write the request's field names."),
    }
    operation_options: ClassVar[Mapping[str, pyservice.Option]] = {
        "include_request": options["include_request"],
    }

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self._lock = threading.Lock()

    def setup(self, owner: pyservice.Service | pyservice.Client) -> None:
        """Register one request-scope hook per operation the plugin is on for."""
        for operation in owner.api.operations.values():
            config = self.operation_config(operation)
            if config is not None:
                hook = self._hook(owner, config["include_request"])
                owner.plugin(scope="request", operations=[operation.name], name=self.name)(hook)

    def _hook(self, owner: pyservice.Service | pyservice.Client, include_request: bool) -> Any:
        def audit(context: Any) -> None:
            started = time.perf_counter()
            outcome, status = "ok", 200
            try:
                context.process_request()
                status = context.status or 200
            except Exception as exc:
                if isinstance(owner, pyservice.Service):
                    answer = owner.describe_error(exc, context)
                    outcome, status = answer.name, answer.status
                else:
                    outcome, status = type(exc).__name__, getattr(exc, "status", None) or context.status
                raise
            finally:
                line = {
                    "side": owner.side,
                    "service": owner.api.name,
                    "operation": context.operation,
                    "outcome": outcome,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                }
                if include_request and context.request is not None:
                    line["fields"] = sorted(context.request)
                self._write(line)

        return audit

    def _write(self, line: dict[str, Any]) -> None:
        data = (json.dumps(line) + "\n").encode()
        # O_APPEND writes of one short line do not interleave across processes.
        with self._lock:
            descriptor = os.open(self.config["path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(descriptor, data)
            finally:
                os.close(descriptor)
