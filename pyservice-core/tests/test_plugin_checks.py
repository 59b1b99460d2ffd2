"""Every declaration of a plugin, and every handler and hook, is checked when the Service or Client is built."""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint
from typing import Any

import pyservice
import pytest
from pyservice import ApiError, Option, Plugin
from pyservice._plugin import resolve_plugins
from pyservice.checks import positive_int
from pyservice.testing import client_for


def plugin_class(name: str = "quota", **attributes: Any) -> type[Plugin]:
    def setup(self: Plugin, owner: Any) -> None:
        pass

    return type(f"{name.title()}Plugin", (Plugin,), {"name": name, "setup": setup, **attributes})


def build(*classes: type[Plugin], **api: Any) -> pyservice.Service:
    api.setdefault("operations", ["op"])
    api.setdefault("plugins", {cls.name: {} for cls in classes})
    return pyservice.Service(**api, available_plugins=classes)


# -- a plugin's exceptions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "words"),
    [
        (200, "from 400 to 599 other than 500, got 200"),
        (302, "from 400 to 599 other than 500, got 302"),
        (500, "other than 500, got 500"),
        (600, "from 400 to 599"),
        ("429", "expected an HTTP status like 429 or {'status': 429}, got '429' (str)"),
        (True, "expected an HTTP status like 429"),
        ({"status": 200}, "got 200"),
        ({"status": "429"}, "expected an HTTP status like 429"),
        ({"code": 429}, "unknown key 'code' (accepted: status)"),
    ],
)
def test_a_plugin_exception_status_that_is_not_an_error_status_is_refused(declared, words):
    with pytest.raises(ApiError) as raised:
        build(plugin_class(exceptions={"QuotaExceeded": declared}))
    assert raised.value.key == "plugins.quota"
    assert "QuotaPlugin.exceptions['QuotaExceeded']" in str(raised.value)
    assert words in str(raised.value)


def test_a_plugin_exception_in_the_api_dict_form_is_accepted():
    service = build(plugin_class(exceptions={"QuotaExceeded": {"status": 429}}))
    assert service.api.exceptions["QuotaExceeded"] == 429


def test_a_plugin_exception_in_the_dict_form_is_answered_with_its_status(wsgi):
    quota = plugin_class(exceptions={"QuotaExceeded": {"status": 429}})
    service = build(quota)

    @service.operation()
    def op(request, response, context):
        raise service.exceptions.QuotaExceeded("over quota")

    answer = wsgi(service.wsgi_application, "/api/v1/op")
    assert (answer.status, answer.error["name"]) == (429, "QuotaExceeded")
    client = client_for(service, available_plugins=[quota])
    with pytest.raises(client.exceptions.QuotaExceeded, match="over quota"):
        client.op()


@pytest.mark.parametrize("name", ["Exception", "BaseException", "ValueError", "LookupError", "OSError", "KeyError"])
def test_a_plugin_may_not_whitelist_a_python_builtin(name):
    with pytest.raises(ApiError, match=f"declares {name}, a Python builtin") as raised:
        build(plugin_class(exceptions={name: 400}))
    assert raised.value.key == "plugins.quota"


def test_a_plugin_exception_name_must_be_an_identifier():
    with pytest.raises(ApiError, match="expected exception names"):
        build(plugin_class(exceptions={"Quota Exceeded": 429}))


def test_plugin_exceptions_that_are_not_a_mapping_are_refused():
    with pytest.raises(ApiError, match="must map exception names to HTTP statuses"):
        build(plugin_class(exceptions=["QuotaExceeded"]))


def test_two_plugins_declaring_one_name_with_two_statuses_are_refused_naming_both():
    first = plugin_class("quota", exceptions={"QuotaExceeded": 429})
    second = plugin_class("limits", exceptions={"QuotaExceeded": 403})
    with pytest.raises(ApiError) as raised:
        build(first, second)
    message = str(raised.value)
    assert "plugins 'quota' and 'limits' both declare QuotaExceeded, with statuses 429 and 403" in message


