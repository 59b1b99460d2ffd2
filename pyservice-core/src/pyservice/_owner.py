"""What a Service and a Client share: the checked api, plugins and hook registration."""

from __future__ import annotations

import atexit
import functools
import inspect
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from ._api import Api, Operation, parse_api
from ._chain import Hook, hooks_for
from ._errors import ApiError
from ._plugin import Placement, Plugin, order_plugins, resolve_plugins
from .exceptions import ExceptionNamespace

__all__ = ["Owner", "check_callable"]

F = TypeVar("F", bound=Callable[..., Any])

# What each kind of registered function is called with, for the messages.
_SHAPES = {
    "request": ("context",),
    "attempt": ("context",),
    "operation": ("request", "response", "context"),
    "handler": ("request", "response", "context"),
    # Called with the request's fields as keywords; the service checks those against input.
    "unpacking handler": ("**fields",),
}


def check_callable(function: Any, kind: str, key: str, name: str) -> None:
    """Refuse, at registration, a hook or handler that cannot be called as pyservice will call it.

    The signature is read once, here, never during a call. ``*args`` and
    ``**kwargs`` forms are accepted where they can take the arguments;
    a callable whose signature cannot be read (some builtins) is trusted.

    Args:
        function: the hook or handler.
        kind: ``"handler"``, ``"unpacking handler"`` (only refused when
            ``async def`` or a generator) or the hook's scope.
        key: the dotted path the error names.
        name: the operation's or the hook's name, for the suggestion.

    Raises:
        ApiError: the function is not callable, is ``async def`` (or a
            generator: its body would never run), or cannot take the
            positional arguments of its kind; the message says what to write.
    """
    shape = _SHAPES[kind]
    what = kind if kind.endswith("handler") else f"{kind}-scope hook"
    parameters = "<field>, ..., context=None" if kind == "unpacking handler" else ", ".join(shape)
    write = f"def {name if name.isidentifier() else 'hook'}({parameters}): ..."
    if not callable(function):
        raise ApiError(key, f"the {what} must be a function, got {type(function).__name__}: write `{write}`")
    call = (
        function if inspect.isroutine(function) or isinstance(function, functools.partial) else type(function).__call__
    )
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        raise ApiError(
            key,
            f"the {what} {_label(function)} is `async def`, which pyservice would never await (it calls "
            f"{'handlers' if what.endswith('handler') else 'hooks'} synchronously; async ones are not supported yet): "
            f"write a plain `{write}`",
        )
    if inspect.isgeneratorfunction(call):
        raise ApiError(
            key, f"the {what} {_label(function)} is a generator, whose body a call would never run: write `{write}`"
        )
    if kind == "unpacking handler":
        return
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*shape)
    except TypeError as exc:
        raise ApiError(
            key,
            f"the {what} {_label(function)}{signature} cannot be called with ({', '.join(shape)}) ({exc}): "
            f"write `{write}`",
        ) from None


def _label(function: Any) -> str:
    return str(getattr(function, "__name__", None) or type(function).__name__)


logger = logging.getLogger("pyservice")

# The owners started in this process, oldest first; a fork's child starts its own.
_running: list[weakref.ref[Owner]] = []
# The owners whose plugins have start or stop work, to re-arm their lazy start in a forked child.
_with_lifecycle: weakref.WeakSet[Owner] = weakref.WeakSet()
_lifecycle_lock = threading.RLock()


def stop_started() -> None:
    """Stop every Service and Client started in this process, the last started first.

    Registered with ``atexit``; a server whose workers leave with
    ``os._exit`` calls it when a worker stops.
    """
    while _running:
        owner = _running[-1]()
        if owner is None:
            _running.pop()
        else:
            owner.stop()


def _forked() -> None:
    # In the child: what the parent started is the parent's to stop; every owner starts again on first use.
    global _lifecycle_lock
    _lifecycle_lock = threading.RLock()  # a thread of the parent may have held it at the fork
    _running.clear()
    for owner in list(_with_lifecycle):
        owner._started_in = None
        routes = owner.__dict__.get("_compiled")
        if not isinstance(routes, _StartFirst):
            owner._compiled = routes  # wrapped again by Owner.__setattr__


atexit.register(stop_started)
os.register_at_fork(after_in_child=_forked)


