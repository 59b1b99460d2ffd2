"""The plugin contract: the base class, declared options, entry-point discovery."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from ._errors import ApiError

if TYPE_CHECKING:
    from ._api import Operation
    from ._client import Client
    from ._options import Option
    from ._service import Service

__all__ = ["ENTRY_POINT_GROUP", "InstalledPlugin", "Plugin", "installed_plugins", "resolve_plugins"]

#: The entry-point group plugin packages register in.
ENTRY_POINT_GROUP = "pyservice.plugins"


class Plugin:
    """Base class of pyservice plugins, ours and third parties' alike.

    A plugin package registers its subclass under the ``pyservice.plugins``
    entry-point group; naming it in the api description's ``plugins``
    builds it with its checked config, then calls :meth:`setup` with the
    Service or Client it belongs to. ``setup`` registers hooks through the
    same ``owner.plugin(...)`` decorator application code uses.

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
        config: this instance's checked config, defaults filled.
    """

    name: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Option]] = {}
    operation_options: ClassVar[Mapping[str, Option]] = {}
    api_keys: ClassVar[Mapping[str, Option]] = {}
    operation_keys: ClassVar[Mapping[str, Option]] = {}
    exceptions: ClassVar[Mapping[str, int]] = {}

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config: Mapping[str, Any] = config

    def setup(self, owner: Service | Client) -> None:
        """Register this plugin's hooks on ``owner``.

        Called once, when the Service or Client is built, in the order the
        api's ``plugins`` lists them. ``owner.side`` tells which side this is.
        """
        raise NotImplementedError(f"plugin {self.name!r} does not implement setup()")

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
                operation's (:meth:`operation_config`).
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