def test_two_plugins_declaring_one_name_with_one_status_share_it():
    service = build(plugin_class("quota", exceptions={"Busy": 503}), plugin_class("limits", exceptions={"Busy": 503}))
    assert service.api.exceptions["Busy"] == 503


# -- an app listing a plugin's exception ---------------------------------------------------------------------------


@pytest.mark.parametrize("listed", [["QuotaExceeded"], {"QuotaExceeded": {}}, {"QuotaExceeded": {"status": 429}}])
def test_an_app_listing_a_plugin_exception_without_another_status_keeps_the_plugin_status(listed):
    service = build(plugin_class(exceptions={"QuotaExceeded": 429}), exceptions=listed)
    assert service.api.exceptions["QuotaExceeded"] == 429


def test_an_app_giving_a_plugin_exception_another_status_is_refused_naming_the_plugin():
    with pytest.raises(ApiError) as raised:
        build(plugin_class(exceptions={"QuotaExceeded": 429}), exceptions={"QuotaExceeded": {"status": 400}})
    assert raised.value.key == "exceptions.QuotaExceeded"
    assert "plugin 'quota' declares QuotaExceeded with status 429, not 400" in str(raised.value)


def test_an_operation_listing_a_plugin_exception_keeps_the_plugin_status():
    service = build(
        plugin_class(exceptions={"QuotaExceeded": 429}),
        operations={"op": {"exceptions": ["QuotaExceeded"]}, "other": {"exceptions": {"QuotaExceeded": {}}}},
    )
    assert service.api.operations["op"].exceptions == {"QuotaExceeded": 429}
    assert service.api.operations["other"].exceptions == {"QuotaExceeded": 429}


def test_an_operation_giving_a_plugin_exception_another_status_is_refused():
    with pytest.raises(ApiError) as raised:
        build(
            plugin_class(exceptions={"QuotaExceeded": 429}),
            operations={"op": {"exceptions": {"QuotaExceeded": {"status": 409}}}},
        )
    assert raised.value.key == "operations.op.exceptions.QuotaExceeded"


def test_an_app_listing_a_plugin_exception_answers_it_with_the_plugin_status_over_the_wire(wsgi):
    quota = plugin_class(exceptions={"QuotaExceeded": 429})
    service = build(quota, exceptions=["QuotaExceeded", "Other"])

    @service.operation()
    def op(request, response, context):
        raise service.exceptions.QuotaExceeded("over quota")

    answer = wsgi(service.wsgi_application, "/api/v1/op")
    assert (answer.status, answer.error["name"]) == (429, "QuotaExceeded")
    assert service.api.exceptions["Other"] == 400


def test_an_operation_listing_an_api_exception_by_name_in_the_dict_form_keeps_the_api_status():
    service = pyservice.Service(exceptions={"Gone": {"status": 410}}, operations={"op": {"exceptions": {"Gone": {}}}})
    assert service.api.operations["op"].exceptions == {"Gone": 410}


# -- keys a plugin owns --------------------------------------------------------------------------------------------


def test_a_plugin_api_key_shadowing_a_core_key_is_refused():
    with pytest.raises(ApiError, match=r"QuotaPlugin\.api_keys declares 'timeout', a top-level key of the core"):
        build(plugin_class(api_keys={"timeout": Option(float, 1.0)}))


def test_a_plugin_operation_key_shadowing_a_core_key_is_refused():
    with pytest.raises(ApiError, match="operation_keys declares 'idempotent', an operation key of the core"):
        build(plugin_class(operation_keys={"idempotent": Option(bool, False)}))


def test_two_plugins_owning_one_api_key_are_refused():
    first = plugin_class("quota", api_keys={"team": Option(str, "")})
    second = plugin_class("limits", api_keys={"team": Option(str, "")})
    with pytest.raises(ApiError, match="declares 'team', which plugin 'quota' owns") as raised:
        build(first, second)
    assert raised.value.key == "plugins.limits"


