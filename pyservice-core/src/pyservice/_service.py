"""The Service: an api description, its handlers and hooks, as a WSGI application."""

from __future__ import annotations

import inspect
import logging
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._api import Operation
from ._arrival import ENVIRON_KEY as ARRIVED
from ._caller import Caller, anonymous_callers
from ._chain import Context, Hook, Step, adapt_operation_hook, chain_end, hooks_for
from ._container import Container, declared_request_class, new_container, to_json_value
from ._deadline import ENVIRON_KEY, current_deadline, parse_timeout
from ._errors import ApiError, PyserviceError
from ._headers import EnvironHeaders
from ._health import GetEndpoint, ReadinessCheck, ReadinessChecks, answer_get, live_endpoint, ready_endpoint
from ._owner import Owner, check_callable
from ._plugin import Plugin
from ._structures import FieldError, Structure
from ._wire import (
    JSON_HEADER,
    STATUS_LINES,
    JSONDecodeError,
    RequestRefused,
    dumps,
    encode,
    error_body,
    loads,
    read_body,
)
from .exceptions import exception_class

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .typing import ApiDescription, StartResponse, WSGIEnvironment

__all__ = ["ErrorAnswer", "Service", "ServiceContext"]

logger = logging.getLogger("pyservice")
_new_object = object.__new__
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
        caller_identity: who is calling, as a ``Caller``:
            the principal an authentication plugin proved with its scheme,
            else the anonymous caller by address (the one the plugin resolved
            through trusted proxies, else the socket's peer). Never ``None``.
            Plugins that key on the caller (throttling, caching) use its
            ``key``: no two different callers share one. An authentication
            plugin sets it; without one it is computed on read, allocating
            nothing for an anonymous call.
        caller: the caller's display name, set by an authentication plugin
            (pyservice-auth sets the principal's id, else the resolved
            address); ``None`` when nothing set one. A principal's id and an
            address can be the same string: never key on it. A plugin that
            sets only ``caller`` makes ``caller_identity`` the principal
            ``caller:<caller>``.
        principal: the authenticated principal, set by an authentication
            plugin; ``None`` for an anonymous call.
        error_logged: set to ``True`` by a hook that has logged an internal
            error with its traceback, so the service does not log it again.
        deadline: the ``time.monotonic()`` time by which the caller wants
            its answer (from its ``Pyservice-Timeout`` header), or ``None``
            when it sent none; ``time_left`` says how long that is.
    """

    side = "service"
    # Class-level defaults: most calls never change these, so __init__ does
    # not spend time setting them; assigning one shadows it per instance.
    request: Container = None  # type: ignore[assignment]  # until the body is decoded
    status = 200
    response_body: bytes | None = None
    caller: str | None = None
    # Computed on read unless a plugin set it (see _CallerIdentity below).
    caller_identity: Caller
    principal: Any = None
    error_logged = False
    deadline: float | None = None
    _body: bytes | None = None
    # The chain of an operation without hooks: a handler that calls
    # process_request() reaches its end. Calls through hooks set their own.
    _steps: tuple[Step, ...] = (chain_end,)
    _next = 0

    # Set per call by Service.wsgi_application, not by an __init__: calling a class
    # whose __init__ is Python code costs a C-level frame, a tenth of a call's overhead.
    service: Service
    environ: WSGIEnvironment
    response_headers: list[tuple[str, str]]
    _route: _Route

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

    @classmethod
    def add_lazy_attribute(cls, name: str, open: Callable[[ServiceContext], Any], *, owner: str) -> None:
        """Make ``context.<name>`` a value computed on its first read in each call.

        For a per-call resource that most calls never use (a database
        session): a call that never reads the attribute never opens it, and
        pays nothing for it. On the first read, ``open(context)`` is called
        and its result is stored on that call's context, so later reads cost
        what any attribute costs. Whatever ``open`` needs of the call (the
        state of the plugin's own hook, say) it reads from the context, so one
        ``open`` serves every Service in the process; the hook that closes
        the resource finds it on the context too.

        Called by a plugin's ``setup``; calling it again with the same
        ``owner`` keeps the first definition.

        Args:
            name: the attribute, a Python identifier.
            open: computes the value for one call; an ``AttributeError`` it
                raises says the attribute cannot be had here.
            owner: who defines it (the plugin's name), named in conflicts.

        Raises:
            ValueError: ``name`` is not an identifier, is one of the
                context's own attributes, or another owner defined it.
        """
        existing = cls.__dict__.get(name)
        if isinstance(existing, _LazyAttribute):
            if existing.owner != owner:
                raise ValueError(f"context.{name} is already defined by {existing.owner!r}")
            return
        if not name.isidentifier() or name.startswith("_") or hasattr(cls, name):
            raise ValueError(f"context.{name} is not free: expected an identifier that is not the context's own")
        setattr(cls, name, _LazyAttribute(name, open, owner))


class _LazyAttribute:
    """A context attribute computed on its first read (``ServiceContext.add_lazy_attribute``).

    A non-data descriptor: once computed, the value is stored on the
    context, which Python looks in before the class.
    """

    __slots__ = ("name", "open", "owner")

    def __init__(self, name: str, open: Callable[[ServiceContext], Any], owner: str) -> None:
        self.name = name
        self.open = open
        self.owner = owner

    def __get__(self, context: ServiceContext | None, cls: type | None = None) -> Any:
        if context is None:
            return self
        value = self.open(context)
        setattr(context, self.name, value)
        return value


class _CallerIdentity:
    """``context.caller_identity`` when no plugin set it: from ``context.caller``, else the peer's address.

    A non-data descriptor, so a plugin's assignment to the context wins.
    """

    __slots__ = ()

    def __get__(self, context: ServiceContext | None, cls: type | None = None) -> Any:
        if context is None:
            return self
        caller = context.caller
        if caller is not None:
            # A plugin that sets only the display name: its ids are a namespace of their own.
            return Caller.principal("caller", caller)
        # Caller.anonymous's table, read here first: a known address costs no further call.
        address = context.environ.get("REMOTE_ADDR")
        return anonymous_callers.get(address) or Caller.anonymous(address)


ServiceContext.caller_identity = _CallerIdentity()  # type: ignore[assignment]


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


class InvalidOutput(PyserviceError):
    """A handler answered fields that break its operation's declared ``output`` (checked in debug mode)."""


class _Route:
    __slots__ = (
        "deadline_steps",
        "described",
        "handler",
        "handler_only",
        "max_body_size",
        "name",
        "operation",
        "run",
        "steps",
        "whitelist",
    )

    def __init__(
        self,
        operation: Operation,
        handler: Callable[..., Any] | None,
        hooks: list[Hook],
        *,
        check_output: bool = False,
        whitelist: dict[type[BaseException], tuple[str, int]] | None = None,
    ) -> None:
        self.name = operation.name
        self.operation = operation
        self.handler = handler
        self.max_body_size = operation.max_body_size
        self.whitelist = whitelist
        request_hooks = hooks_for(hooks, "request", operation)
        operation_hooks = hooks_for(hooks, "operation", operation)
        request_steps: list[Step] = [hook.function for hook in request_hooks]
        operation_steps = [adapt_operation_hook(hook.function) for hook in operation_hooks]
        handle = _handler_step(operation.name, handler)
        self.described = _describe_route(operation, handler, request_hooks, operation_hooks, check_output)
        # Operations without input or checked output keep the plain steps: they pay nothing for structures.
        decode = (
            _decode
            if operation.input is None
            else _validating_decode(operation.name, operation.input, strict=check_output)
        )
        output = operation.output if check_output else None
        if decode is _decode and output is None:
            generic: Step = _exchange
        else:
            generic = _make_exchange(decode, output, operation.name)
        if operation_steps or handler is None:
            exchange = generic
            inner: list[Step] = [*operation_steps, handle]
        else:
            direct = handler if output is None else _checking_output(handler, output, operation.name)
            exchange = _exchange_direct(direct, decode, operation.max_body_size)
            inner = []
        self.steps = (*request_steps, exchange, *inner, chain_end)
        # The chain starts through process_request, so that each step continues
        # from the one after it; a flattened exchange continues to nothing and
        # can be called as it is.
        self.run: Step = Context.process_request if request_steps or inner else exchange
        # An operation with no hook and nothing to check is called by
        # Service.wsgi_application itself, the chain written out: read, decode, handle, encode.
        plain = handler is not None and generic is _exchange and not (request_steps or operation_steps)
        self.handler_only = handler if plain else None
        # A call that brings a deadline runs these: the same chain, the deadline checked after decoding.
        self.deadline_steps = (*request_steps, generic, _refuse_late, *operation_steps, handle, chain_end)

    def __repr__(self) -> str:
        return f"<_Route {self.name}: {self.described}>"


def _describe_route(
    operation: Operation,
    handler: Callable[..., Any] | None,
    request_hooks: list[Hook],
    operation_hooks: list[Hook],
    check_output: bool,
) -> str:
    parts = [f"request:{hook.name}" for hook in request_hooks]
    parts.append("decode")
    if operation.input is not None:
        parts.append("check input")
    parts.extend(f"operation:{hook.name}" for hook in operation_hooks)
    if handler is None:
        parts.append("no handler (501)")
    else:
        original = getattr(handler, "__wrapped__", handler)
        unpacked = " (unpacking)" if hasattr(handler, "_pyservice_unpack") else ""
        parts.append(f"handler {getattr(original, '__qualname__', operation.name)}{unpacked}")
    if check_output and operation.output is not None:
        parts.append("check output")
    parts.append("encode")
    return " > ".join(parts)


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
        fields = loads(body)
    except JSONDecodeError as exc:
        raise _malformed_json(exc) from None
    if type(fields) is not dict:
        raise _not_an_object(fields)
    request: Container = _new_object(Container)  # wrap(fields), without the call: this runs on every request
    request.__dict__ = fields
    return request


def _malformed_json(exc: JSONDecodeError) -> RequestRefused:
    return RequestRefused(400, "MalformedJSON", f"the body is not valid JSON: {exc}")


def _not_an_object(value: Any) -> RequestRefused:
    return RequestRefused(400, "MalformedRequest", f"the body must be a JSON object, not {type(value).__name__}")


#: At most this many field errors are sent back; the message says how many more there were.
_MAX_FIELD_ERRORS = 100


def invalid_request(errors: list[FieldError]) -> RequestRefused:
    """The protocol's 400 ``InvalidRequest``, naming every field error."""
    shown = errors[:_MAX_FIELD_ERRORS]
    message = "; ".join(str(error) for error in shown[:10])
    if len(errors) > 10:
        message += f"; and {len(errors) - 10} more"
    noun = "field error" if len(errors) == 1 else "field errors"
    return RequestRefused(400, "InvalidRequest", f"{len(errors)} {noun}: {message}", extra={"errors": shown})


def _validating_decode(name: str, structure: Structure, *, strict: bool = False) -> Callable[[bytes], Container]:
    accept = structure.accept

    def decode(body: bytes) -> Container:
        request = _decode(body)
        fields = request.__dict__
        if not accept(fields):
            raise invalid_request(structure.explain(fields))
        return request

    if strict:
        # Debug mode: a read of a field the input does not declare raises instead of reading None.
        # A function of its own, so that calls outside debug mode pay nothing for it.
        declared = declared_request_class(name, structure)
        check = decode

        def decode(body: bytes) -> Container:
            request = check(body)
            request.__class__ = declared
            return request

    decode.__qualname__ = f"decode and check the input of {name}"
    return decode


def _check_output(name: str, output: Structure, response: Container) -> None:
    fields = response.__dict__
    if not output.accept(fields):
        errors = "; ".join(str(error) for error in output.explain(fields))
        raise InvalidOutput(f"operation {name!r} answered fields that break its declared output: {errors}")


def _exchange(context: ServiceContext) -> None:
    context.request = _decode(context.body)
    context.process_request()
    context.response_body = encode(context.response)


def _make_exchange(decode: Callable[[bytes], Container], output: Structure | None, name: str) -> Step:
    def exchange(context: ServiceContext) -> None:
        context.request = decode(context.body)
        context.process_request()
        if output is not None:
            _check_output(name, output, context.response)
        context.response_body = encode(context.response)

    return exchange


def _checking_output(handler: Callable[..., Any], output: Structure, name: str) -> Callable[..., Any]:
    def handle(request: Container, response: Container, context: ServiceContext) -> None:
        handler(request, response, context)
        _check_output(name, output, response)

    return handle


def _exchange_direct(handle: Callable[..., Any], decode: Callable[[bytes], Container], limit: int) -> Step:
    # The chain without operation-scope hooks, flattened: after the request
    # hooks, the per-call cost is this one function.
    def exchange(context: ServiceContext) -> None:
        body = context._body
        if body is None:
            body = context._body = read_body(context.environ, limit)
        request = context.request = decode(body)
        handle(request, context.response, context)
        context.response_body = encode(context.response)

    return exchange


def _refuse_late(context: Any) -> None:
    deadline: float = context.deadline
    late = time.monotonic() - deadline
    if late >= 0:
        raise RequestRefused(
            504, "DeadlineExceeded", f"the caller's deadline passed {late:.3f}s before the operation could start"
        )
    context.process_request()


def _run_chain(context: ServiceContext, route: _Route) -> bytes:
    """Run the call through its hooks, or with its deadline; returns the encoded answer."""
    header = context.environ.get(ENVIRON_KEY)
    if header is None:
        context._steps = route.steps
        route.run(context)
    else:
        # Counted from when the request arrived, if the server read it late (see _arrival).
        deadline = (context.environ.get(ARRIVED) or time.monotonic()) + parse_timeout(header)
        context.deadline = deadline
        context._steps = route.deadline_steps
        token = current_deadline.set(deadline)
        try:
            context.process_request()
        finally:
            current_deadline.reset(token)
    body = context.response_body
    if body is None:
        # A request-scope hook stopped the call before decoding.
        body = context.response_body = encode(context.response)
    return body


#: At most this much of an unknown path is repeated in the 404's message.
_PATH_SHOWN = 200


def unknown_operation(environ: WSGIEnvironment, services: Iterable[Service]) -> RequestRefused:
    """The protocol's 404 ``UnknownOperation``, naming the path and the operations that are served."""
    path = str(environ.get("PATH_INFO", ""))
    if len(path) > _PATH_SHOWN:
        path = path[:_PATH_SHOWN] + "..."
    served = "; ".join(
        f"{service.api.name} {service.api.version} answers POST "
        f"{service.api.endpoint.path.replace('{version}', service.api.version)} for "
        f"{', '.join(service.api.operations) or 'no operation'}"
        for service in services
    )
    return RequestRefused(404, "UnknownOperation", f"no operation at the path {path!r} ({served})")


def _unpacking(function: Callable[..., Any], operation: Operation) -> Callable[..., Any]:
    """Adapt ``def op(field, other=default, context=None)`` to ``(request, response, context)``."""
    name = operation.name
    key = f"operations.{name}"
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError) as exc:
        raise ApiError(key, f"the handler's signature cannot be read to unpack fields: {exc}") from None
    takes_context = "context" in parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    fields = {}
    for parameter in parameters.values():
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise ApiError(key, f"the handler's parameter {parameter.name!r} is positional-only; fields are keywords")
        keyword = parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        if keyword and parameter.name != "context":
            fields[parameter.name] = parameter.default is inspect.Parameter.empty
    required = frozenset(field for field, is_required in fields.items() if is_required)
    known = frozenset(fields)
    structure = operation.input
    if structure is not None:
        if not takes_all:
            extra = [field for field in structure.fields if field not in known]
            if extra:
                raise ApiError(f"{key}.input.{extra[0]}", "declared in input, but the handler takes no such parameter")
        for field in sorted(required):
            spec = structure.fields.get(field)
            if spec is None:
                raise ApiError(f"{key}.input", f"the handler requires {field!r}, which input does not declare")
            if not spec.required and not spec.has_default:
                raise ApiError(f"{key}.input.{field}", "optional without a default, but the handler requires it")
    ignore = operation.unknown_fields == "ignore"

    def unpack(request: Container, response: Container, context: ServiceContext) -> None:
        given = request.__dict__
        if not required <= given.keys():
            missing = sorted(required - given.keys())
            raise invalid_request([FieldError(field, "a value", "nothing (the field is missing)") for field in missing])
        if takes_all or given.keys() <= known:
            arguments = given
        elif ignore:
            arguments = {field: value for field, value in given.items() if field in known}
        else:
            accepted = ", ".join(fields) or "none"
            raise invalid_request(
                [
                    FieldError(field, f"no such field (known: {accepted})", "a value")
                    for field in given
                    if field not in known
                ]
            )
        if takes_context:
            if "context" in arguments:
                if not ignore:
                    raise invalid_request([FieldError("context", "no such field", "a value")])
                arguments = {field: value for field, value in arguments.items() if field != "context"}
            result = function(**arguments, context=context)
        else:
            result = function(**arguments)
        if result is None:
            return
        if not isinstance(result, Mapping):
            raise TypeError(
                f"the handler of {name!r} unpacks its fields and must return a mapping of response fields "
                f"or None, not {type(result).__name__}"
            )
        response.__dict__.update(result)

    unpack.__wrapped__ = function  # type: ignore[attr-defined]
    unpack.__qualname__ = getattr(function, "__qualname__", name)
    # Read by the OpenAPI document and `pyservice chain`, for handlers without a declared input.
    unpack._pyservice_unpack = (fields, takes_all or ignore)  # type: ignore[attr-defined]
    return unpack


class Service(Owner):
    """A service: the api description, its handlers and plugins, as a WSGI app.

    ``Service(**api)`` checks the description, builds the plugins it names
    (outermost first) and lets them register their hooks. Handlers and more
    hooks are then registered with the ``operation`` and ``plugin``
    decorators, and ``wsgi_application`` serves it under any WSGI server.

    Args:
        available_plugins: plugin classes to use by name without installing
            them (tests, application-private plugins); they take precedence
            over installed plugins of the same name.
        **api: the api description's keys; see docs/api-description.md.
            Beside them, ``plugin_config={"<plugin>": {...}}`` gives this
            service's own plugin config, over the description's ``plugins``
            and the ``PYSERVICE_<PLUGIN>_<OPTION>`` environment, never part
            of ``api.raw`` (docs/plugins.md, "One side only").

    Raises:
        ApiError: the description is wrong; the message names the key.

    Attributes:
        api: the checked description.
        exceptions: exception classes by name: ``service.exceptions.DoesNotExist``.
        plugins: the plugin instances named in the description, in the
            resolved order (``placements`` says why each sits where it does).
        placements: each plugin's place in that order and its reason.
        readiness: the checks the readiness endpoint runs; add to them with
            ``add_readiness_check``.
        side: ``"service"``.
    """

    side = "service"

    scopes = ("request", "operation")

    @overload
    def __init__(
        self, *, available_plugins: Iterable[type[Plugin]] = ..., **api: Unpack[ApiDescription]
    ) -> None: ...  # pragma: no cover

    # A description in a dict of mixed values (dict[str, object] to a type checker), as the docs write it.
    @overload
    def __init__(self, **api: object) -> None: ...  # pragma: no cover

    # Any: the second overload lets a dict of mixed values through, so the implementation takes anything here.
    def __init__(self, *, available_plugins: Any = (), **api: Any) -> None:
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._warned_missing: list[str] = []
        self._get_endpoints: dict[str, GetEndpoint] = {}
        self._added_get_endpoints: dict[str, tuple[str, GetEndpoint]] = {}
        # Made before the plugins are set up, so that they can add their checks; configured after.
        self.readiness = ReadinessChecks(2.0)
        super().__init__(available_plugins, api)
        self.readiness.debug = self.api.debug
        if self.api.health is not None:
            self.readiness.timeout = self.api.health.timeout
        self._whitelist: dict[type[BaseException], tuple[str, int]] = {
            exception_class(name): (name, status) for name, status in self.api.exceptions.items()
        }
        if self.api.explorer is not None:
            from ._explorer import static_folder

            static_folder()  # a missing package is an error here, at start-up, naming the key

    def operation(self, name: str | None = None, *, unpack: bool = False) -> Callable[[F], F]:
        """Register the decorated function as the handler of an operation.

        The handler is called as ``handler(request, response, context)`` and
        fills ``response``; the exceptions it raises that the api whitelists
        reach the caller by name.

        With ``unpack=True`` it is a plain function of the request's fields,
        ``def greet(name, city="Paris", context=None)``: each field is passed
        as the keyword argument of its name (a parameter named ``context``
        gets the context, ``**fields`` gets every field), and the mapping it
        returns is the response (``None``: an empty one). A missing required
        field, or one the function does not take, is answered 400
        ``InvalidRequest`` before it runs (unknown fields are dropped
        instead when the operation says ``"unknown_fields": "ignore"``).
        The signature is read once, here.

        Args:
            name: the operation's name; defaults to the function's name.
            unpack: call the function with the request's fields as keyword
                arguments, and answer what it returns.

        Raises:
            ApiError: the api does not declare the operation, it already
                has a handler, or (``unpack``) the function's parameters do
                not fit the operation's declared ``input``.
        """

        def register(function: F) -> F:
            op = name or function.__name__
            if op not in self.api.operations:
                raise ApiError("operations", f"handler for {op!r}, which the api does not declare")
            if op in self._handlers:
                raise ApiError(f"operations.{op}", "a handler is already registered")
            check_callable(function, "unpacking handler" if unpack else "handler", f"operations.{op}", op)
            self._handlers[op] = _unpacking(function, self.api.operations[op]) if unpack else function
            self._compiled = None
            return function

        return register

    def add_readiness_check(self, name: str, check: ReadinessCheck) -> None:
        """Add a check to the readiness endpoint (``health.ready``).

        Plugins call it in ``setup`` (the database answers, Redis answers).
        The check is called with no arguments, in a thread of its own, at
        each probe; it returns ``None`` when ready, or returns or raises the
        reason it is not. A check that takes longer than ``health.timeout``
        counts as not ready, and the probe answers anyway.

        Args:
            name: the check's name in the answer; unique per service.
            check: the function.

        Raises:
            ValueError: the name is already taken.
        """
        self.readiness.add(name, check)

    def add_get_endpoint(self, path: str, endpoint: GetEndpoint, *, owner: str) -> None:
        """Answer GET and HEAD requests to ``path`` with ``endpoint``, outside every chain.

        For what a plugin serves beside the operations, the way the health
        and OpenAPI paths are served: metrics for a scraper (pyservice-otel's
        Prometheus text). ``endpoint(environ, start_response)`` is a WSGI
        application; other methods are answered 405. Plugins call it in
        ``setup``.

        Args:
            path: the URL path, starting with ``/``.
            endpoint: answers the request.
            owner: who serves it (the plugin's name), named in conflicts.

        Raises:
            ValueError: the path does not start with ``/``, or an operation,
                a core endpoint (health, OpenAPI) or another owner has it.
        """
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"{owner}: a GET endpoint's path must start with '/', got {path!r}")
        api = self.api
        taken = {api.endpoint.path_for(api.version, name): f"operation {name!r}" for name in api.operations}
        taken.update(dict.fromkeys(self._compile_get_endpoints(), "the core"))
        taken.update({other: other_owner for other, (other_owner, _) in self._added_get_endpoints.items()})
        if path in taken:
            raise ValueError(f"{owner}: the path {path!r} is already served by {taken[path]}")
        self._added_get_endpoints[path] = (owner, endpoint)
        self._compiled = None

    def openapi(self, server_url: str | None = None) -> dict[str, Any]:
        """The OpenAPI 3.1 document of this service, as a dict.

        Paths with POST for each operation, request and response schemas
        from their ``input`` and ``output``, the protocol's error shape as a
        component, and each operation's possible errors (its exceptions,
        the api's, and the protocol's) as responses; see docs/structures.md.

        Args:
            server_url: the document's ``servers`` entry: where callers
                reach the service. Defaults to the api's endpoint; the
                document served at the api's ``openapi`` path names the
                address each request was sent to.
        """
        from ._openapi import openapi_document

        return openapi_document(self, server_url)

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
        if missing and missing != self._warned_missing:
            # Said once for each set of missing handlers: compiling again after a registration does not repeat it.
            self._warned_missing = missing
            logger.warning(
                "%s %s: no handler for %s; %s answered 501 NotImplemented (set require_handlers to refuse to start)",
                api.name,
                api.version,
                ", ".join(missing),
                "it is" if len(missing) == 1 else "they are",
            )
        routes = {
            api.endpoint.path_for(api.version, name): _Route(
                op,
                self._handlers.get(name),
                self._hooks,
                check_output=api.debug,
                whitelist=self._operation_whitelist(op),
            )
            for name, op in api.operations.items()
        }
        self._get_endpoints = self._compile_get_endpoints()
        self._compiled = routes
        return routes

    def _operation_whitelist(self, operation: Operation) -> dict[type[BaseException], tuple[str, int]]:
        if not operation.exceptions:
            return self._whitelist
        whitelist = dict(self._whitelist)
        for name, status in operation.exceptions.items():
            whitelist[exception_class(name)] = (name, status)
        return whitelist

    def _compile_get_endpoints(self) -> dict[str, GetEndpoint]:
        endpoints: dict[str, GetEndpoint] = {}
        health = self.api.health
        if health is not None:
            if health.live is not None:
                endpoints[health.live] = live_endpoint
            if health.ready is not None:
                endpoints[health.ready] = ready_endpoint([("", self.readiness)])
        if self.api.openapi is not None:
            from ._openapi import DocumentEndpoint

            endpoints[self.api.openapi] = DocumentEndpoint(self.openapi)
            if self.api.explorer is not None:
                from ._explorer import explorer_endpoints

                endpoints.update(explorer_endpoints(self.api.explorer, self.api.openapi, self.api.name))
        for path, (_, endpoint) in self._added_get_endpoints.items():
            endpoints.setdefault(path, endpoint)
        return endpoints

    def wsgi_application(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        """The WSGI application (PEP 3333) serving this service."""
        routes = self._compiled
        if routes is None:
            routes = self.compile()
        route = routes.get(environ.get("PATH_INFO", ""))
        if route is None or environ["REQUEST_METHOD"] != "POST":
            return self._refuse(environ, start_response, route)
        context = ServiceContext()
        context.service = self
        context.operation = route.name
        context.environ = environ
        context.response = new_container()
        context.response_headers = []
        context._route = route
        handler = route.handler_only
        try:
            if handler is not None and ENVIRON_KEY not in environ:
                # The whole chain of an operation without hooks, written out: each
                # function call it saves is a few percent of the call's cost.
                # These lines are _decode and encode; the tests run every input
                # through both paths.
                body = context._body = read_body(environ, route.max_body_size)
                try:
                    fields = loads(body)
                except JSONDecodeError as exc:
                    raise _malformed_json(exc) from None
                if type(fields) is not dict:
                    raise _not_an_object(fields)
                request = context.request = _new_object(Container)
                request.__dict__ = fields
                handler(request, context.response, context)
                response = context.response
                body = dumps(response.__dict__ if type(response) is Container else response, default=to_json_value)
            else:
                body = _run_chain(context, route)
            status = context.status
            headers = [JSON_HEADER, ("Content-Length", str(len(body)))]
        except Exception as exc:
            answer = self.describe_error(exc, context)
            if answer.kind == "internal" and not context.error_logged:
                # An encoded answer means the handler succeeded: a hook after it turned the success into this.
                after = " after its handler succeeded (a hook failed)" if context.response_body is not None else ""
                logger.error("internal error in %s.%s%s", self.api.name, context.operation, after, exc_info=exc)
            body, status = answer.body, answer.status
            headers = [JSON_HEADER, ("Content-Length", str(len(body))), *answer.headers]
        if context.response_headers:
            headers.extend(context.response_headers)
        start_response("200 OK" if status == 200 else STATUS_LINES.get(status) or f"{status} Unknown", headers)
        return [body]

    __call__ = wsgi_application

    def _refuse(self, environ: WSGIEnvironment, start_response: StartResponse, route: _Route | None) -> list[bytes]:
        if route is None:
            endpoint = self._get_endpoints.get(environ.get("PATH_INFO", ""))
            if endpoint is not None:
                return answer_get(endpoint, environ, start_response)
            refusal = unknown_operation(environ, [self])
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
            body = error_body("protocol", exc.name, exc.message, **exc.extra)
            return ErrorAnswer(exc.status, "protocol", exc.name, body, exc.headers)
        route = None if context is None else context._route
        found = self._whitelisted(type(exc), None if route is None else route.whitelist)
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

    def _whitelisted(
        self, cls: type[BaseException], whitelist: dict[type[BaseException], tuple[str, int]] | None = None
    ) -> tuple[str, int] | None:
        if whitelist is None:
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
