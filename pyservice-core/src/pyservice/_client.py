"""The Client: calls a service's operations over HTTP, retried, budgeted, guarded and hedged."""

from __future__ import annotations

import contextvars
import copy
import difflib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, overload

from ._api import Operation, Timeout
from ._caller import Caller
from ._chain import Context, Step, adapt_operation_hook, chain_end, hooks_for
from ._container import Container, new_container
from ._deadline import HEADER as TIMEOUT_HEADER
from ._deadline import current_deadline, format_timeout
from ._errors import CallTimeout, InvalidRequest, InvalidResponse, ServiceError, TransportError, UndeclaredOperation
from ._owner import Owner
from ._plugin import Plugin
from ._retry import CircuitBreaker, CircuitOpen, Hedge, RetryBudget, RetryPolicy, client_policies
from ._transport import Cancel, ClientResponse, HTTPTransport, RequestsTransport, Transport
from ._wire import JSONDecodeError, encode, loads
from .exceptions import exception_class

if TYPE_CHECKING:
    import requests
    from typing_extensions import Unpack

    from .typing import ApiDescription

__all__ = ["Client", "ClientContext"]

_MAX_RESPONSE_SIZE = 64 << 20
# Answers that say the service is not there: they count against the circuit breaker.
_UNAVAILABLE = frozenset({502, 503, 504})
_KEY_HEADER = "Idempotency-Key"

try:
    _USER_AGENT = f"pyservice/{version('pyservice-core')}"
except PackageNotFoundError:  # running from a source tree
    _USER_AGENT = "pyservice"


class ClientContext(Context):
    """The state of one call on the client side.

    Request- and operation-scope hooks run once per call, around the whole
    exchange; attempt-scope hooks run around each HTTP attempt (retries and
    hedged copies included), and each attempt sends ``headers`` as they are
    then, so a header set by a request-scope hook goes on every attempt.

    Attributes:
        client: the Client making the call.
        operation: the operation's name.
        request: the request fields, as given to the call.
        response: the response fields, filled when the answer arrives.
        headers: the outgoing HTTP headers; hooks may add to them.
        timeout: the current attempt's connect and read timeouts.
        body: the encoded request, set before the first attempt.
        attempt: the number of the current HTTP attempt, from 1.
        http_response: the ``ClientResponse`` of the last
            attempt (status, headers, ``content``), whichever transport
            carried it.
        status: the HTTP status of the last attempt's answer.
        deadline: the call's ``time.monotonic()`` deadline: its read timeout
            after it started, or the deadline of the service call it is made
            from if that comes first. No attempt, back-off or hedge goes past it.
        retry_after: set by an attempt hook, after ``process_request()``,
            to the seconds to wait before the client sends the call again:
            the answer said it was not done and may be tried later (a 429
            with ``Retry-After``). Such attempts do not count against the
            retry policy's ``attempts``; the hook owns its own budget. The
            client clears it once it has read it, and takes the answer as it
            is when the wait would pass the deadline.
        caller_identity: the credential this client's plugins send, as a
            ``Caller`` of kind ``credential`` (a fingerprint,
            never the secret), set by an operation hook of the plugin that
            sends it (pyservice-auth's); ``None`` when none did. A client-side
            cache keys caller-scoped answers on it.

    The client annotates a call (``context.annotations``) when its retry
    machinery did something worth a log line: ``circuit`` (``"open"``: refused
    by an open breaker; ``"opened"``: this call's failure opened it;
    ``"closed"``: this call's probe closed it; ``"half_open"``: this call was
    a probe), ``retry_budget`` (``"exhausted"``: a retry was not made),
    ``retry_deadline`` (``True``: a retry was not made, the deadline was too
    near), and ``hedge`` (``{"attempts": n, "winner": k}``).
    """

    side = "client"
    retry_after: float | None = None
    caller_identity: Caller | None = None
    http_response: ClientResponse | None = None
    _cancel: Cancel | None = None

    def __init__(
        self,
        client: Client,
        route: _ClientRoute,
        request: Container,
        headers: dict[str, str],
        timeout: Timeout,
        deadline: float,
    ) -> None:
        self.client = client
        self.operation = route.name
        self.request = request
        self.response = new_container()
        self.headers = headers
        self.timeout = timeout
        self.body: bytes | None = None
        self.attempt = 0
        self.status: int | None = None
        self.deadline: float = deadline
        self._route = route
        self._call_timeout = timeout
        self._capped = False
        self._steps = route.steps
        self._next = 0

    def __repr__(self) -> str:
        return f"<ClientContext {self.client.api.name}.{self.operation}>"


