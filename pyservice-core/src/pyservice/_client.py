"""The Client: calls a service's operations over HTTP with ``requests``."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import requests
import requests.adapters

from ._api import Operation, Timeout
from ._chain import Context, Step, adapt_operation_hook, chain_end, hooks_for
from ._container import Container, new_container
from ._deadline import HEADER as TIMEOUT_HEADER
from ._deadline import current_deadline, format_timeout
from ._errors import CallTimeout, InvalidRequest, InvalidResponse, ServiceError, TransportError
from ._owner import Owner
from ._plugin import Plugin
from ._wire import JSONDecodeError, encode, loads
from .exceptions import exception_class

__all__ = ["Client", "ClientContext"]

# Statuses after which an idempotent call is tried again: the answer came
# from something in front of the service, or the service asked for it.
_RETRY_STATUSES = frozenset({502, 503, 504})
_MAX_RESPONSE_SIZE = 64 << 20
_READ_CHUNK = 64 * 1024

try:
    _USER_AGENT = f"pyservice/{version('pyservice-core')}"
except PackageNotFoundError:  # running from a source tree
    _USER_AGENT = "pyservice"


class ClientContext(Context):
    """The state of one call on the client side.

    Attributes:
        client: the Client making the call.
        operation: the operation's name.
        request: the request fields, as given to the call.
        response: the response fields, filled when the answer arrives.
        headers: the outgoing HTTP headers; hooks may add to them.
        timeout: the call's connect and read timeouts.
        body: the encoded request, set before the first attempt.
        attempt: the number of the current HTTP attempt, from 1.
        http_response: the ``requests.Response`` of the last attempt.
        status: the HTTP status of the last attempt's answer.
        deadline: the ``time.monotonic()`` deadline inherited from the
            service call this call is made from, or None.
        retry_after: set by an attempt hook, after ``process_request()``,
            to the seconds to wait before the client sends the call again:
            the answer said it was not done and may be tried later (a 429
            with ``Retry-After``). Such attempts do not count against the
            api's ``retries``; the hook owns its own budget. The client
            clears it once it has read it.
    """

    side = "client"
    retry_after: float | None = None

    def __init__(
        self,
        client: Client,
        route: _ClientRoute,
        request: Container,
        headers: dict[str, str],
        timeout: Timeout,
        retries: int,
    ) -> None:
        self.client = client
        self.operation = route.name
        self.request = request
        self.response = new_container()
        self.headers = headers
        self.timeout = timeout
        self.body: bytes | None = None
        self.attempt = 0
        self.http_response: requests.Response | None = None
        self.status: int | None = None
        self._route = route
        self._retries = retries
        self._steps = route.steps
        self._next = 0
        self.deadline: float | None = None

    def __repr__(self) -> str:
        return f"<ClientContext {self.client.api.name}.{self.operation}>"


class _ClientRoute:
    __slots__ = ("attempt_steps", "exceptions", "name", "operation", "run", "steps", "timeout", "url")

    def __init__(self, client: Client, operation: Operation, send: Step | None = None) -> None:
        api = client.api
        hooks = client._hooks
        self.name = operation.name
        self.operation = operation
        self.url = api.endpoint.base_url + api.endpoint.path_for(api.version, operation.name)
        self.timeout = operation.timeout or api.timeout
        self.exceptions = frozenset({**api.exceptions, **operation.exceptions})
        request_steps: list[Step] = [hook.function for hook in hooks_for(hooks, "request", operation)]
        operation_steps = [adapt_operation_hook(hook.function) for hook in hooks_for(hooks, "operation", operation)]
        attempt_steps: list[Step] = [hook.function for hook in hooks_for(hooks, "attempt", operation)]
        self.steps = (*request_steps, *operation_steps, _exchange, chain_end)
        self.attempt_steps = (*attempt_steps, send or _send, chain_end)
        self.run: Step = Context.process_request if len(self.steps) > 2 else _exchange

    def __repr__(self) -> str:
        steps = (*self.steps[:-2], *self.attempt_steps[:-1])
        names = [getattr(getattr(step, "__wrapped__", step), "__name__", "?") for step in steps]
        return f"<_ClientRoute {self.name} POST {self.url}: {' > '.join(names)}>"


def _exchange(context: ClientContext) -> None:
    route = context._route
    context.body = encode(context.request)
    retries = context._retries
    failures = 0
    while True:
        context.attempt += 1
        if context.deadline is not None:
            _cap_to_deadline(context, context.deadline)
        context._steps = route.attempt_steps
        context._next = 0
        try:
            context.process_request()
        except TransportError:
            failures += 1
            if failures > retries:
                raise
            delay = _backoff(failures)
        else:
            asked = context.retry_after
            if asked is not None:
                # An attempt hook read the answer as "not done, try again later".
                context.retry_after = None
                delay = asked
            elif context.status in _RETRY_STATUSES and failures < retries:
                failures += 1
                delay = _backoff(failures)
            else:
                break
            _discard(context.http_response)
        time.sleep(delay)
    _read_answer(context)


def _discard(answer: requests.Response | None) -> None:
    # The answer was streamed and will not be read: give its connection back.
    if answer is not None:
        answer.close()


def _cap_to_deadline(context: ClientContext, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise CallTimeout(
            f"{context.operation}: the deadline of the call being served passed before this call could be sent",
            operation=context.operation,
        )
    timeout = context.timeout
    if left < timeout.read or left < timeout.connect:
        context.timeout = Timeout(min(timeout.connect, left), min(timeout.read, left))
    context.headers[TIMEOUT_HEADER] = format_timeout(min(context.timeout.read, left))


def _backoff(attempt: int) -> float:
    # Exponential with full jitter, so callers that failed together spread out.
    return random.uniform(0, min(1.0, 0.05 * 2**attempt))  # noqa: S311 - not for security


def _send(context: ClientContext) -> None:
    client = context.client
    try:
        answer = client.session.post(
            context._route.url,
            data=context.body,
            headers=context.headers,
            timeout=context.timeout,
            stream=True,
        )
    except requests.Timeout as exc:
        raise CallTimeout(
            f"{context.operation}: no answer within {context.timeout}s: {exc}", operation=context.operation
        ) from exc
    except requests.RequestException as exc:
        raise TransportError(f"{context.operation}: {type(exc).__name__}: {exc}", operation=context.operation) from exc
    context.http_response = answer
    context.status = answer.status_code


def _content(context: ClientContext, answer: requests.Response) -> bytes:
    limit = context.client.max_response_size
    length = answer.headers.get("Content-Length")
    try:
        if length is not None and length.isascii() and length.isdigit() and int(length) <= limit:
            return answer.content
        parts = []
        received = 0
        for chunk in answer.iter_content(_READ_CHUNK):
            received += len(chunk)
            if received > limit:
                raise InvalidResponse(
                    f"{context.operation}: answer larger than {limit} bytes",
                    operation=context.operation,
                    status=answer.status_code,
                )
            parts.append(chunk)
        return b"".join(parts)
    except requests.Timeout as exc:
        raise CallTimeout(
            f"{context.operation}: the answer did not arrive in time", operation=context.operation
        ) from exc
    except requests.RequestException as exc:
        raise TransportError(f"{context.operation}: reading the answer: {exc}", operation=context.operation) from exc
    finally:
        answer.close()


def _read_answer(context: ClientContext) -> None:
    answer = context.http_response
    assert answer is not None
    status = answer.status_code
    operation = context.operation
    body = _content(context, answer)
    try:
        data = loads(body)
    except JSONDecodeError:
        data = None
    if type(data) is not dict:
        snippet = body[:200].decode("utf-8", "replace")
        raise InvalidResponse(
            f"{operation}: HTTP {status} with a body that is not a JSON object: {snippet!r}",
            operation=operation,
            status=status,
        )
    if status == 200:
        context.response.__dict__.update(data)
        return
    error = data.get("error")
    if not isinstance(error, dict) or not isinstance(error.get("name"), str):
        raise InvalidResponse(
            f"{operation}: HTTP {status} without the protocol's error shape", operation=operation, status=status
        )
    name = error["name"]
    kind = error.get("kind")
    message = error.get("message")
    if kind == "exception" and name in context._route.exceptions:
        args = error.get("args")
        raise exception_class(name)(*(args if isinstance(args, list) else [message]))
    if kind == "protocol" and name == "InvalidRequest":
        errors = error.get("errors")
        raise InvalidRequest(
            f"{operation}: HTTP {status} {name}: {message}",
            operation=operation,
            errors=errors if isinstance(errors, list) else [],
            status=status,
            detail=error,
        )
    raise ServiceError(
        f"{operation}: HTTP {status} {name}: {message}",
        operation=operation,
        status=status,
        kind=str(kind),
        name=name,
        detail=error,
    )


class Client(Owner):
    """Calls the operations of a service described by the same api description.

    ``client.get_item(id=1)`` posts ``{"id": 1}`` to the operation's path
    and returns the response fields (attribute and item access, missing
    keys read as ``None``). Whitelisted exceptions raised by the service are
    raised again by name (``except client.exceptions.DoesNotExist``); every
    other failure raises a :class:`ClientError`. One Client keeps HTTP
    connections alive and is safe to share between threads.

    Args:
        available_plugins: plugin classes to use by name without installing
            them.
        session: the ``requests.Session`` to use; by default the Client
            makes its own, with a connection pool of ``pool_size``.
        pool_size: connections kept alive to the service.
        max_response_size: the largest answer read, in bytes.
        validate: check the request's fields against the operation's
            declared ``input`` before sending (filling its defaults), and
            raise :class:`InvalidRequest` instead of sending a bad call.
        **api: the api description's keys.

    Raises:
        ApiError: the description is wrong; the message names the key.
    """

    side = "client"
    scopes = ("request", "operation", "attempt")

    def __init__(
        self,
        *,
        available_plugins: Iterable[type[Plugin]] = (),
        session: requests.Session | None = None,
        pool_size: int = 32,
        max_response_size: int = _MAX_RESPONSE_SIZE,
        validate: bool = False,
        **api: Any,
    ) -> None:
        # Set before the plugins are, so that one may stub an exchange in its setup.
        self._stubs: dict[str, Step] = {}
        super().__init__(available_plugins, api)
        if session is None:
            session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session
        self.max_response_size = max_response_size
        self.validate = validate

    def call(
        self,
        operation: str,
        fields: Mapping[str, Any] | None = None,
        /,
        *,
        timeout: float | tuple[float, float] | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Container:
        """Call an operation.

        The read timeout is sent to the service as the call's deadline
        (``Pyservice-Timeout``). Called while a service call with a deadline
        is being served (from a handler), the timeout is capped at the time
        that call has left, and that is what is sent on.

        Args:
            operation: the operation's name.
            fields: the request fields.
            timeout: seconds for this call, or ``(connect, read)``; by
                default the operation's or the api's timeout.
            idempotency_key: sent as ``Idempotency-Key``; makes a call to a
                non-idempotent operation safe to retry.
            headers: extra HTTP headers for this call.

        Returns:
            The response fields.

        Raises:
            AttributeError: the api does not declare ``operation``.
            ServiceException: a whitelisted exception the service raised.
            InvalidRequest: the fields break the operation's declared input
                (checked here with ``validate=True``, else by the service).
            ClientError: the call did not complete; the subclass says why.
        """
        routes = self._compiled or self.compile()
        route = routes.get(operation)
        if route is None:
            raise AttributeError(f"{self.api.name} has no operation {operation!r}")
        outgoing = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": _USER_AGENT}
        if headers:
            outgoing.update(headers)
        retries = self.api.retries if route.operation.idempotent else 0
        if idempotency_key is not None:
            outgoing["Idempotency-Key"] = idempotency_key
            retries = self.api.retries
        if timeout is None:
            call_timeout = route.timeout
        elif isinstance(timeout, tuple):
            call_timeout = Timeout(*timeout)
        else:
            call_timeout = Timeout(timeout, timeout)
        deadline = current_deadline.get()
        if deadline is None and TIMEOUT_HEADER not in outgoing:
            outgoing[TIMEOUT_HEADER] = format_timeout(call_timeout.read)
        request = Container(fields) if fields else Container()
        if self.validate and route.operation.input is not None:
            errors: list[dict[str, str]] = [*route.operation.input.errors(request.__dict__)]
            if errors:
                shown = "; ".join(map(str, errors))
                raise InvalidRequest(f"{operation}: invalid request: {shown}", operation=operation, errors=errors)
        context = ClientContext(self, route, request, outgoing, call_timeout, retries)
        if deadline is not None:
            context.deadline = deadline
            _cap_to_deadline(context, deadline)
        route.run(context)
        return context.response

    def compile(self) -> dict[str, _ClientRoute]:
        """Compose each operation's chain; done once, before the first call."""
        routes = {name: _ClientRoute(self, op, self._stubs.get(name)) for name, op in self.api.operations.items()}
        self._compiled = routes
        return routes

    def __getattr__(self, name: str) -> Callable[..., Container]:
        # Only called for names that are not attributes: the operations.
        if name.startswith("_") or name not in self.__dict__.get("api", _NO_API).operations:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

        def call(**fields: Any) -> Container:
            return self.call(name, fields)

        call.__name__ = call.__qualname__ = name
        call.__doc__ = f"Call the {name!r} operation with the given request fields."
        self.__dict__[name] = call  # the next lookup is a plain attribute
        return call

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client {self.api.name} {self.api.version} at {self.api.endpoint.base_url}>"


class _NoApi:
    operations: Mapping[str, Any] = {}


_NO_API = _NoApi()