class _StartFirst(dict[str, Any]):
    """An owner's routes that start its plugins on the first lookup in a process, then step aside.

    The first call (or health probe) pays for the start, and composes the
    routes if they were not yet (``composed`` false); later calls read the
    plain routes, so the hot path never asks whether the plugins started.
    Truthy even when empty, since a client reads ``self._compiled or
    self.compile()``.
    """

    __slots__ = ("composed", "owner")

    owner: Owner
    composed: bool

    def __bool__(self) -> bool:
        return True

    def get(self, key: str, default: Any = None) -> Any:
        return self._routes().get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self._routes()[key]

    def _routes(self) -> Mapping[str, Any]:
        owner = self.owner
        owner.start()
        if not self.composed:
            return owner.compile()  # started now: what compile() assigns stays plain
        plain = dict(self)
        if owner.__dict__.get("_compiled") is self:
            object.__setattr__(owner, "_compiled", plain)
        return plain


class Owner:
    """Base of Service and Client: builds the api, the plugins, the hook list."""

    side: ClassVar[str] = ""
    scopes: ClassVar[tuple[str, ...]] = ()
    _lifecycle: bool = False
    _started_in: int | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        # Both sides' compile() assign the composed routes here; routes composed before this process
        # started its plugins are wrapped, so that the first call starts them (after the fork, in a worker).
        # Not composed yet (None) is wrapped too, since a call compiles through a path that returns the plain routes.
        if name == "_compiled" and self._lifecycle and self._started_in != os.getpid():
            routes = _StartFirst(value or {})
            routes.owner = self
            routes.composed = value is not None
            value = routes
        object.__setattr__(self, name, value)

    def compile(self) -> Mapping[str, Any]:
        """Compose each operation's chain; done once, before the first call (Service and Client say more)."""
        raise NotImplementedError

    def __init__(self, available_plugins: Iterable[type[Plugin]], api: Mapping[str, Any]) -> None:
        # This side's own plugin config (a client's secret), passed beside the description, never part of it.
        description = dict(api)
        plugin_config = description.pop("plugin_config", None)
        plugins = description.get("plugins") or {}
        classes = resolve_plugins(plugins if isinstance(plugins, Mapping) else (), available_plugins)
        self.api: Api = parse_api(
            description, classes, side=self.side or None, plugin_config=plugin_config, environ=os.environ
        )
        self.exceptions = ExceptionNamespace()
        self._hooks: list[Hook] = []
        self._compiled: dict[str, Any] | None = None
        #: Where each plugin sits in the resolved order, and why (``pyservice chain`` shows it).
        self.placements: tuple[Placement, ...] = tuple(order_plugins(classes))
        self._placed = {placement.name: placement for placement in self.placements}
        # The scopes in which each plugin registered an innermost hook, and why a hook was made innermost.
        self._innermost: dict[str, set[str]] = {}
        self._innermost_why: dict[tuple[str, str], str] = {}
        self.plugins: list[Plugin] = []
        for placement in self.placements:
            name = placement.name
            plugin = classes[name](self.api.plugins[name])
            self.plugins.append(plugin)
            plugin.setup(self)  # type: ignore[arg-type]
        base_start, base_stop = Plugin.start, Plugin.stop
        if any(type(p).start is not base_start or type(p).stop is not base_stop for p in self.plugins):
            self._lifecycle = True
            _with_lifecycle.add(self)
            self._compiled = None  # now wrapped: the first call starts the plugins

    def start(self) -> None:
        """Start the plugins in this process (``Plugin.start``), outermost first; once per process.

        The first call (or health probe) in a process does it, so a server's
        workers each start their own after the fork. Call it to start ahead
        of the first call.

        Raises:
            Exception: what a plugin's ``start`` raised; the plugins started
                before it are stopped again, and the next call tries again.
        """
        if not self._lifecycle:
            return
        pid = os.getpid()
        with _lifecycle_lock:
            if self._started_in == pid:
                return
            started: list[Plugin] = []
            try:
                for plugin in self.plugins:
                    plugin.start(self)  # type: ignore[arg-type]
                    started.append(plugin)
            except BaseException:
                self._stop(started)
                raise
            self._started_in = pid
            _running.append(weakref.ref(self))

    def stop(self) -> None:
        """Stop the plugins started in this process (``Plugin.stop``), innermost first.

        Called for you when a worker of ``pyservice serve`` stops and at
        interpreter exit; does nothing where ``start`` did not run. A
        plugin's exception is logged, and the others still stop. A later
        call starts the plugins again.
        """
        with _lifecycle_lock:
            for position in range(len(_running) - 1, -1, -1):
                if _running[position]() is self:
                    del _running[position]
            if self._started_in != os.getpid():
                return
            self._started_in = None
            self._stop(self.plugins)
            routes = self.__dict__.get("_compiled")
            if not isinstance(routes, _StartFirst):
                self._compiled = routes  # wrapped again: a later call starts the plugins again

    def _stop(self, plugins: list[Plugin]) -> None:
        for plugin in reversed(plugins):
            try:
                plugin.stop(self)  # type: ignore[arg-type]
            except Exception:
                logger.exception("%s %s: plugin %r failed to stop", self.side, self.api.name, plugin.name)

    def plugin(
        self,
        scope: str = "request",
        *,
        operations: Iterable[str] | None = None,
        name: str | None = None,
        innermost: bool = False,
    ) -> Callable[[F], F]:
        """Register the decorated function as a hook around calls.

        ``scope="request"`` hooks are called as ``hook(context)`` around the
        whole call: on a service outside decoding the request and encoding
        the response, on a client outside everything else.
        ``scope="operation"`` hooks are called as
        ``hook(request, response, context)``: on a service around the
        handler, with the decoded request; on a client around encoding the
        request, every HTTP attempt (retries included) and decoding the
        answer. A client also has ``scope="attempt"``: ``hook(context)``
        around each HTTP attempt, with the encoded ``context.body`` and the
        outgoing ``context.headers``. Each hook continues the call with
        ``context.process_request()``; see docs/plugins.md.

        Hooks run in registration order, outermost first. The plugins named
        in the api register theirs when the owner is built, in the resolved
        order (the api's listing, changed where a plugin's ``after`` or
        ``before`` says so; ``owner.placements`` says why), so they wrap the
        hooks registered afterwards. A hook registered with ``innermost=True``
        sits inside every hook of its scope registered without it, whatever
        the order: a cache that answers from the request scope, before the
        body is decoded, must run after authentication and throttling
        wherever the api lists it. A plugin that declares it runs after a
        plugin whose hook of that scope is innermost is made innermost too,
        after it, so that it does not run when the other answers.

        The function is checked here, once: an ``async def`` or generator
        function, or one that cannot take the scope's arguments, is refused.

        Args:
            scope: one of the owner's scopes.
            operations: the operations the hook applies to; all by default.
                Other operations do not pay for it.
            name: the name that ``operations.<op>.plugins.<name>: false``
                switches off; defaults to the function's name. A plugin
                passes its own ``name``, which is also how its order
                declarations find its hooks.
            innermost: sit inside the scope's other hooks (see above).

        Raises:
            ValueError: an unknown scope.
            ApiError: an operation the api does not declare, or a function
                that cannot be a hook of this scope (the message says what
                to write).
        """
        if scope not in self.scopes:
            raise ValueError(f"scope must be one of {self.scopes}, got {scope!r}")
        only = None if operations is None else frozenset(operations)
        for op in sorted(only or ()):
            if op not in self.api.operations:
                raise ApiError("operations", f"hook for {op!r}, which the api does not declare")

        def register(function: F) -> F:
            hook_name = name or str(getattr(function, "__name__", "hook"))
            check_callable(function, scope, f"plugins.{hook_name}" if name else "hooks", hook_name)
            inner = innermost
            placement = self._placed.get(hook_name)
            if placement is not None and not inner:
                # A plugin that must run inside one whose hook of this scope is innermost goes innermost too,
                # after it: declarations and innermost=True never disagree.
                outer = sorted(other for other in placement.inside if scope in self._innermost.get(other, ()))
                if outer:
                    inner = True
                    self._innermost_why[(hook_name, scope)] = f"innermost, as {outer[0]}'s {scope} hook is"
            elif inner:
                self._innermost_why[(hook_name, scope)] = "innermost=True"
            if inner:
                self._innermost.setdefault(hook_name, set()).add(scope)
            self._hooks.append(Hook(function, scope, hook_name, only, inner))
            self._compiled = None
            return function

        return register

    def describe_chain(self, operation: str | None = None, *, deadline: bool = False, verbose: bool = False) -> str:
        """The composed chain of each operation, outermost first, as text.

        Shows, per scope, which hooks run in which order, one line each
        (scope, then the plugin or hook; a plugin is listed only on the
        operations it registered a hook for), and the core's own steps
        where an operation has them: the check of its declared input (and,
        in debug mode, output), an unpacking handler's fields, a client's
        request validation or a stub.

        Args:
            operation: only this operation; all by default.
            deadline: show the chain of a service call that brings a
                deadline (``Pyservice-Timeout``), with the step that refuses
                it once the deadline passed.
            verbose: also show each plugin's effective config for the
                operation (secret options masked).

        A plugin placed by an ``after`` or ``before`` declaration, or made
        innermost, says why at the end of its line (``hook_reason``);
        ``describe_order`` says it for every plugin.
        """
        names = [operation] if operation is not None else list(self.api.operations)
        plugins = {plugin.name: plugin for plugin in self.plugins}
        lines = []
        service = self.side == "service"
        for name in names:
            op = self.api.operations[name]
            lines.append(f"{self.side} {self.api.name} {self.api.version} {name}")
            if not service and op.input is not None and getattr(self, "validate", False):
                lines.append(f"  {'':<9} check input {op.input.describe()}")
            for scope in self.scopes:
                for hook in hooks_for(self._hooks, scope, op):
                    plugin = plugins.get(hook.name)
                    if plugin is not None:
                        detail = f"plugin {hook.name}"
                        if verbose:
                            detail += f" {plugin.describe(plugin.operation_config(op) or {})}"
                        placement = self._placed[hook.name]
                        if placement.constraints or hook.innermost:
                            # Only where the api's listing alone does not say why it sits here.
                            detail += f"  ({self.hook_reason(hook)})"
                    else:
                        detail = f"hook {getattr(hook.function, '__qualname__', hook.name)}"
                    lines.append(f"  {scope:<9} {detail}")
                if scope == "request":
                    lines.append(f"  {'':<9} {'decode request' if service else 'encode request'}")
                    if service and op.input is not None:
                        lines.append(f"  {'':<9} check input {op.input.describe()}")
                    if service and deadline:
                        lines.append(f"  {'':<9} refuse the call once its deadline passed (504 DeadlineExceeded)")
            lines.extend(self._describe_end(op))
        return "\n".join(lines) + "\n"

    def describe_order(self) -> str:
        """The enabled plugins in the resolved order, outermost first, each with why it sits there, as text.

        One line per plugin: its place, its name, then where the api lists
        it and the ``after`` and ``before`` declarations that bind it
        (``Placement.reason``); ``pyservice chain`` prints it.
        """
        if not self.placements:
            return f"{self.side} {self.api.name} {self.api.version}: no plugins\n"
        width = max(len(placement.name) for placement in self.placements)
        lines = [f"{self.side} {self.api.name} {self.api.version} plugins, outermost first:"]
        for placement in self.placements:
            why = placement.reason
            inner = sorted(
                f"{scope} hook {self._innermost_why[(placement.name, scope)]}"
                for scope in self._innermost.get(placement.name, ())
                if (placement.name, scope) in self._innermost_why
            )
            if inner:
                why += "; " + "; ".join(inner)
            lines.append(f"  {placement.position + 1}. {placement.name:<{width}}  {why}")
        return "\n".join(lines) + "\n"

    def hook_reason(self, hook: Hook) -> str | None:
        """Why a registered hook sits where it does in its scope, or None for an application's plain hook."""
        placement = self._placed.get(hook.name)
        innermost = self._innermost_why.get((hook.name, hook.scope)) if hook.innermost else None
        if placement is None:
            return innermost
        return placement.reason if innermost is None else f"{placement.reason}; {innermost}"

    def _describe_end(self, operation: Operation) -> list[str]:
        # The innermost step: the handler (service) or the HTTP exchange (client).
        if self.side != "service":
            stubbed = operation.name in getattr(self, "_stubs", {})
            return [f"  {'':<9} {'HTTP exchange, stubbed' if stubbed else 'HTTP exchange'}"]
        handler = getattr(self, "_handlers", {}).get(operation.name)
        unpack = getattr(handler, "_pyservice_unpack", None)
        if unpack is None:
            lines = [f"  {'':<9} handler"]
        else:
            fields, _ = unpack
            lines = [f"  {'':<9} handler, unpacking {', '.join(fields) or 'no fields'}"]
        if operation.output is not None and self.api.debug:
            lines.append(f"  {'':<9} check output {operation.output.describe()} (debug)")
        return lines