class _ClientRoute:
    __slots__ = (
        "attempt_steps",
        "exceptions",
        "hedge",
        "idempotent",
        "name",
        "operation",
        "retry",
        "run",
        "statuses",
        "steps",
        "target",
        "timeout",
        "url",
    )

    def __init__(self, client: Client, operation: Operation, send: Step | None = None) -> None:
        api = client.api
        hooks = client._hooks
        self.name = operation.name
        self.operation = operation
        self.idempotent = operation.idempotent
        self.url = api.endpoint.base_url + api.endpoint.path_for(api.version, operation.name)
        self.target: Any = client.transport.target(self.url)
        self.timeout = operation.timeout or api.timeout
        self.retry: RetryPolicy = client._policies.retry[operation.name]
        self.statuses = self.retry.statuses
        self.hedge: Hedge | None = client._policies.hedge.get(operation.name)
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
    # The attempt loop: the retry policy, bounded by the call's deadline and
    # the client's retry budget, each attempt let through by the breaker.
    route = context._route
    context.body = encode(context.request)
    if route.hedge is not None:
        _hedged(context, route, route.hedge)
        _read_answer(context)
        return
    client = context.client
    policy = route.retry
    attempts = policy.attempts if route.idempotent or _carries_key(context.headers) else 1
    breaker = client.circuit_breaker
    probe = False if breaker is None else _admit(context, breaker)
    budget = client.retry_budget
    if budget is not None:
        budget.deposit()  # a call the breaker refused is not one the service saw
    failures = 0
    while True:
        context.attempt += 1
        if context.attempt > 1 or context._capped:
            _cap_to_deadline(context, policy.attempt_timeout)
        context._steps = route.attempt_steps
        context._next = 0
        try:
            context.process_request()
        except TransportError as exc:
            if breaker is not None:
                _note(context, breaker.failure(probe))
            failures += 1
            if failures >= attempts or not policy.retries_error(exc):
                raise
            next_probe = _next_attempt(context, policy.delay(failures), budget, breaker)
            if next_probe is None:
                raise
            probe = next_probe
            continue
        except BaseException:
            if breaker is not None:
                breaker.release(probe)
            _discard(context.http_response)
            raise
        status = context.status
        if breaker is not None:
            _note(context, breaker.failure(probe) if status in _UNAVAILABLE else breaker.success(probe))
        asked = context.retry_after
        if asked is not None:
            # An attempt hook read the answer as "not done, try again later".
            context.retry_after = None
            next_probe = _next_attempt(context, asked, None, breaker)
        elif status in route.statuses and failures + 1 < attempts:
            failures += 1
            next_probe = _next_attempt(context, policy.delay(failures), budget, breaker)
        else:
            break
        if next_probe is None:
            break  # no further attempt: this answer is the call's
        probe = next_probe
        _discard(context.http_response)
    _read_answer(context)


def _carries_key(headers: Mapping[str, str]) -> bool:
    # A call with an Idempotency-Key (given by the caller or set by a request
    # hook) is safe to send again, whatever the operation.
    if _KEY_HEADER in headers:
        return True
    return any(name.lower() == "idempotency-key" for name in headers)


