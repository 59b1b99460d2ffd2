"""The Service: an api description, its handlers and hooks, as a WSGI application."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ._api import Operation
from ._chain import Context, Hook, Step, adapt_operation_hook, chain_end, hooks_for
from ._container import Container, new_container, wrap
from ._errors import ApiError
from ._headers import EnvironHeaders
from ._owner import Owner
from ._plugin import Plugin
from ._wire import (
    JSON_HEADER,
    STATUS_LINES,
    JSONDecodeError,
    RequestRefused,
    encode,
    error_body,
    loads,
    read_body,
)
from .exceptions import exception_class

if TYPE_CHECKING:
    from .typing import StartResponse, WSGIEnvironment

__all__ = ["ErrorAnswer", "Service", "ServiceContext"]

logger = logging.getLogger("pyservice")
F = TypeVar("F", bound=Callable[..., Any])


class ServiceContext(Context):
    """The state of one call on the service side.

    Attributes:
        service: the Service answering the call.
        operation: the operation's name.
        environ: the WSGI environ of the request.
        request: the decoded request fields; ``None`` in the request scope
            before decoding.
        response: the response fields the handler fills.
        status: the HTTP status of a successful answer (200); hooks may
            change it.
        response_headers: extra headers of the answer, success or error, as
            ``(name, value)`` pairs; hooks append to it.
        response_body: the encoded answer once the response is encoded; a
            request-scope hook that stops the call may set it to answer with
            these bytes.
        caller: the trusted identity of the caller, set by an
            authentication plugin (pyservice-auth sets the principal's id,
            else the address resolved through its trusted proxies); ``None``
            when nothing established one. Plugins that key on the caller
            (throttling, caching) use ``context.caller or context.remote_addr``.
        principal: the authenticated principal, set by an authentication
            plugin; ``None`` for an anonymous call.
        error_logged: set to ``True`` by a hook that has logged an internal
            error with its traceback, so the service does not log it again.
    """

    side = "service"
    # Class-level defaults: most calls never change these, so __init__ does
    # not spend time setting them; assigning one shadows it per instance.
    request: Container = None  # type: ignore[assignment]  # until the body is decoded
    status = 200
    response_body: bytes | None = None
    caller: str | None = None
    principal: Any = None
    error_logged = False
    _body: bytes | None = None

    def __init__(self, service: Service, route: _Route, environ: WSGIEnvironment) -> None:
        self.service = service
        self.operation = route.name
        self.environ = environ
        self.response = new_container()
        self.response_headers: list[tuple[str, str]] = []
        self._route = route
        self._steps = route.steps
        self._next = 0

    @property
    def headers(self) -> EnvironHeaders:
        """The request's headers, case-insensitive and read-only."""
        return EnvironHeaders(self.environ)

    @property
    def remote_addr(self) -> str | None:
        """The address of the peer that sent the request (the socket's, not a header's)."""
        address: str | None = self.environ.get("REMOTE_ADDR")
        return address

    @property
    def body(self) -> bytes:
        """The raw request body, read on first access within the size limit.

        Raises:
            RequestRefused: the body breaks the protocol's framing rules.
        """
        body = self._body
        if body is None:
            body = self._body = read_body(self.environ, self._route.max_body_size)
        return body

    def __repr__(self) -> str:
        return f"<ServiceContext {self.service.api.name}.{self.operation}>"


@dataclass(frozen=True)
class ErrorAnswer:
    """How the service answers an exception.

    Attributes:
        status: the HTTP status.
        kind: ``"exception"`` (whitelisted), ``"protocol"`` (the request was
            refused by the protocol's rules) or ``"internal"``.
        name: the error's name on the wire.
        body: the encoded error shape.
        headers: headers the error itself asks for (``Allow`` on a 405).
    """

    status: int
    kind: str
    name: str
    body: bytes
    headers: list[tuple[str, str]]


