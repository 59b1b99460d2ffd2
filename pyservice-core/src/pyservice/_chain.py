"""The request chain: hooks registered by scope, composed once per operation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._errors import PluginError

if TYPE_CHECKING:
    from ._api import Operation
    from ._container import Container

__all__ = ["Context", "Hook", "Step", "chain_end"]

#: One link of a composed chain; every hook is adapted to this shape.
Step = Callable[[Any], Any]


class Context:
    """The state of one call, shared by every hook and the handler.

    A fresh context is made for each call. Hooks keep their own objects on
    it as attributes (``context.session``); the names documented on
    ``ServiceContext`` and ``ClientContext``
    are the core's.

    Attributes:
        operation: the operation's name.
        request: the call's request fields.
        response: the call's response fields.
        side: ``"service"`` or ``"client"``.
        annotations: fields plugins left about this call for observers, by
            ``annotate``; empty until one does.
        traceparent: the W3C ``traceparent`` of this call's own span
            (``00-<trace id>-<span id>-<flags>``), set by the first plugin
            that gives the call a trace id (a tracing or a logging plugin);
            ``None`` until one does. A plugin listed after it continues that
            trace rather than starting another, so logs and spans of one call
            carry one trace id whichever plugin comes first. On a client,
            inside ``attempt`` hooks it is the current attempt's span.
        deadline: the ``time.monotonic()`` time by which the call must be
            answered, or ``None`` without one; ``time_left`` says how
            long that is.

    A handler's ``context`` is a ``ServiceContext``
    (``context.service``, ``context.headers``, ``context.caller``...):
    annotate it with that class; this base class has what both sides share.
    """

    side: str = ""
    annotations: Mapping[str, Any] = MappingProxyType({})
    deadline: float | None = None
    # A class default: calls without a tracing plugin never set it.
    traceparent: str | None = None
    operation: str
    request: Container
    response: Container
    _steps: tuple[Step, ...]
    _next: int

    def annotate(self, **fields: Any) -> None:
        """Leave fields about this call for observers.

        A cache says whether it answered (``context.annotate(cache="hit")``);
        a logging plugin adds ``context.annotations`` to the call's event.
        Name fields after your plugin so they do not collide.
        """
        annotations = self.__dict__.get("annotations")
        if annotations is None:
            annotations = self.annotations = {}
        annotations.update(fields)

    def time_left(self) -> float | None:
        """Seconds left before the call's deadline (0 once it passed), or ``None`` without one.

        Bound your own work with it: a query, a call to another service (a
        pyservice Client called from a handler already does).
        """
        deadline = self.deadline
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    def process_request(self) -> None:
        """Continue the call: run the rest of the chain, then return here.

        A hook that returns without calling it stops the call there, and what
        it left in ``context.response`` is the answer. Exceptions raised
        further in come out of this call.

        Raises:
            PluginError: the calling hook already continued once.
        """
        position = self._next
        if position < 0:
            raise PluginError(f"{self.operation}: process_request() called twice by the same hook")
        self._next = position + 1
        try:
            self._steps[position](self)
        finally:
            # Whoever called us has now continued; a second call is an error.
            self._next = -1


def chain_end(context: Context) -> None:
    """The step after the innermost one: nothing lies beyond it."""
    raise PluginError(f"{context.operation}: process_request() called by the innermost step")


@dataclass(frozen=True)
class Hook:
    """A registered hook and where it applies.

    Attributes:
        function: the hook itself.
        scope: ``"request"``, ``"operation"`` or, on a client, ``"attempt"``.
        name: the plugin's name, or the function's for application hooks.
        operations: the operations it applies to, or ``None`` for all.
        innermost: sits inside every hook of its scope registered without
            it, whenever those were registered.
    """

    function: Callable[..., Any]
    scope: str
    name: str
    operations: frozenset[str] | None
    innermost: bool = False

    def applies_to(self, operation: Operation) -> bool:
        """Whether the hook belongs in ``operation``'s chain."""
        if self.operations is not None and operation.name not in self.operations:
            return False
        return operation.plugin_enabled(self.name)


def adapt_operation_hook(function: Callable[..., Any]) -> Step:
    """Adapt an operation-scope hook ``(request, response, context)`` to a step."""

    def step(context: Context) -> Any:
        return function(context.request, context.response, context)

    step.__wrapped__ = function  # type: ignore[attr-defined]
    return step


def hooks_for(hooks: Iterable[Hook], scope: str, operation: Operation) -> list[Hook]:
    """The hooks of one scope that apply to one operation, outermost first.

    Registration order, except that the hooks registered ``innermost`` come
    after all the others (in registration order among themselves).
    """
    found = [hook for hook in hooks if hook.scope == scope and hook.applies_to(operation)]
    return [hook for hook in found if not hook.innermost] + [hook for hook in found if hook.innermost]