def _next_attempt(
    context: ClientContext, delay: float, budget: RetryBudget | None, breaker: CircuitBreaker | None
) -> bool | None:
    # Whether another attempt goes, after waiting ``delay``: None when the
    # deadline, the budget or the breaker says no (the last outcome is then
    # the call's), else whether it is the breaker's half-open probe.
    if time.monotonic() + delay >= context.deadline:
        context.annotate(retry_deadline=True)
        return None
    if budget is not None and not budget.withdraw():
        context.annotate(retry_budget="exhausted")
        return None
    if delay > 0:
        time.sleep(delay)
        if time.monotonic() >= context.deadline:
            context.annotate(retry_deadline=True)
            return None
    if breaker is None:
        return False
    try:
        return _admit(context, breaker)
    except CircuitOpen:
        return None


def _admit(context: ClientContext, breaker: CircuitBreaker) -> bool:
    try:
        probe = breaker.admit(context.operation)
    except CircuitOpen:
        context.annotate(circuit="open")
        raise
    if probe:
        context.annotate(circuit="half_open")
    return probe


def _note(context: Context, change: str | None) -> None:
    if change is not None:
        context.annotate(circuit=change)


def _discard(answer: ClientResponse | None) -> None:
    # An answer that will not be read: give its connection back.
    if answer is not None:
        answer.close()


def _cap_to_deadline(context: ClientContext, attempt_timeout: float | None = None) -> None:
    left = context.deadline - time.monotonic()
    if left <= 0:
        if context.attempt <= 1:
            message = "the deadline of the call being served passed before this call could be sent"
        else:
            message = f"the call's deadline passed before attempt {context.attempt} could be sent"
        raise CallTimeout(f"{context.operation}: {message}", operation=context.operation)
    full = context._call_timeout
    read = full.read if attempt_timeout is None or attempt_timeout > full.read else attempt_timeout
    context.timeout = Timeout(full.connect if full.connect < left else left, read if read < left else left)
    context.headers[TIMEOUT_HEADER] = format_timeout(context.timeout.read)


def _send(context: ClientContext) -> None:
    client = context.client
    assert context.body is not None
    answer = client.transport.send(
        context._route.target,
        context.body,
        context.headers,
        context.timeout,
        context.operation,
        client.max_response_size,
        context._cancel,
    )
    context.http_response = answer
    context.status = answer.status


class _Race:
    """The attempts of one hedged call: the first good answer wins, the others are closed."""

    __slots__ = ("done", "lock", "results")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = False
        self.results: queue.SimpleQueue[tuple[ClientContext, BaseException | None]] = queue.SimpleQueue()


def _race_attempt(race: _Race, child: ClientContext, probe: bool, breaker: CircuitBreaker | None) -> None:
    outcome: BaseException | None = None
    try:
        child.process_request()
    except TransportError as exc:
        outcome = exc
        if breaker is not None:
            _note(child, breaker.failure(probe))
    except BaseException as exc:  # handed to the caller's thread, raised there if it matters
        outcome = exc
        if breaker is not None:
            breaker.release(probe)
    else:
        if breaker is not None:
            _note(child, breaker.failure(probe) if child.status in _UNAVAILABLE else breaker.success(probe))
    with race.lock:
        if not race.done:
            race.results.put((child, outcome))
            return
    _discard(child.http_response)  # lost the race: close it