class _Route:
    __slots__ = ("handler", "max_body_size", "name", "operation", "run", "steps")

    def __init__(self, operation: Operation, handler: Callable[..., Any] | None, hooks: list[Hook]) -> None:
        self.name = operation.name
        self.operation = operation
        self.handler = handler
        self.max_body_size = operation.max_body_size
        request_steps: list[Step] = [hook.function for hook in hooks_for(hooks, "request", operation)]
        operation_steps = [adapt_operation_hook(hook.function) for hook in hooks_for(hooks, "operation", operation)]
        handle = _handler_step(operation.name, handler)
        if operation_steps or handler is None:
            exchange: Step = _exchange
            inner: list[Step] = [*operation_steps, handle]
        else:
            exchange = _exchange_direct(handler)
            inner = []
        self.steps = (*request_steps, exchange, *inner, chain_end)
        self.run: Step = Context.process_request if request_steps else exchange


def _handler_step(name: str, handler: Callable[..., Any] | None) -> Step:
    if handler is None:

        def missing(context: Context) -> None:
            raise RequestRefused(501, "NotImplemented", f"operation {name!r} has no handler")

        return missing

    def handle(context: Context) -> None:
        handler(context.request, context.response, context)

    return handle


def _decode(body: bytes) -> Container:
    try:
        data = loads(body)
    except JSONDecodeError as exc:
        raise RequestRefused(400, "MalformedJSON", f"the body is not valid JSON: {exc}") from None
    if type(data) is not dict:
        raise RequestRefused(400, "MalformedRequest", f"the body must be a JSON object, not {type(data).__name__}")
    return wrap(data)


def _exchange(context: ServiceContext) -> None:
    context.request = _decode(context.body)
    context.process_request()
    context.response_body = encode(context.response)


def _exchange_direct(handler: Callable[..., Any]) -> Step:
    # The chain without operation-scope hooks, flattened: the per-call cost
    # of an operation without plugins is this one function.
    def exchange(context: ServiceContext) -> None:
        body = context._body
        if body is None:
            body = context._body = read_body(context.environ, context._route.max_body_size)
        request = context.request = _decode(body)
        context._next = -1  # the handler has nothing to continue to
        handler(request, context.response, context)
        context.response_body = encode(context.response)

    return exchange