# -- option defaults -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (Option(int, "3"), "expected an integer, got '3' (str)"),
        (Option(bool, 0), "expected a boolean, got 0 (int)"),
        (Option(int, 0, check=positive_int), "got 0 (int)"),
        (Option(str, 5, secret=True), "*** (int)"),
    ],
)
def test_an_option_default_that_does_not_fit_its_declaration_is_refused(option, words):
    with pytest.raises(ApiError) as raised:
        build(plugin_class(options={"limit": option}))
    assert raised.value.key == "plugins.quota"
    assert "the default of" in str(raised.value)
    assert "QuotaPlugin.options['limit']" in str(raised.value)
    assert words in str(raised.value)


@pytest.mark.parametrize(
    "option", [Option(int), Option(int, None), Option(float, 3), Option((str, type(None)), None), Option(dict, {})]
)
def test_required_none_and_fitting_defaults_are_accepted(option):
    given = {"limit": 1} if option.default is pyservice.REQUIRED else {}
    service = build(plugin_class(options={"limit": option}), plugins={"quota": given})
    assert "limit" in service.plugins[0].config


def test_an_operation_option_default_is_checked_too():
    with pytest.raises(ApiError, match=r"operation_options\['ttl'\]"):
        build(plugin_class(operation_options={"ttl": Option(float, "1")}))


def test_an_option_for_an_unknown_side_is_refused_where_it_is_declared():
    with pytest.raises(ValueError, match="side must be 'service', 'client' or None"):
        Option(str, "", side="server")


# -- entry points --------------------------------------------------------------------------------------------------


def test_an_entry_point_whose_class_declares_another_name_is_refused(monkeypatch):
    import pyservice._plugin as plugin_module

    entry = EntryPoint("quota", f"{__name__}:ENTRY_CLASS", "pyservice.plugins")
    monkeypatch.setattr(plugin_module, "_entry_points", lambda: {"quota": entry})
    with pytest.raises(ApiError, match="the class declares name 'limits'") as raised:
        resolve_plugins(["quota"])
    assert raised.value.key == "plugins.quota"


ENTRY_CLASS = plugin_class("limits")


def test_installed_plugins_report_an_entry_point_whose_class_declares_another_name(monkeypatch):
    import pyservice._plugin as plugin_module

    entries = {
        "quota": EntryPoint("quota", f"{__name__}:ENTRY_CLASS", "pyservice.plugins"),
        "limits": EntryPoint("limits", f"{__name__}:ENTRY_CLASS", "pyservice.plugins"),
        "broken": EntryPoint("broken", f"{__name__}:NO_SUCH_NAME", "pyservice.plugins"),
    }
    monkeypatch.setattr(plugin_module, "_entry_points", lambda: entries)
    problems = {plugin.name: plugin.problem for plugin in plugin_module.installed_plugins(check=True)}
    assert problems["limits"] is None
    assert "the class declares name 'limits'" in str(problems["quota"])
    assert "failed to load" in str(problems["broken"])


# -- handlers ------------------------------------------------------------------------------------------------------


def service_with_op() -> pyservice.Service:
    return pyservice.Service(operations=["greet"])


def test_an_async_handler_is_refused_saying_what_to_write():
    service = service_with_op()

    async def greet(request, response, context):
        response.greeting = "hi"

    with pytest.raises(ApiError) as raised:
        service.operation()(greet)
    assert raised.value.key == "operations.greet"
    assert "is `async def`" in str(raised.value)
    assert "write a plain `def greet(request, response, context): ...`" in str(raised.value)


def test_an_async_unpacking_handler_is_refused():
    service = service_with_op()

    async def greet(name):
        return {"greeting": name}

    with pytest.raises(ApiError, match="`async def`"):
        service.operation(unpack=True)(greet)


def test_a_callable_object_with_an_async_call_is_refused():
    class Greeter:
        async def __call__(self, request, response, context):
            pass

    with pytest.raises(ApiError, match="`async def`"):
        service_with_op().operation("greet")(Greeter())


def test_a_generator_handler_is_refused():
    def greet(request, response, context):
        yield

    with pytest.raises(ApiError, match="is a generator"):
        service_with_op().operation()(greet)