def _hedged(context: ClientContext, route: _ClientRoute, hedge: Hedge) -> None:
    # Attempts run on the client's hedging threads; this thread waits for the
    # first good answer, sending another attempt whenever ``hedge.delay``
    # passes without one, or at once when one fails, up to ``hedge.attempts``.
    client = context.client
    policy = route.retry
    budget, breaker = client.retry_budget, client.circuit_breaker
    if budget is not None:
        budget.deposit()
    context.annotate()  # one annotations dict, shared by the attempts' copies
    race = _Race()
    started: list[ClientContext] = []
    allowed = True

    def start() -> bool:
        number = len(started) + 1
        if number > 1 and budget is not None and not budget.withdraw():
            context.annotate(retry_budget="exhausted")
            return False
        probe = False
        if breaker is not None:
            try:
                probe = _admit(context, breaker)
            except CircuitOpen:
                if number == 1:
                    raise
                return False
        child = copy.copy(context)
        child.headers = dict(context.headers)
        child.attempt = number
        child.http_response = None
        child.status = None
        child._cancel = Cancel()
        child._steps = route.attempt_steps
        child._next = 0
        if number > 1 or context._capped:
            _cap_to_deadline(child, policy.attempt_timeout)
        started.append(child)
        client._hedging().submit(contextvars.copy_context().run, _race_attempt, race, child, probe, breaker)
        return True

    start()
    pending = 1
    last: tuple[ClientContext, BaseException | None] | None = None
    winner: ClientContext | None = None
    try:
        while True:
            more = allowed and len(started) < hedge.attempts
            left = context.deadline - time.monotonic()
            try:
                child, outcome = race.results.get(timeout=max(0.0, min(hedge.delay, left) if more else left))
            except queue.Empty:
                if time.monotonic() >= context.deadline:
                    raise CallTimeout(
                        f"{context.operation}: no answer to {len(started)} hedged attempts before the call's deadline",
                        operation=context.operation,
                    ) from None
                if more:
                    allowed = start()
                    pending += allowed
                continue
            pending -= 1
            if outcome is None and child.status not in route.statuses:
                winner = child
                break
            if last is not None:
                _discard(last[0].http_response)  # an earlier failed answer, superseded by this outcome
            last = (child, outcome)
            if outcome is not None and not isinstance(outcome, TransportError):
                break  # a hook's own error: raised as it is, not hedged over
            if more and time.monotonic() < context.deadline:
                allowed = start()
                pending += allowed
            if not pending:
                if outcome is None:
                    winner = child  # every attempt failed; the last answer (a 503...) is the call's
                break
    finally:
        with race.lock:
            race.done = True
        for child in started:
            if child is not winner:
                assert child._cancel is not None
                child._cancel.cancel()
        while True:
            try:
                lost, _ = race.results.get_nowait()
            except queue.Empty:
                break
            if lost is not winner:
                _discard(lost.http_response)
    if winner is None:
        assert last is not None
        error = last[1]
        assert error is not None
        raise error
    context.http_response = winner.http_response
    context.status = winner.status
    context.timeout = winner.timeout
    context.attempt = len(started)
    if len(started) > 1:
        context.annotate(hedge={"attempts": len(started), "winner": winner.attempt})


