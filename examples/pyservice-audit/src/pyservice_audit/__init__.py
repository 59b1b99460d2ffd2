"""pyservice-audit: one JSON line per call, written by a request-scope hook."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pyservice

__all__ = ["AuditPlugin"]


class AuditPlugin(pyservice.Plugin):
    """Append one JSON line per call to ``path``: side, operation, caller, outcome, status, duration, process."""

    name: ClassVar[str] = "audit"
    options: ClassVar[Mapping[str, pyservice.Option]] = {
        "path": pyservice.Option(str, doc="The file to append the lines to."),
        "include_request": pyservice.Option(bool, False, "Also write the request's field names."),
        "client_label": pyservice.Option(
            str, None, "A name for this client, written in its lines; the client's own.", side="client"
        ),
    }
    operation_options: ClassVar[Mapping[str, pyservice.Option]] = {
        "include_request": options["include_request"],
    }
    # Inside auth, wherever the api lists it: the line says who called (context.caller).
    after: ClassVar[tuple[str, ...]] = ("auth",)

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self._lock = threading.Lock()
        self._descriptor: int | None = None

    def setup(self, owner: pyservice.Service | pyservice.Client) -> None:
        """Register one request-scope hook per operation the plugin is on for, and a readiness check."""
        for operation in owner.api.operations.values():
            config = self.operation_config(operation)
            if config is not None:
                hook = self._hook(owner, config["include_request"])
                owner.plugin(scope="request", operations=[operation.name], name=self.name)(hook)
        if isinstance(owner, pyservice.Service):
            owner.add_readiness_check(self.name, self._ready)

    def start(self, owner: pyservice.Service | pyservice.Client) -> None:
        """Open the file once per process (in each worker, after the fork): every call appends to it."""
        self._descriptor = os.open(self.config["path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def stop(self, owner: pyservice.Service | pyservice.Client) -> None:
        """Close this process's file."""
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            os.close(descriptor)

    def _ready(self) -> str | None:
        folder = Path(self.config["path"]).resolve().parent
        return None if os.access(folder, os.W_OK) else f"cannot write to {folder}"

    def _hook(self, owner: pyservice.Service | pyservice.Client, include_request: bool) -> Any:
        label = self.config.get("client_label")

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
                    "caller": context.caller if owner.side == "service" else label,
                    "outcome": outcome,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "pid": os.getpid(),
                }
                if include_request and context.request is not None:
                    line["fields"] = sorted(context.request)
                self._write(line)

        return audit

    def _write(self, line: dict[str, Any]) -> None:
        data = (json.dumps(line) + "\n").encode()
        # One write of one short line to an O_APPEND file does not interleave across processes.
        with self._lock:
            if self._descriptor is not None:
                os.write(self._descriptor, data)