class Service(Owner):
    """A service: the api description, its handlers and plugins, as a WSGI app.

    ``Service(**api)`` checks the description, builds the plugins it names
    (outermost first) and lets them register their hooks. Handlers and more
    hooks are then registered with the :meth:`operation` and :meth:`plugin`
    decorators, and :attr:`wsgi_application` serves it under any WSGI server.

    Args:
        available_plugins: plugin classes to use by name without installing
            them (tests, application-private plugins); they take precedence
            over installed plugins of the same name.
        **api: the api description's keys; see :doc:`/api-description`.

    Raises:
        ApiError: the description is wrong; the message names the key.

    Attributes:
        api: the checked description.
        exceptions: exception classes by name: ``service.exceptions.DoesNotExist``.
        plugins: the plugin instances named in the description, in order.
        side: ``"service"``.
    """

    side = "service"

    scopes = ("request", "operation")

    def __init__(self, *, available_plugins: Iterable[type[Plugin]] = (), **api: Any) -> None:
        self._handlers: dict[str, Callable[..., Any]] = {}
        super().__init__(available_plugins, api)
        self._whitelist: dict[type[BaseException], tuple[str, int]] = {
            exception_class(name): (name, status) for name, status in self.api.exceptions.items()
        }

    def operation(self, name: str | None = None) -> Callable[[F], F]:
        """Register the decorated function as the handler of an operation.

        The handler is called as ``handler(request, response, context)`` and
        fills ``response``; the exceptions it raises that the api whitelists
        reach the caller by name.

        Args:
            name: the operation's name; defaults to the function's name.

        Raises:
            ApiError: the api does not declare the operation, or it already
                has a handler.
        """

        def register(function: F) -> F:
            op = name or function.__name__
            if op not in self.api.operations:
                raise ApiError("operations", f"handler for {op!r}, which the api does not declare")
            if op in self._handlers:
                raise ApiError(f"operations.{op}", "a handler is already registered")
            self._handlers[op] = function
            self._compiled = None
            return function

        return register

    # -- serving ----------------------------------------------------------

    def compile(self) -> dict[str, _Route]:
        """Compose each operation's chain; done once, before the first call.

        Serving compiles on first use, and again after a registration; call
        it at start-up to fail early (``require_handlers``) and to keep the
        composition off the first request.

        Returns:
            The routing table, by URL path.

        Raises:
            ApiError: ``require_handlers`` is on and an operation has no handler.
        """
        api = self.api
        missing = [op for op in api.operations if op not in self._handlers]
        if missing and api.require_handlers:
            raise ApiError("require_handlers", f"no handler for {', '.join(sorted(missing))}")
        routes = {
            api.endpoint.path_for(api.version, name): _Route(op, self._handlers.get(name), self._hooks)
            for name, op in api.operations.items()
        }
        self._compiled = routes
        return routes

    def wsgi_application(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        """The WSGI application (PEP 3333) serving this service."""
        routes = self._compiled
        if routes is None:
            routes = self.compile()
        route = routes.get(environ.get("PATH_INFO", ""))
        if route is None or environ["REQUEST_METHOD"] != "POST":
            return self._refuse(environ, start_response, route)
        context = ServiceContext(self, route, environ)
        try:
            route.run(context)
            body = context.response_body
            if body is None:
                # A request-scope hook stopped the call before decoding.
                body = context.response_body = encode(context.response)
            status = context.status
            headers = [JSON_HEADER, ("Content-Length", str(len(body)))]
        except Exception as exc:
            answer = self.describe_error(exc, context)
            if answer.kind == "internal" and not context.error_logged:
                logger.error("internal error in %s.%s", self.api.name, context.operation, exc_info=exc)
            body, status = answer.body, answer.status
            headers = [JSON_HEADER, ("Content-Length", str(len(body))), *answer.headers]
        if context.response_headers:
            headers.extend(context.response_headers)
        start_response(STATUS_LINES.get(status) or f"{status} Unknown", headers)
        return [body]

    __call__ = wsgi_application

    def _refuse(self, environ: WSGIEnvironment, start_response: StartResponse, route: _Route | None) -> list[bytes]:
        if route is None:
            refusal = RequestRefused(404, "UnknownOperation", "no operation at this path")
        else:
            refusal = RequestRefused(405, "MethodNotAllowed", "operations are called with POST", [("Allow", "POST")])
        answer = self.describe_error(refusal)
        headers = [JSON_HEADER, ("Content-Length", str(len(answer.body))), *answer.headers]
        start_response(STATUS_LINES[answer.status], headers)
        return [answer.body]

    def describe_error(self, exc: BaseException, context: ServiceContext | None = None) -> ErrorAnswer:
        """How this service answers ``exc``: status, kind, name and body.

        Plugins that observe failures (logging) call it to learn the status
        a caller will see. It logs nothing: the service logs an internal
        error, with its traceback, to the ``pyservice`` logger once the call
        is over, unless a hook set ``context.error_logged``.
        """
        if isinstance(exc, RequestRefused):
            body = error_body("protocol", exc.name, exc.message)
            return ErrorAnswer(exc.status, "protocol", exc.name, body, exc.headers)
        found = self._whitelisted(type(exc))
        if found is not None:
            name, status = found
            body = error_body("exception", name, str(exc), args=list(exc.args))
            return ErrorAnswer(status, "exception", name, body, [])
        if self.api.debug:
            detail = traceback.format_exception(type(exc), exc, exc.__traceback__)
            body = error_body("internal", type(exc).__name__, str(exc), traceback=detail)
        else:
            body = error_body("internal", "InternalError", "internal error")
        return ErrorAnswer(500, "internal", "InternalError", body, [])

    def _whitelisted(self, cls: type[BaseException]) -> tuple[str, int] | None:
        whitelist = self._whitelist
        found = whitelist.get(cls)
        if found is None:
            # A subclass of a whitelisted exception travels as its base.
            for base in cls.__mro__[1:]:
                found = whitelist.get(base)
                if found is not None:
                    break
        return found

    def __repr__(self) -> str:
        return f"<Service {self.api.name} {self.api.version} ({len(self.api.operations)} operations)>"
