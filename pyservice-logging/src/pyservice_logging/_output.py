"""Where rendered lines go: straight to stdout or stderr, a stdlib logger, or the whole stdlib."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import MutableMapping, Sequence
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import Processor

from ._redaction import Redactor

__all__ = [
    "LEVELS",
    "JSONRenderer",
    "StreamLogger",
    "TimeStamper",
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


def _fallback(value: Any) -> Any:
    # What JSON cannot hold is shown as structlog's JSONRenderer shows it.
    try:
        return value.__structlog__()
    except AttributeError:
        return repr(value)


# Dataclasses go to _fallback (their repr), as they did with the stdlib's json:
# orjson would render their fields, which redaction never walked.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS


class _Unusual(Exception):
    """An object orjson cannot render itself: the event takes the full redaction path."""


def _refuse(value: Any) -> Any:
    raise _Unusual


def _render(event_dict: Any) -> bytes:
    try:
        line: bytes = orjson.dumps(event_dict, default=_fallback, option=_ORJSON_OPTIONS)
    except TypeError:
        line = json.dumps(event_dict, default=_fallback, separators=(",", ":")).encode()
    return line


class JSONRenderer:
    """The last processor of a JSON chain: redaction, then one event dict to one JSON object, with orjson.

    Args:
        redactor: masks the event's secrets before it is rendered.
        text: return ``str`` (for stdlib handlers) rather than ``bytes``.

    With a redactor, the event is rendered first: when
    :meth:`Redactor.plain_json` finds nothing in the line that redaction
    could change, the line is the answer; otherwise the event goes through
    the redactor and is rendered again. The output is the same either way.
    What orjson refuses (keys that are not strings, integers beyond 64
    bits, strings with lone surrogates) is rendered by the stdlib's
    ``json`` instead, ASCII-escaped, so an odd value never fails the call.
    """

    __slots__ = ("_redactor", "_text")

    def __init__(self, redactor: Redactor | None = None, *, text: bool = False) -> None:
        self._redactor = redactor
        self._text = text

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> bytes | str:
        """Render ``event_dict`` (the structlog processor protocol)."""
        redactor = self._redactor
        if redactor is None:
            line = _render(event_dict)
        else:
            try:
                line = orjson.dumps(event_dict, default=_refuse, option=_ORJSON_OPTIONS)
            except TypeError:  # _Unusual, or what orjson refuses
                plain = False
            else:
                plain = redactor.plain_json(event_dict, line)
            if not plain:
                line = _render(redactor(logger, method_name, event_dict))
        return line.decode() if self._text else line


class TimeStamper:
    """Adds ``timestamp``: the UTC time in ISO 8601, as ``structlog.processors.TimeStamper(fmt="iso", utc=True)``.

    The same text (``2026-01-31T12:00:00.123456Z``, the fraction left out
    when it is zero), made without a ``datetime`` per event: the part up to
    the seconds is formatted once per second and kept.
    """

    __slots__ = ("_second",)

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """Stamp ``event_dict`` (the structlog processor protocol)."""
        # Floored to the microsecond, as datetime.now() does.
        seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
        second = self._second
        if second[0] != seconds:
            # One tuple, replaced whole: threads never see half of it.
            second = self._second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
        event_dict["timestamp"] = f"{second[1]}.{micros:06d}Z" if micros else second[1] + "Z"
        return event_dict


# One lock for every StreamLogger: two services in one process may share a stream.
_WRITE_LOCK = threading.Lock()


class StreamLogger:
    """A structlog logger writing each line to ``sys.stdout`` or ``sys.stderr``, no stdlib ``logging`` on the way.

    Like structlog's ``BytesLogger``, it writes bytes to the stream's binary
    buffer and flushes, one line per event; unlike it, it looks the stream
    up per line, like :data:`logging.lastResort`, so lines go where the
    process (or a test's capture) points ``sys.stdout``/``sys.stderr`` now.
    Text waiting in the text layer is flushed first, so the order of what
    the application prints and of our lines is kept. ``str`` lines (the
    console renderer's) and streams without a binary buffer get text.

    Args:
        stream_name: ``"stdout"`` or ``"stderr"``.
    """

    __slots__ = ("_buffer", "_stream", "stream_name")

    def __init__(self, stream_name: str) -> None:
        self.stream_name = stream_name
        self._stream: Any = None
        self._buffer: Any = None

    def msg(self, message: bytes | str) -> None:
        """Write one rendered line."""
        stream = getattr(sys, self.stream_name)
        if stream is None:  # pythonw, or a closed-down interpreter
            return
        if stream is not self._stream:
            self._buffer = getattr(stream, "buffer", None)
            self._stream = stream
        buffer = self._buffer
        with _WRITE_LOCK:
            if isinstance(message, str):
                stream.write(message + "\n")
                stream.flush()
            elif buffer is None:
                stream.write(message.decode() + "\n")
                stream.flush()
            else:
                stream.flush()
                buffer.write(message + b"\n")
                buffer.flush()

    log = debug = info = warning = error = critical = exception = msg


def _install_filter(logger: logging.Logger, new: logging.Filter) -> None:
    for old in [f for f in logger.filters if type(f) is type(new)]:
        logger.removeFilter(old)
    logger.addFilter(new)


def build_renderer(renderer: str, stream_name: str, redactor: Redactor, *, text: bool = False) -> list[Processor]:
    """The last processors of a chain: exception formatting, redaction and the renderer.

    Redaction runs just before rendering, after exceptions are formatted.

    Args:
        renderer: ``"json"`` or ``"console"``.
        stream_name: where lines go (``"stdout"``, ``"stderr"`` or ``"stdlib"``).
        redactor: masks secrets.
        text: a JSON line as ``str`` (for stdlib handlers) rather than ``bytes``.
    """
    if renderer == "console":
        stream = getattr(sys, stream_name, None)
        colors = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
        # The console renderer formats exc_info itself, prettier than format_exc_info.
        return [redactor, structlog.dev.ConsoleRenderer(colors=colors)]
    return [structlog.processors.format_exc_info, JSONRenderer(redactor, text=text)]


def install_sink(logger_name: str, level: int, output: str) -> StreamLogger | logging.Logger:
    """What the plugin's rendered lines are written to.

    With ``output`` ``"stdout"`` or ``"stderr"``, a :class:`StreamLogger`:
    no stdlib ``LogRecord``, handler or lock per line, and no stdlib logger
    touched. With ``"stdlib"``, the stdlib logger ``logger_name`` at
    ``level``, propagating to the application's handlers (handlers an
    earlier version of the plugin gave it are removed).
    """
    if output != "stdlib":
        return StreamLogger(output)
    sink = logging.getLogger(logger_name)
    sink.setLevel(level)
    for handler in [handler for handler in sink.handlers if isinstance(handler, _StreamHandler)]:
        sink.removeHandler(handler)
    sink.propagate = True
    return sink


def configure_stdlib(level: int, stream_name: str, final: Sequence[Processor]) -> logging.Handler:
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
            TimeStamper(),
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
    # The plugin's own lines never reach the stdlib here: its StreamLogger writes them.
    return handler
