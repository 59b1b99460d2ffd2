"""The shapes third-party code writes against: handlers, hooks, WSGI.

Import them for annotations::

    from pyservice.typing import OperationHook

    def audit(request, response, context) -> None: ...
    hook: OperationHook = audit
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._container import Container

__all__ = [
    "Handler",
    "OperationHook",
    "ReadinessCheck",
    "RequestHook",
    "StartResponse",
    "WSGIApplication",
    "WSGIEnvironment",
]

#: The environ dict of a WSGI request (PEP 3333).
WSGIEnvironment = dict[str, Any]

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]


class StartResponse(Protocol):
    """The ``start_response`` callable of PEP 3333."""

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: _ExcInfo | None = ..., /
    ) -> Callable[[bytes], object]: ...


#: A WSGI application: ``app(environ, start_response) -> iterable of bytes``.
WSGIApplication = Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]


class Handler(Protocol):
    """An operation's handler: fills ``response`` from ``request``."""

    def __call__(self, request: Container, response: Container, context: Any, /) -> object: ...


class RequestHook(Protocol):
    """A request-scope hook: around the whole call, outside decoding and encoding.

    Continues the call with ``context.process_request()``.
    """

    def __call__(self, context: Any, /) -> object: ...


class OperationHook(Protocol):
    """An operation-scope hook (and, on a client, an attempt hook's sibling).

    Around the handler, with the decoded request and the response to fill;
    continues the call with ``context.process_request()``.
    """

    def __call__(self, request: Container, response: Container, context: Any, /) -> object: ...


#: A readiness check (``service.add_readiness_check``): returns None when
#: ready, or returns (or raises) the reason it is not.
ReadinessCheck = Callable[[], object]
