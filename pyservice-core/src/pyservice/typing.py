"""The shapes third-party code writes against: handlers, hooks, WSGI.

Import them for annotations::

    from pyservice.typing import OperationHook

    def audit(request, response, context) -> None: ...
    hook: OperationHook = audit
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict

if TYPE_CHECKING:
    from ._client import ClientContext
    from ._container import Container

__all__ = [
    "ApiDescription",
    "AttemptHook",
    "EndpointDescription",
    "Handler",
    "HealthDescription",
    "OperationDescription",
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
    """An operation-scope hook: ``hook(request, response, context)``.

    On a service, around the handler, with the decoded request and the
    response to fill; on a client, around encoding the request, every HTTP
    attempt and decoding the answer. Continues the call with
    ``context.process_request()``.
    """

    def __call__(self, request: Container, response: Container, context: Any, /) -> object: ...


class AttemptHook(Protocol):
    """A client's attempt-scope hook: ``hook(context)`` around each HTTP attempt, retries included.

    Sees the encoded ``context.body`` and may change the outgoing
    ``context.headers`` (a signature made again for each retry); after
    ``context.process_request()`` returns, ``context.http_response`` and
    ``context.status`` hold the attempt's answer, and setting
    ``context.retry_after`` asks for the call to be sent again.
    """

    def __call__(self, context: ClientContext, /) -> object: ...


#: A readiness check (``service.add_readiness_check``): returns None when
#: ready, or returns (or raises) the reason it is not.
ReadinessCheck = Callable[[], object]


#: A structure as the api description writes it: field names, a mapping of
#: field name to type spec, or a class whose annotations declare the fields
#: (see docs/structures.md).
StructureDescription = list[str] | Mapping[str, Any] | type

#: Exceptions as the api description writes them: names, or names with their status.
ExceptionsDescription = list[str] | Mapping[str, Mapping[str, int] | None]


class EndpointDescription(TypedDict, total=False):
    """The api description's ``endpoint``; see docs/api-description.md."""

    scheme: Literal["http", "https"]
    host: str
    port: int
    path: str


class HealthDescription(TypedDict, total=False):
    """The api description's ``health``."""

    live: str | None
    ready: str | None
    timeout: float


class OperationDescription(TypedDict, total=False):
    """One operation's options in the api description's ``operations`` mapping.

    Keys that plugins own (``read_only``...) are not listed: a description
    using them is a plain dict.
    """

    idempotent: bool
    max_body_size: int
    timeout: float | Mapping[str, float]
    plugins: Mapping[str, Mapping[str, Any] | bool]
    input: StructureDescription
    output: StructureDescription
    exceptions: ExceptionsDescription
    unknown_fields: Literal["reject", "ignore"]


class ApiDescription(TypedDict, total=False):
    """The api description, for type checkers and editors: ``api: ApiDescription = {...}``.

    Every key is optional, as in the description itself. ``Service(**api)``
    and ``Client(**api)`` take a plain dict just as well; this type lets an
    editor complete and check the core's keys. Keys that plugins own are
    not listed: a description using them is a plain dict.
    """

    name: str
    version: str | int
    timeout: float | Mapping[str, float]
    debug: bool
    endpoint: EndpointDescription
    operations: list[str] | Mapping[str, OperationDescription]
    exceptions: ExceptionsDescription
    plugins: Mapping[str, Mapping[str, Any] | bool | None]
    max_body_size: int
    retries: int
    require_handlers: bool
    health: HealthDescription | None
    openapi: str | None
    explorer: str | None