def _read_answer(context: ClientContext) -> None:
    answer = context.http_response
    assert answer is not None
    status = answer.status
    operation = context.operation
    body = answer.content
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
    other failure raises a ``ClientError``. One Client keeps HTTP
    connections alive and is safe to share between threads.

    By default the calls travel on the Client's own pool of kept-alive
    ``http.client`` connections (several times the calls per second of
    ``requests``, see docs/performance.md); pass ``session=`` to send them
    through a ``requests.Session`` instead, for its adapters and auth.

    Args:
        available_plugins: plugin classes to use by name without installing
            them.
        session: a ``requests.Session`` to send the calls through; its own
            settings (proxies, TLS, adapters) then apply, and ``verify``,
            ``cert``, ``proxies`` and ``trust_env`` may not be given.
        pool_size: connections kept alive to the service.
        max_response_size: the largest answer read, in bytes.
        validate: check the request's fields against the operation's
            declared ``input`` before sending (filling its defaults), and
            raise ``InvalidRequest`` instead of sending a bad call.
        verify: verify the service's TLS certificate: ``True`` (the system's
            CA store, or ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE`` or
            ``SSL_CERT_FILE``), ``False``, or a CA bundle's path.
        cert: a TLS client certificate: a PEM file with its key, or
            ``(certificate, key)`` paths.
        proxies: proxy URLs by scheme, as ``requests`` takes them
            (``{"https": "http://proxy:3128", "no": "localhost"}``).
        trust_env: also read proxies and the CA bundle from the environment
            (``HTTPS_PROXY``, ``NO_PROXY``...), as ``requests`` does.
        plugin_config: this client's own plugin config by plugin name (a
            client secret), over the description's ``plugins`` and the
            ``PYSERVICE_<PLUGIN>_<OPTION>`` environment; never part of
            ``client.api.raw``.
        **api: the api description's keys.

    Attributes:
        transport: what carries the calls (``http.client`` pool or ``requests``).
        session: the ``requests.Session`` given, or None.
        retry_budget: the ``RetryBudget`` shared by the
            calls, or None when the api's ``retry_budget`` is null.
        circuit_breaker: the ``CircuitBreaker`` of the
            endpoint, or None unless the api sets ``circuit_breaker``.

    Raises:
        ApiError: the description is wrong; the message names the key.
    """

    side = "client"
    scopes = ("request", "operation", "attempt")

    @overload
    def __init__(
        self,
        *,
        available_plugins: Iterable[type[Plugin]] = ...,
        session: requests.Session | None = ...,
        pool_size: int = ...,
        max_response_size: int = ...,
        validate: bool = ...,
        verify: bool | str = ...,
        cert: str | tuple[str, str] | None = ...,
        proxies: Mapping[str, str] | None = ...,
        trust_env: bool = ...,
        plugin_config: Mapping[str, Mapping[str, Any]] = ...,
        **api: Unpack[ApiDescription],
    ) -> None: ...  # pragma: no cover

    # A description in a dict of mixed values (dict[str, object] to a type checker), as the docs write it.
    @overload
    def __init__(self, **api: object) -> None: ...  # pragma: no cover

    # Any: the second overload lets a dict of mixed values through, so the implementation takes anything here.
    def __init__(
        self,
        *,
        available_plugins: Any = (),
        session: Any = None,
        pool_size: Any = 32,
        max_response_size: Any = _MAX_RESPONSE_SIZE,
        validate: Any = False,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
        trust_env: Any = True,
        plugin_config: Any = None,
        **api: Any,
    ) -> None:
        if plugin_config is not None:
            api["plugin_config"] = plugin_config
        # Set before the plugins are, so that one may stub an exchange in its setup.
        self._stubs: dict[str, Step] = {}
        self._hedge_pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        super().__init__(available_plugins, api)
        self._policies = client_policies(self.api)
        transport: Transport
        if session is not None:
            if verify is not True or cert is not None or proxies is not None or trust_env is not True:
                raise TypeError(
                    "verify, cert, proxies and trust_env configure the Client's own transport;"
                    " with session=, set them on the requests.Session"
                )
            transport = RequestsTransport(session)
        else:
            transport = HTTPTransport(
                pool_size=pool_size, verify=verify, cert=cert, proxies=proxies, trust_env=trust_env
            )
        self.transport: Transport = transport
        self.session = session
        self.pool_size = pool_size
        self.max_response_size = max_response_size
        self.validate = validate
        budget, breaker = self._policies.budget, self._policies.breaker
        self.retry_budget = None if budget is None else RetryBudget(budget)
        self.circuit_breaker = None if breaker is None else CircuitBreaker(breaker, self.api.endpoint.base_url)

    @property
    def circuit_state(self) -> str | None:
        """``"closed"``, ``"open"`` or ``"half_open"``: what the next call meets; None without a breaker."""
        breaker = self.circuit_breaker
        return None if breaker is None else breaker.current_state()

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

        The read timeout is the call's deadline: no attempt, back-off or
        hedge goes past it, and what is left of it is sent to the service
        (``Pyservice-Timeout``). Called while a service call with a deadline
        is being served (from a handler), the call's deadline is capped at
        that call's.

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
            UndeclaredOperation: the api does not declare ``operation`` (an
                ``AttributeError``; the message lists the declared ones).
            ServiceException: a whitelisted exception the service raised.
            InvalidRequest: the fields break the operation's declared input
                (checked here with ``validate=True``, else by the service).
            CircuitOpen: the endpoint's circuit breaker is open.
            ClientError: the call did not complete; the subclass says why.
        """
        routes = self._compiled or self.compile()
        route = routes.get(operation)
        if route is None:
            raise self._undeclared(operation)
        outgoing = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": _USER_AGENT}
        if headers:
            outgoing.update(headers)
        if idempotency_key is not None:
            outgoing[_KEY_HEADER] = idempotency_key
        if timeout is None:
            call_timeout = route.timeout
        elif isinstance(timeout, tuple):
            call_timeout = Timeout(*timeout)
        else:
            call_timeout = Timeout(timeout, timeout)
        deadline = time.monotonic() + call_timeout.read
        inherited = current_deadline.get()
        capped = route.retry.attempt_timeout is not None
        if inherited is not None and inherited < deadline:
            deadline = inherited
            capped = True
        elif not capped and TIMEOUT_HEADER not in outgoing:
            outgoing[TIMEOUT_HEADER] = format_timeout(call_timeout.read)
        request = Container(fields) if fields else Container()
        if self.validate and route.operation.input is not None:
            errors: list[dict[str, str]] = [*route.operation.input.errors(request.__dict__)]
            if errors:
                shown = "; ".join(map(str, errors))
                raise InvalidRequest(f"{operation}: invalid request: {shown}", operation=operation, errors=errors)
        context = ClientContext(self, route, request, outgoing, call_timeout, deadline)
        if capped:
            context._capped = True
            _cap_to_deadline(context, route.retry.attempt_timeout)
        route.run(context)
        return context.response

    def compile(self) -> dict[str, _ClientRoute]:
        """Compose each operation's chain; done once, before the first call."""
        routes = {name: _ClientRoute(self, op, self._stubs.get(name)) for name, op in self.api.operations.items()}
        self._compiled = routes
        return routes

    def _undeclared(self, name: str) -> UndeclaredOperation:
        declared = sorted(self.api.operations)
        close = difflib.get_close_matches(name, declared, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        listed = ", ".join(declared) if declared else "none"
        return UndeclaredOperation(
            f"{self.api.name} has no operation {name!r}{hint}; declared operations: {listed}",
            operation=name,
            declared=declared,
        )

    def _hedging(self) -> ThreadPoolExecutor:
        # The threads hedged attempts run on, made at the first hedged call.
        pool = self._hedge_pool
        if pool is None:
            with self._lock:
                pool = self._hedge_pool
                if pool is None:
                    pool = self._hedge_pool = ThreadPoolExecutor(
                        max_workers=max(4, 2 * self.pool_size), thread_name_prefix=f"pyservice-hedge-{self.api.name}"
                    )
        return pool

    def __getattr__(self, name: str) -> Callable[..., Container]:
        # Only called for names that are not attributes: the operations.
        api = self.__dict__.get("api")
        if name.startswith("_") or api is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        if name not in api.operations:
            raise self._undeclared(name)

        def call(**fields: Any) -> Container:
            return self.call(name, fields)

        call.__name__ = call.__qualname__ = name
        call.__doc__ = f"Call the {name!r} operation with the given request fields."
        self.__dict__[name] = call  # the next lookup is a plain attribute
        return call

    def close(self) -> None:
        """Stop this client's plugins (their ``stop``), close the pooled HTTP connections and the hedging threads."""
        self.stop()
        self.transport.close()
        pool, self._hedge_pool = self._hedge_pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client {self.api.name} {self.api.version} at {self.api.endpoint.base_url}>"