@pytest.mark.parametrize(
    "source",
    [
        "def greet(request, response): pass",
        "def greet(request): pass",
        "def greet(request, response, context, extra): pass",
        "def greet(request, *, response, context): pass",
        "def greet(request, response, context, *, flag): pass",
    ],
)
def test_a_handler_with_the_wrong_signature_is_refused_saying_what_to_write(source):
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    with pytest.raises(ApiError) as raised:
        service_with_op().operation()(namespace["greet"])
    assert "cannot be called with (request, response, context)" in str(raised.value)
    assert "write `def greet(request, response, context): ...`" in str(raised.value)


@pytest.mark.parametrize(
    "source",
    [
        "def greet(request, response, context): pass",
        "def greet(*args): pass",
        "def greet(request, *args, **kwargs): pass",
        "def greet(request, response, context=None, extra=1): pass",
        "def greet(request, response, context, /): pass",
    ],
)
def test_handlers_that_take_the_three_arguments_are_accepted(source):
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    service_with_op().operation()(namespace["greet"])


def test_a_partial_and_a_callable_object_with_the_right_signature_are_accepted():
    def greet(prefix, request, response, context):
        response.greeting = prefix + request.name

    class Greeter:
        def __call__(self, request, response, context):
            response.greeting = "hi " + request.name

    first = service_with_op()
    first.operation("greet")(functools.partial(greet, "hello "))
    assert client_for(first).greet(name="x").greeting == "hello x"
    second = service_with_op()
    second.operation("greet")(Greeter())
    assert client_for(second).greet(name="x").greeting == "hi x"


# -- hooks ---------------------------------------------------------------------------------------------------------


def test_an_async_hook_is_refused():
    service = service_with_op()

    async def timing(context):
        context.process_request()

    with pytest.raises(ApiError, match="request-scope hook timing is `async def`"):
        service.plugin("request")(timing)


def test_an_operation_hook_that_takes_only_the_context_is_refused():
    service = service_with_op()

    def audit(context):
        context.process_request()

    with pytest.raises(ApiError) as raised:
        service.plugin("operation")(audit)
    assert "write `def audit(request, response, context): ...`" in str(raised.value)


def test_a_request_hook_that_takes_three_arguments_is_refused():
    service = service_with_op()

    def audit(request, response, context):
        context.process_request()

    with pytest.raises(ApiError, match=r"cannot be called with \(context\)"):
        service.plugin("request")(audit)


def test_a_client_attempt_hook_is_checked_too():
    client = pyservice.Client(operations=["greet"])

    def sign(request, response, context):
        context.process_request()

    with pytest.raises(ApiError, match=r"attempt-scope hook sign.*cannot be called with \(context\)"):
        client.plugin("attempt")(sign)


def test_a_plugin_hook_error_names_the_plugin():
    class Broken(Plugin):
        name = "broken"

        def setup(self, owner):
            owner.plugin("request", name=self.name)(lambda request, response, context: None)

    with pytest.raises(ApiError) as raised:
        pyservice.Service(operations=["op"], plugins={"broken": {}}, available_plugins=[Broken])
    assert raised.value.key == "plugins.broken"


def test_a_client_without_the_plugin_raises_its_exception_by_name_when_the_api_lists_it():
    quota = plugin_class(exceptions={"QuotaExceeded": 429})
    service = build(quota, exceptions=["QuotaExceeded"])

    @service.operation()
    def op(request, response, context):
        raise service.exceptions.QuotaExceeded("over quota")

    # The client's description leaves the plugin out (it is not installed there), and keeps the names.
    client = client_for(service, {"operations": ["op"], "exceptions": ["QuotaExceeded"]})
    with pytest.raises(client.exceptions.QuotaExceeded, match="over quota"):
        client.op()
    without_the_name = client_for(service, {"operations": ["op"]})
    with pytest.raises(pyservice.ServiceError):
        without_the_name.op()


def test_the_cores_own_option_defaults_fit_their_declarations():
    from pyservice import _api

    tables = {name: value for name, value in vars(_api).items() if name.endswith("OPTIONS") and isinstance(value, dict)}
    assert {"API_OPTIONS", "ENDPOINT_OPTIONS", "OPERATION_OPTIONS"} <= set(tables)
    for table, options in tables.items():
        for name, option in options.items():
            option.check_default(name, f"{table}[{name!r}]")
