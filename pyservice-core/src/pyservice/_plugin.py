"""The plugin contract: the base class, declared options, entry-point discovery."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from ._errors import ApiError

if TYPE_CHECKING:
    from ._api import Operation
    from ._client import Client
    from ._options import Option
    from ._service import Service

__all__ = [
    "ENTRY_POINT_GROUP",
    "InstalledPlugin",
    "Placement",
    "Plugin",
    "installed_plugins",
    "order_plugins",
    "resolve_plugins",
]

#: The entry-point group plugin packages register in.
ENTRY_POINT_GROUP = "pyservice.plugins"


class Plugin:
    """Base class of pyservice plugins, ours and third parties' alike.

    A plugin package registers its subclass under the ``pyservice.plugins``
    entry-point group; naming it in the api description's ``plugins``
    builds it with its checked config, then calls ``setup`` with the
    Service or Client it belongs to. ``setup`` registers hooks through the
    same ``owner.plugin(...)`` decorator application code uses; ``start``
    and ``stop`` make and close what each process needs (in every worker,
    after the fork). See docs/plugins.md.

    Class attributes declare everything the plugin accepts, so a mistyped
    key fails at start-up naming the plugin and the key.

    Attributes:
        name: the name it is enabled by; equal to its entry-point name.
        options: keys of its config under ``plugins.<name>``.
        operation_options: keys an operation may override under
            ``operations.<op>.plugins.<name>``; usually a subset of
            ``options``.
        api_keys: top-level keys of the api description it owns.
        operation_keys: keys it owns in an operation's options.
        exceptions: exception names it raises, with their HTTP status; they
            are added to the api's whitelist on both sides.
        after: plugins this one must run inside of (after, on the way in),
            when they are enabled: a throttle that counts by caller sits
            after ``auth``.
        before: plugins this one must run outside of, when they are enabled.
        requires: plugins that must be enabled with this one; start-up
            fails naming the missing one. Order is said by ``after`` and
            ``before``, not by ``requires``.
        config: this instance's checked config, defaults filled.
    """

    name: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Option]] = {}
    operation_options: ClassVar[Mapping[str, Option]] = {}
    api_keys: ClassVar[Mapping[str, Option]] = {}
    operation_keys: ClassVar[Mapping[str, Option]] = {}
    exceptions: ClassVar[Mapping[str, int]] = {}
    after: ClassVar[Collection[str]] = ()
    before: ClassVar[Collection[str]] = ()
    requires: ClassVar[Collection[str]] = ()

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config: Mapping[str, Any] = config

    def setup(self, owner: Service | Client) -> None:
        """Register this plugin's hooks on ``owner``.

        Called once, when the Service or Client is built, in the resolved
        order (the api's ``plugins`` listing, changed where ``after`` and
        ``before`` say so). ``owner.side`` tells which side this is. Under
        ``pyservice serve`` that is in the master process, before the
        workers fork: make no connection, thread or lock here that a call
        will use, but in ``start``, which runs in each worker.
        """
        raise NotImplementedError(f"plugin {self.name!r} does not implement setup()")

    def start(self, owner: Service | Client) -> None:
        """Make this process's resources: connection pools, clients, threads.

        Called once in each process that serves (or calls), before its
        first call: in every worker, after the fork, never in a server's
        master process, whose resources a fork would share between workers.
        Plugins are started in the resolved order, outermost first. When
        one raises, the ones already started are stopped and the call that
        triggered it fails; the next call tries again. Does nothing unless
        overridden.
        """

    def stop(self, owner: Service | Client) -> None:
        """Close what ``start`` made, when the process stops.

        Called once in each process where ``start`` ran, in reverse order:
        when a worker stops (after its last call), at interpreter exit
        otherwise, or by ``owner.stop()``. An exception is logged and the
        other plugins are still stopped. Does nothing unless overridden.
        """

    def operation_config(self, operation: Operation) -> Mapping[str, Any] | None:
        """This plugin's config for one operation.

        Returns:
            The plugin's config updated with the operation's overrides, or
            ``None`` when the operation switches the plugin off.
        """
        entry = operation.plugins.get(self.name)
        if entry is False:
            return None
        if not entry or entry is True:
            return self.config
        return {**self.config, **entry}

    def describe(self, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A config to show (``pyservice chain``), with the values of secret options masked.

        Args:
            config: the config to show; this plugin's own by default, or an
                operation's (``operation_config``).
        """
        shown = self.config if config is None else config
        return {
            key: "***" if key in self.options and self.options[key].secret and value is not None else value
            for key, value in shown.items()
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


@dataclass(frozen=True)
class InstalledPlugin:
    """A plugin registered by an installed distribution.

    Attributes:
        name: the entry point's name, which the api's ``plugins`` uses.
        value: the entry point's ``module:Class``.
        package: the distribution that registers it.
        version: the distribution's version.
        problem: why enabling it would fail (the class cannot be loaded, is
            not a Plugin, or declares another ``name``); ``None`` when it
            loads, or when the listing was not asked to check.
    """

    name: str
    value: str
    package: str
    version: str
    problem: str | None = None


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        # The first distribution on sys.path wins, as with imports.
        found.setdefault(entry.name, entry)
    return found


def installed_plugins(*, check: bool = False) -> list[InstalledPlugin]:
    """List the plugins installed in this environment, sorted by name.

    Args:
        check: also load each plugin's class, and say in ``problem`` why
            enabling it would fail (``pyservice plugins`` does).
    """
    result = []
    for name, entry in sorted(_entry_points().items()):
        dist = entry.dist
        problem = None
        if check:
            try:
                _load(name, entry)
            except ApiError as exc:
                problem = exc.problem
        result.append(
            InstalledPlugin(
                name=name,
                value=entry.value,
                package=dist.name if dist is not None else "?",
                version=dist.version if dist is not None else "?",
                problem=problem,
            )
        )
    return result


def _load(name: str, entry: EntryPoint) -> type[Plugin]:
    key = f"plugins.{name}"
    try:
        cls = entry.load()
    except Exception as exc:  # an installed plugin that cannot be imported
        raise ApiError(key, f"entry point {entry.value!r} failed to load: {exc!r}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise ApiError(key, f"entry point {entry.value!r} is not a pyservice.Plugin subclass")
    if cls.name != name:
        raise ApiError(
            key,
            f"entry point {entry.value!r}: the class declares name {cls.name!r}; "
            "an entry point's name must be its class's `name`",
        )
    return cls


def resolve_plugins(names: Iterable[str], available: Iterable[type[Plugin]] = ()) -> dict[str, type[Plugin]]:
    """Find the plugin class for each name.

    Args:
        names: plugin names, as the api's ``plugins`` lists them.
        available: plugin classes passed in directly; they take precedence
            over installed ones of the same name.

    Returns:
        The classes by name, in the order of ``names``.

    Raises:
        ApiError: a name that is neither passed in nor installed (the
            message lists the installed ones), or an entry point that does
            not load a Plugin subclass.
    """
    given: dict[str, type[Plugin]] = {}
    for cls in available:
        if not (isinstance(cls, type) and issubclass(cls, Plugin)) or not cls.name:
            raise ApiError("plugins", f"expected Plugin subclasses with a name, got {cls!r}")
        given[cls.name] = cls
    installed: dict[str, EntryPoint] | None = None
    result: dict[str, type[Plugin]] = {}
    for name in names:
        key = f"plugins.{name}"
        if name in given:
            result[name] = given[name]
            continue
        if installed is None:
            installed = _entry_points()
        entry = installed.get(name)
        if entry is None:
            known = ", ".join(sorted(installed)) or "none"
            raise ApiError(key, f"unknown plugin (installed: {known})")
        result[name] = _load(name, entry)
    return result


@dataclass(frozen=True)
class Placement:
    """Where a plugin sits in the resolved order, and why.

    Attributes:
        name: the plugin's name.
        position: its place in the resolved order, outermost first, from 0.
        listed: its place in the api's ``plugins``, from 0.
        constraints: the declarations that bind it to another enabled
            plugin, as text (``"after auth (Throttle.after)"``).
        inside: the enabled plugins it must run inside of, whoever declared it.
    """

    name: str
    position: int
    listed: int
    constraints: tuple[str, ...] = ()
    inside: frozenset[str] = frozenset()

    @property
    def reason(self) -> str:
        """Why it sits where it does, in one line (``pyservice chain`` shows it)."""
        listed = f"listed {_ordinal(self.listed + 1)} in plugins"
        if not self.constraints:
            return listed
        moved = ", moved" if self.position != self.listed else ""
        return f"{listed}{moved}; {'; '.join(self.constraints)}"


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _names(cls: type[Plugin], attribute: str) -> list[str]:
    value = getattr(cls, attribute)
    where = f"{cls.__module__}.{cls.__qualname__}.{attribute}"
    if isinstance(value, str) or not isinstance(value, Collection) or not all(isinstance(n, str) for n in value):
        raise ApiError(f"plugins.{cls.name}", f"{where} must be a tuple of plugin names, got {value!r}")
    if cls.name in value:
        raise ApiError(f"plugins.{cls.name}", f"{where} names the plugin itself")
    return list(value)


def order_plugins(classes: Mapping[str, type[Plugin]]) -> list[Placement]:
    """Resolve the order the plugins are set up in, outermost first.

    The api's listing, changed only where a plugin's ``after`` or ``before``
    says so: a stable topological order, where each step takes the
    first-listed plugin whose every predecessor is placed. Declarations
    about plugins that are not enabled are ignored; ``requires`` is checked.

    Args:
        classes: the enabled plugin classes by name, in the api's order.

    Returns:
        One placement per plugin, in the resolved order.

    Raises:
        ApiError: a required plugin is not enabled, a declaration is not a
            collection of names, or the declarations contradict each other
            (the message names the cycle).
    """
    listed = list(classes)
    # edges[b][a]: a must be placed before b (b runs inside a); the value is the declaration that says so.
    edges: dict[str, dict[str, str]] = {name: {} for name in listed}
    for name, cls in classes.items():
        label = cls.__qualname__
        for required in _names(cls, "requires"):
            if required not in classes:
                raise ApiError(
                    f"plugins.{name}",
                    f"requires the plugin {required!r} ({label}.requires), which the api's plugins do not enable",
                )
        after, before = _names(cls, "after"), _names(cls, "before")
        both = sorted(set(after) & set(before))
        if both:
            raise ApiError(f"plugins.{name}", f"{label} declares {both[0]!r} both in after and in before")
        for other in after:
            if other in classes:
                edges[name].setdefault(other, f"{label}.after")
        for other in before:
            if other in classes:
                edges[other].setdefault(name, f"{label}.before")
    placed: list[str] = []
    remaining = list(listed)
    while remaining:
        ready = next((name for name in remaining if all(other in placed for other in edges[name])), None)
        if ready is None:
            raise ApiError(
                "plugins", f"the plugins' order declarations contradict each other: {_cycle(remaining, edges)}"
            )
        placed.append(ready)
        remaining.remove(ready)
    said: dict[str, list[str]] = {name: [] for name in listed}
    for name in listed:
        for other, declaration in edges[name].items():
            said[name].append(f"after {other} ({declaration})")
            said[other].append(f"before {name} ({declaration})")
    return [
        Placement(name, position, listed.index(name), tuple(said[name]), frozenset(edges[name]))
        for position, name in enumerate(placed)
    ]


def _cycle(remaining: list[str], edges: Mapping[str, Mapping[str, str]]) -> str:
    # Walk back along "must come after" from any stuck plugin until a plugin repeats.
    path = [remaining[0]]
    while True:
        current = path[-1]
        previous = next(other for other in edges[current] if other in remaining)
        if previous in path:
            cycle = [*path[path.index(previous) :], previous]
            break
        path.append(previous)
    steps = []
    for later, earlier in itertools.pairwise(cycle):
        steps.append(f"{later} must run after {earlier} ({edges[later][earlier]})")
    return ", ".join(steps)
