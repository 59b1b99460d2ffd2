"""The api description: a plain dict checked once, at start-up, into frozen objects."""

from __future__ import annotations

import builtins
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ._errors import ApiError
from ._options import Option, check_options, describe
from ._retry import API_KEYS as _RETRY_API_KEYS
from ._retry import OPERATION_KEYS as _RETRY_OPERATION_KEYS
from ._structures import Structure, parse_structure
from .checks import non_negative_int, positive, positive_int
from .exceptions import exception_class, is_exception_name

if TYPE_CHECKING:
    from ._plugin import Plugin

__all__ = ["Api", "Endpoint", "Health", "Operation", "Timeout", "load_api", "parse_api"]

DEFAULT_PATH = "/api/{version}/{operation}"
DEFAULT_MAX_BODY_SIZE = 1 << 20
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Exceptions that would whitelist every error a handler can raise.
_TOO_BROAD = frozenset({"BaseException", "Exception"})


class Timeout(NamedTuple):
    """Connect and read timeouts of a call, in seconds."""

    connect: float
    read: float


@dataclass(frozen=True)
class Endpoint:
    """Where the service listens and the client connects."""

    scheme: str
    host: str
    port: int
    path: str

    def path_for(self, version: str, operation: str) -> str:
        """The URL path of one operation of one version."""
        return self.path.format(version=version, operation=operation)

    @property
    def base_url(self) -> str:
        """``scheme://host:port``, with IPv6 hosts bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class Operation:
    """One declared operation, with its options resolved.

    Attributes:
        name: the operation's name, also its URL segment and client method.
        idempotent: the client may retry it after a transport failure.
        max_body_size: the largest request body the service reads, in bytes.
        timeout: this operation's client timeouts, or None for the api's.
        plugins: per-operation plugin entries: a dict of overrides, or
            ``False`` where the plugin is switched off for this operation.
        extra: keys owned by plugins (declared in ``Plugin.operation_keys``).
        input: the declared request fields, compiled, or None.
        output: the declared response fields, compiled, or None.
        exceptions: exceptions whitelisted for this operation only, with
            their status (the api's own apply too).
        unknown_fields: ``"reject"`` or ``"ignore"`` request fields that
            ``input`` (or an unpacking handler) does not declare.
    """

    name: str
    idempotent: bool
    max_body_size: int
    timeout: Timeout | None
    plugins: Mapping[str, Mapping[str, Any] | bool]
    extra: Mapping[str, Any]
    input: Structure | None = None
    output: Structure | None = None
    exceptions: Mapping[str, int] = field(default_factory=dict)
    unknown_fields: str = "reject"

    def plugin_enabled(self, plugin: str) -> bool:
        """Whether the plugin of that name is on for this operation."""
        return self.plugins.get(plugin) is not False


@dataclass(frozen=True)
class Health:
    """Where the health endpoints are; see docs/deadlines-and-health.md.

    Attributes:
        live: the liveness path, or None.
        ready: the readiness path, or None.
        timeout: seconds each readiness check may take.
    """

    live: str | None
    ready: str | None
    timeout: float


@dataclass(frozen=True)
class Api:
    """An api description, checked and with its defaults filled.

    Build one with ``parse_api``; Service and Client do it for you and
    keep it as ``service.api`` and ``client.api``.
    """

    name: str
    version: str
    timeout: Timeout
    debug: bool
    endpoint: Endpoint
    operations: Mapping[str, Operation]
    exceptions: Mapping[str, int]
    plugins: Mapping[str, Mapping[str, Any]]
    max_body_size: int
    retries: int
    require_handlers: bool
    extra: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    health: Health | None = None
    openapi: str | None = None
    explorer: str | None = None


def load_api(path: str | Path) -> dict[str, Any]:
    """Read an api description from a JSON file.

    Unlike ``json.load`` this refuses a key written twice in one object, so
    an operation declared twice is an error rather than a silent overwrite.

    Args:
        path: the file to read, UTF-8.

    Returns:
        The description as a plain dict, ready for ``Service(**api)``.

    Raises:
        ApiError: the file is not JSON, not an object, or repeats a key.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        api = json.loads(text, object_pairs_hook=_refuse_duplicates)
    except json.JSONDecodeError as exc:
        raise ApiError("", f"{path}: not valid JSON: {exc}") from None
    if not isinstance(api, dict):
        raise ApiError("", f"{path}: expected a JSON object, got {describe(api)}")
    return api


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ApiError(key, "written twice in the same object")
        result[key] = value
    return result


def _port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise ValueError("expected a port number from 0 to 65535")
    return value


def _scheme(value: str) -> str:
    if value not in ("http", "https"):
        raise ValueError("expected 'http' or 'https'")
    return value


def _path_pattern(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("expected a path starting with '/'")
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise ValueError(f"expected a pattern with balanced braces ({exc})") from None
    if fields.count("operation") != 1:
        raise ValueError("expected a pattern with '{operation}' exactly once")
    if fields.count("version") > 1 or set(fields) - {"operation", "version"}:
        raise ValueError("expected a pattern whose only placeholders are '{version}' and '{operation}'")
    return value


def _absolute_path(value: str) -> str:
    if not value.startswith("/") or "{" in value or "?" in value:
        raise ValueError("expected a path starting with '/', without placeholders or a query")
    return value


def _optional_path(value: str | None) -> str | None:
    return None if value is None else _absolute_path(value)


def _unknown_fields(value: str) -> str:
    if value not in ("reject", "ignore"):
        raise ValueError("expected 'reject' or 'ignore'")
    return value


def _version(value: str | int) -> str:
    text = str(value)
    if not text or "/" in text or not text.isprintable() or " " in text:
        raise ValueError("expected a non-empty version without '/' or spaces")
    return text


def _timeout(value: float | Mapping[str, Any]) -> Timeout:
    if isinstance(value, Mapping):
        parts = check_options("", _TIMEOUT_PARTS, value)
        return Timeout(parts["connect"], parts["read"])
    return Timeout(positive(value), positive(value))


_TIMEOUT_PARTS = {
    "connect": Option(float, 10.0, "Seconds to wait for a connection.", check=positive),
    "read": Option(float, 10.0, "Seconds to wait for the answer.", check=positive),
}

ENDPOINT_OPTIONS: dict[str, Option] = {
    "scheme": Option(str, "http", "http or https.", check=_scheme),
    "host": Option(str, "127.0.0.1", "Host the service binds and the client connects to."),
    "port": Option(int, 8080, "TCP port.", check=_port),
    "path": Option(
        str, DEFAULT_PATH, "URL path pattern with {operation} and optionally {version}.", check=_path_pattern
    ),
}

#: The core's own top-level keys. Plugins may declare more (``Plugin.api_keys``).
API_OPTIONS: dict[str, Option] = {
    "name": Option(str, "service", "The service's name, for logs and documents."),
    "version": Option((str, int), "v1", "The api version, the {version} of the path.", check=_version),
    "timeout": Option((float, dict), 10.0, "Client timeout in seconds, or {connect, read}.", check=_timeout),
    "debug": Option(bool, False, "Send internal error details and tracebacks to callers."),
    "endpoint": Option(dict, {}, "scheme, host, port and path of the service."),
    "operations": Option((list, dict), [], "Operation names, or a mapping of name to options."),
    "exceptions": Option((list, dict), [], "Exception names that may cross the wire."),
    "plugins": Option(dict, {}, "Plugin names to their config, outermost first."),
    "max_body_size": Option(int, DEFAULT_MAX_BODY_SIZE, "Largest request body read, in bytes.", check=positive_int),
    "retries": Option(int, 2, "Retries of an idempotent call after a transport failure.", check=non_negative_int),
    "require_handlers": Option(bool, False, "Refuse to start while a declared operation has no handler."),
    "health": Option(
        (dict, type(None)),
        {},
        "Paths of the liveness and readiness endpoints ({live, ready, timeout}); null switches them off.",
    ),
    "openapi": Option(
        (str, type(None)), None, "A path to serve the OpenAPI document at, with GET.", check=_optional_path
    ),
    "explorer": Option(
        (str, type(None)),
        None,
        "A path to serve an API explorer page (Swagger UI) at, with GET; needs 'openapi'.",
        check=_optional_path,
    ),
}

# The client's retry keys (retry, retry_budget, circuit_breaker), checked by their own module.
API_OPTIONS.update(_RETRY_API_KEYS)

_HEALTH_OPTIONS = {
    "live": Option((str, type(None)), "/health/live", "The liveness path; null switches it off.", check=_optional_path),
    "ready": Option(
        (str, type(None)), "/health/ready", "The readiness path; null switches it off.", check=_optional_path
    ),
    "timeout": Option(float, 2.0, "Seconds each readiness check may take.", check=positive),
}

OPERATION_OPTIONS: dict[str, Option] = {
    "idempotent": Option(bool, False, "The client may retry the call after a transport failure."),
    "max_body_size": Option(int, None, "Largest request body read for this operation.", check=positive_int),
    "timeout": Option((float, dict), None, "Client timeout for this operation.", check=_timeout),
    "plugins": Option(dict, {}, "Per-operation plugin overrides; false switches one off."),
    "input": Option(
        (list, dict, type),
        None,
        "The request's fields: a list of names, a mapping of name to type, or a class declaring them.",
    ),
    "output": Option(
        (list, dict, type),
        None,
        "The response's fields: a list of names, a mapping of name to type, or a class declaring them.",
    ),
    "exceptions": Option((list, dict), [], "Exception names whitelisted for this operation only."),
    "unknown_fields": Option(
        str, "reject", "'reject' (400) or 'ignore' (drop) request fields not declared.", check=_unknown_fields
    ),
}


# The client's per-operation retry keys (retry, hedge), checked by their own module.
OPERATION_OPTIONS.update(_RETRY_OPERATION_KEYS)


def parse_api(
    raw: Mapping[str, Any],
    plugins: Mapping[str, type[Plugin]],
    *,
    side: str | None = None,
    plugin_config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Api:
    """Check an api description and fill its defaults.

    Args:
        raw: the description as written.
        plugins: the classes of the plugins it enables, by name, whose
            declared keys are accepted where they belong.
        side: ``"service"`` or ``"client"``: an option declared for the
            other side is checked where given, then left out; ``None``
            treats every option as this side's.
        plugin_config: this side's own plugin config, by plugin name, over
            the description's ``plugins`` (a client's secret).
        environ: where ``PYSERVICE_<PLUGIN>_<OPTION>`` variables are read,
            over the description and under ``plugin_config``; none by default.

    Returns:
        The checked description.

    Raises:
        ApiError: naming the first key that is wrong.
    """
    if not isinstance(raw, Mapping):
        raise ApiError("", f"the api description must be a mapping, got {describe(raw)}")
    check_declarations(plugins)
    owned = {key: option for cls in plugins.values() for key, option in cls.api_keys.items()}
    core_given = {key: value for key, value in raw.items() if key not in owned}
    core = check_options("", API_OPTIONS, core_given)
    extra = check_options("", owned, {key: raw[key] for key in raw if key in owned})

    endpoint = Endpoint(**check_options("endpoint", ENDPOINT_OPTIONS, core["endpoint"]))
    plugin_configs = _plugin_configs(core["plugins"], plugins, side, plugin_config or {}, environ or {})
    declared = plugin_exceptions(plugins)
    exceptions = _exceptions(core["exceptions"], "exceptions", {name: status for name, (status, _) in declared.items()})
    _check_plugin_statuses(exceptions, declared, "exceptions")
    for name, (status, _) in declared.items():
        exceptions.setdefault(name, status)
    operations = _operations(core["operations"], core["max_body_size"], plugins, exceptions, declared, side)
    health = _health(core["health"])
    if core["explorer"] is not None and core["openapi"] is None:
        raise ApiError("explorer", "the explorer shows the OpenAPI document: name its path in 'openapi' too")
    _check_paths(endpoint, core["version"], operations, health, core["openapi"], core["explorer"])
    return Api(
        name=core["name"],
        version=core["version"],
        timeout=core["timeout"],
        debug=core["debug"],
        endpoint=endpoint,
        operations=operations,
        exceptions=exceptions,
        plugins=plugin_configs,
        max_body_size=core["max_body_size"],
        retries=core["retries"],
        require_handlers=core["require_handlers"],
        extra=extra,
        raw=dict(raw),
        health=health,
        openapi=core["openapi"],
        explorer=core["explorer"],
    )


def _health(given: Mapping[str, Any] | None) -> Health | None:
    if given is None:
        return None
    checked = check_options("health", _HEALTH_OPTIONS, given)
    if checked["live"] is None and checked["ready"] is None:
        return None
    return Health(checked["live"], checked["ready"], checked["timeout"])


def _check_paths(
    endpoint: Endpoint,
    version: str,
    operations: Mapping[str, Operation],
    health: Health | None,
    openapi: str | None,
    explorer: str | None = None,
) -> None:
    # A GET endpoint on an operation's path would leave that operation unreachable by its 405.
    claimed = {endpoint.path_for(version, name): f"operation {name!r}" for name in operations}
    others = [("openapi", openapi), ("explorer", explorer)]
    if health is not None:
        others += [("health.live", health.live), ("health.ready", health.ready)]
    for key, path in others:
        if path is None:
            continue
        if path in claimed:
            raise ApiError(key, f"the path {path!r} is already the path of {claimed[path]}")
        claimed[path] = f"'{key}'"
    if explorer is not None:
        # The explorer's assets are served under its path.
        prefix = explorer.rstrip("/") + "/"
        for path, owner in claimed.items():
            if path.startswith(prefix):
                raise ApiError("explorer", f"the explorer's assets are served under {prefix!r}, as is {owner}")


def _plugin_configs(
    given: Mapping[str, Any],
    plugins: Mapping[str, type[Plugin]],
    side: str | None,
    local: Mapping[str, Any],
    environ: Mapping[str, str],
) -> dict[str, dict[str, Any]]:
    if not isinstance(local, Mapping):
        raise ApiError("plugin_config", f"expected a mapping of plugin names to their config, got {describe(local)}")
    for name in local:
        if name not in given:
            raise ApiError(f"plugin_config.{name}", f"plugin {name!r} is not enabled in the api's 'plugins'")
    configs = {}
    for name, config in given.items():
        key = f"plugins.{name}"
        if config is None or config is True:
            config = {}
        elif not isinstance(config, Mapping):
            raise ApiError(key, f"expected a mapping of the plugin's config, got {describe(config)}")
        options = plugins[name].options
        mine = local.get(name) or {}
        if not isinstance(mine, Mapping):
            raise ApiError(f"plugin_config.{name}", f"expected a mapping of the plugin's config, got {describe(mine)}")
        # Checked layer by layer, so that an error names where the value came from.
        check_options(key, options, config, defaults=False)
        from_environ = _environ_config(name, options, environ)
        check_options(f"plugin_config.{name}", options, mine, defaults=False)
        configs[name] = check_options(key, options, {**config, **from_environ, **mine}, side=side)
    return configs


def environ_name(plugin: str, option: str) -> str:
    """The environment variable that sets one plugin option: ``PYSERVICE_<PLUGIN>_<OPTION>``, upper case."""
    return re.sub(r"[^A-Z0-9]", "_", f"PYSERVICE_{plugin}_{option}".upper())


def _environ_config(plugin: str, options: Mapping[str, Option], environ: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, option in options.items():
        variable = environ_name(plugin, name)
        text = environ.get(variable)
        if text is None:
            continue
        types = option.type if isinstance(option.type, tuple) else (option.type,)
        # A string option takes the text as it is; any other reads it as JSON (3, 0.5, true, null, [..], {..}).
        if str in types:
            value: Any = text
        else:
            try:
                value = json.loads(text)
            except ValueError:
                shown = "***" if option.secret else repr(text[:60])
                raise ApiError(variable, f"expected a JSON value for plugins.{plugin}.{name}, got {shown}") from None
        option.validate(variable, value)  # here, so that an error names the variable
        found[name] = value
    return found


def _operations(
    given: list[Any] | Mapping[str, Any],
    max_body_size: int,
    plugins: Mapping[str, type[Plugin]],
    api_exceptions: Mapping[str, int],
    declared: Mapping[str, tuple[int, str]],
    side: str | None,
) -> dict[str, Operation]:
    if isinstance(given, list):
        entries: list[tuple[str, Any]] = [(name, {}) for name in given]
    else:
        entries = list(given.items())
    declared_keys = dict(OPERATION_OPTIONS)
    owned = {key: option for cls in plugins.values() for key, option in cls.operation_keys.items()}
    declared_keys.update(owned)
    operations: dict[str, Operation] = {}
    for name, options in entries:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ApiError(f"operations.{name}", "expected an operation name made of letters, digits and '_'")
        key = f"operations.{name}"
        if name in operations:
            raise ApiError(key, "operation declared twice")
        if options is None:
            options = {}
        elif not isinstance(options, Mapping):
            raise ApiError(key, f"expected a mapping of the operation's options, got {describe(options)}")
        checked = check_options(key, declared_keys, options)
        reject = checked["unknown_fields"] == "reject"
        given_input, given_output = checked["input"], checked["output"]
        own_exceptions = _exceptions(checked["exceptions"], f"{key}.exceptions", api_exceptions)
        _check_plugin_statuses(own_exceptions, declared, f"{key}.exceptions")
        operations[name] = Operation(
            name=name,
            idempotent=checked["idempotent"],
            max_body_size=checked["max_body_size"] or max_body_size,
            timeout=checked["timeout"],
            plugins=_operation_plugins(key, checked["plugins"], plugins, side),
            extra={k: checked[k] for k in owned},
            input=None if given_input is None else parse_structure(f"{key}.input", given_input, reject_unknown=reject),
            # A response is the service's own doing: a field it does not declare is always a mistake.
            output=None
            if given_output is None
            else parse_structure(f"{key}.output", given_output, reject_unknown=True),
            exceptions=own_exceptions,
            unknown_fields=checked["unknown_fields"],
        )
    return operations


def _operation_plugins(
    key: str, given: Mapping[str, Any], plugins: Mapping[str, type[Plugin]], side: str | None
) -> dict[str, Mapping[str, Any] | bool]:
    result: dict[str, Mapping[str, Any] | bool] = {}
    for name, entry in given.items():
        path = f"{key}.plugins.{name}"
        if name not in plugins:
            raise ApiError(path, f"plugin {name!r} is not enabled in the api's 'plugins'")
        if entry is False:
            result[name] = False
        elif entry is None or entry is True:
            result[name] = {}
        elif isinstance(entry, Mapping):
            result[name] = check_options(path, plugins[name].operation_options, entry, defaults=False, side=side)
        else:
            raise ApiError(path, f"expected a mapping of overrides, or false, got {describe(entry)}")
    return result


def _exceptions(
    given: list[Any] | Mapping[str, Any], prefix: str, known: Mapping[str, int] | None = None
) -> dict[str, int]:
    """The whitelist as written, statuses filled.

    A name listed without a status (the list form, or ``{}``) takes the one
    ``known`` gives it (the api's, a plugin's), else 400.
    """
    entries = [(name, None) for name in given] if isinstance(given, list) else list(given.items())
    result: dict[str, int] = {}
    for name, options in entries:
        key = f"{prefix}.{name}"
        if not is_exception_name(name):
            raise ApiError(key, "expected an exception name (a Python identifier)")
        if name in result:
            raise ApiError(key, "exception listed twice")
        if name in _TOO_BROAD:
            raise ApiError(key, "would whitelist every error; name the exceptions instead")
        try:
            exception_class(name)
        except AttributeError as exc:
            raise ApiError(key, str(exc)) from None
        if options is None:
            options = {}
        elif not isinstance(options, Mapping):
            raise ApiError(key, f"expected a mapping like {{'status': 404}}, got {describe(options)}")
        if "status" not in options and known is not None and name in known:
            result[name] = known[name]
        else:
            result[name] = check_options(key, _EXCEPTION_OPTIONS, options)["status"]
    return result


def _check_plugin_statuses(listed: Mapping[str, int], declared: Mapping[str, tuple[int, str]], prefix: str) -> None:
    # A plugin's exception keeps the status its plugin gives it: the plugin's
    # own code and documentation (a throttle's 429 with Retry-After) rely on it.
    for name, status in listed.items():
        if name in declared and declared[name][0] != status:
            wanted, plugin = declared[name]
            raise ApiError(
                f"{prefix}.{name}",
                f"plugin {plugin!r} declares {name} with status {wanted}, not {status}: "
                f"list it without a status (it takes {wanted}), or not at all",
            )


def plugin_exceptions(plugins: Mapping[str, type[Plugin]]) -> dict[str, tuple[int, str]]:
    """The exceptions the plugins declare, checked: name to (status, plugin name).

    Each plugin's ``exceptions`` maps a name to its status, as an integer
    or in the api's form ``{"status": 429}``. The status is an error status
    (400 to 599 other than 500, which marks internal errors); the name is
    the plugin's own, never a Python builtin (whitelisting ``ValueError``
    would let every ``ValueError`` the application raises reach callers with
    its message). Two plugins may declare one name only with one status.

    Raises:
        ApiError: naming the plugin, the name and what is wrong.
    """
    declared: dict[str, tuple[int, str]] = {}
    for plugin, cls in plugins.items():
        key = f"plugins.{plugin}"
        where = f"{cls.__module__}.{cls.__qualname__}.exceptions"
        entries = cls.exceptions
        if not isinstance(entries, Mapping):
            raise ApiError(key, f"{where} must map exception names to HTTP statuses, got {describe(entries)}")
        for name, value in entries.items():
            if not is_exception_name(name):
                raise ApiError(key, f"{where}: expected exception names (Python identifiers), got {describe(name)}")
            if hasattr(builtins, name):
                raise ApiError(
                    key,
                    f"{where} declares {name}, a Python builtin: whitelisting it would let every {name} "
                    "the application raises reach callers with its message; declare a name of the plugin's own",
                )
            status = value.get("status", 400) if isinstance(value, Mapping) else value
            if isinstance(value, Mapping) and set(value) - {"status"}:
                unknown = sorted(set(value) - {"status"})[0]
                raise ApiError(key, f"{where}[{name!r}]: unknown key {unknown!r} (accepted: status)")
            if isinstance(status, bool) or not isinstance(status, int):
                raise ApiError(
                    key,
                    f"{where}[{name!r}]: expected an HTTP status like 429 or {{'status': 429}}, got {describe(value)}",
                )
            try:
                _error_status(status)
            except ValueError as exc:
                raise ApiError(key, f"{where}[{name!r}]: {exc}, got {status}") from None
            if name in declared and declared[name][0] != status:
                other_status, other = declared[name]
                raise ApiError(
                    key,
                    f"plugins {other!r} and {plugin!r} both declare {name}, with statuses {other_status} and "
                    f"{status}: one name crosses the wire with one status",
                )
            declared.setdefault(name, (status, plugin))
    return declared


def check_declarations(plugins: Mapping[str, type[Plugin]]) -> None:
    """Check what the plugins declare besides their exceptions, once, before their config.

    - ``api_keys`` and ``operation_keys`` may not shadow the core's own
      keys (the user's ``timeout`` would be read by the plugin, not the
      core) nor another plugin's;
    - every declared ``Option``'s default fits its own type and check.

    Raises:
        ApiError: naming the plugin and the declaration.
    """
    owners: dict[tuple[str, str], str] = {}
    for plugin, cls in plugins.items():
        key = f"plugins.{plugin}"
        where = f"{cls.__module__}.{cls.__qualname__}"
        for attribute, core, what in (
            ("api_keys", API_OPTIONS, "a top-level key of the core"),
            ("operation_keys", OPERATION_OPTIONS, "an operation key of the core"),
        ):
            for name in getattr(cls, attribute):
                if name in core:
                    raise ApiError(key, f"{where}.{attribute} declares {name!r}, {what}: choose another name")
                other = owners.setdefault((attribute, name), plugin)
                if other != plugin:
                    raise ApiError(key, f"{where}.{attribute} declares {name!r}, which plugin {other!r} owns")
        for attribute in ("options", "operation_options", "api_keys", "operation_keys"):
            for name, option in getattr(cls, attribute).items():
                option.check_default(key, f"{where}.{attribute}[{name!r}]")


def _error_status(value: int) -> int:
    # 500 stays the mark of an internal error, so a client can tell them apart.
    if not 400 <= value <= 599 or value == 500:
        raise ValueError("expected an HTTP status from 400 to 599 other than 500")
    return value


_EXCEPTION_OPTIONS = {
    "status": Option(int, 400, "HTTP status of the answer.", check=_error_status),
}
