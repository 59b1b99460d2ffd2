"""Where rendered lines go: the plugin's own stdlib logger, and optionally the whole stdlib."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import structlog
from structlog.typing import Processor

__all__ = [
    "LEVELS",
    "build_renderer",
    "configure_stdlib",
    "install_sink",
]

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

# gunicorn gives these loggers their own handlers and stops their propagation,
# after the service is imported; a filter on the logger outlives that.
SERVER_LOGGERS = ("gunicorn.error", "gunicorn.access")


class _StreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to ``sys.stdout`` or ``sys.stderr`` as they are when a line is written.

    Looking the stream up per line, like :data:`logging.lastResort`, keeps
    lines going where the process (or a test's capture) points them now.
    """

    def __init__(self, stream_name: str) -> None:
        super().__init__()
        self.stream_name = stream_name

    @property
    def stream(self) -> TextIO:
        stream: TextIO = getattr(sys, self.stream_name)
        return stream

    @stream.setter
    def stream(self, value: Any) -> None:
        # logging.StreamHandler.__init__ assigns it; the lookup above wins.
        pass


class _Redirect(logging.Filter):
    """Sends a server logger's records to our handler instead of the server's own."""

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler = handler

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.handler.level:
            self.handler.handle(record)
        return False


def _install_filter(logger: logging.Logger, new: logging.Filter) -> None:
    for old in [f for f in logger.filters if type(f) is type(new)]:
        logger.removeFilter(old)
    logger.addFilter(new)


def build_renderer(renderer: str, stream_name: str) -> list[Processor]:
    """The last processors of a chain: exception formatting and the renderer."""
    if renderer == "console":
        stream = getattr(sys, stream_name, None)
        colors = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
        # The console renderer formats exc_info itself, prettier than format_exc_info.
        return [structlog.dev.ConsoleRenderer(colors=colors)]
    return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]


def install_sink(logger_name: str, level: int, output: str) -> logging.Logger:
    """Prepare the stdlib logger the plugin's rendered lines are written to.

    With ``output`` ``"stdout"`` or ``"stderr"`` the logger gets one handler
    of ours (never two, however many services share it) and stops
    propagating, so each line is written once; with ``"stdlib"`` it keeps
    no handler of ours and its records go to the application's handlers.
    Only this named logger is touched.
    """
    sink = logging.getLogger(logger_name)
    sink.setLevel(level)
    ours = [handler for handler in sink.handlers if isinstance(handler, _StreamHandler)]
    for handler in ours:
        sink.removeHandler(handler)
    if output == "stdlib":
        sink.propagate = True
    else:
        handler = _StreamHandler(output)
        handler.setFormatter(logging.Formatter("%(message)s"))
        sink.addHandler(handler)
        sink.propagate = False
    return sink


def configure_stdlib(level: int, stream_name: str, final: Sequence[Processor], own_logger: str) -> logging.Handler:
    """Route every stdlib record through the plugin's renderer, once.

    Replaces the root logger's handlers with one that renders foreign
    records with ``final`` (redaction and the renderer), and redirects the
    server's loggers to it. Called only when the api asks for it.

    Returns:
        The installed handler.
    """
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = _StreamHandler(stream_name)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in SERVER_LOGGERS:
        _install_filter(logging.getLogger(name), _Redirect(handler))
    # Our own lines are rendered already and have their own handler.
    logging.getLogger(own_logger).propagate = False
    return handler
