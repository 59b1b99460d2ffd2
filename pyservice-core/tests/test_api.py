"""The api description: defaults, and errors that name the key at start-up."""

from __future__ import annotations

import json

import pyservice
import pytest
from pyservice import ApiError, Option, Plugin


def test_defaults_fill_what_is_missing():
    api = pyservice.Service(operations=["ping"]).api
    assert api.name == "service"
    assert api.version == "v1"
    assert api.timeout == pyservice.Timeout(10.0, 10.0)
    assert api.debug is False
    assert api.endpoint.path == "/api/{version}/{operation}"
    assert api.endpoint.port == 8080
    assert api.max_body_size == 1 << 20
    assert api.operations["ping"].idempotent is False
    assert api.operations["ping"].max_body_size == 1 << 20


def test_operations_mapping_carries_per_operation_options():
    api = pyservice.Service(
        operations={"get": {"idempotent": True, "max_body_size": 10, "timeout": {"connect": 1, "read": 2}}, "put": None}
    ).api
    assert api.operations["get"].idempotent is True
    assert api.operations["get"].max_body_size == 10
    assert api.operations["get"].timeout == pyservice.Timeout(1, 2)
    assert api.operations["put"].timeout is None


def test_numeric_version_is_read_as_text():
    assert pyservice.Service(version=2, operations=[]).api.version == "2"


@pytest.mark.parametrize(
    ("api", "key", "words"),
    [
        ({"operatons": []}, "operatons", "unknown key"),
        ({"debug": "yes"}, "debug", "expected a boolean, got 'yes'"),
        ({"timeout": 0}, "timeout", "greater than 0"),
        ({"timeout": {"connect": 1, "raed": 2}}, "timeout", "raed"),
        ({"endpoint": {"path": "/api/{version}"}}, "endpoint.path", "'{operation}' exactly once"),
        ({"endpoint": {"path": "api/{operation}"}}, "endpoint.path", "starting with '/'"),
        ({"endpoint": {"path": "/{operation}/{id}"}}, "endpoint.path", "only placeholders"),
        ({"endpoint": {"path": "/{operation"}}, "endpoint.path", "balanced braces"),
        ({"endpoint": {"port": 70000}}, "endpoint.port", "port number"),
        ({"endpoint": {"scheme": "ftp"}}, "endpoint.scheme", "'http' or 'https'"),
        ({"operations": ["a", "a"]}, "operations.a", "declared twice"),
        ({"operations": ["get-item"]}, "operations.get-item", "letters, digits"),
        ({"operations": {"a": ["x"]}}, "operations.a", "expected a mapping"),
        ({"operations": {"a": {"idempotant": True}}}, "operations.a.idempotant", "unknown key"),
        ({"exceptions": ["Not A Name"]}, "exceptions.Not A Name", "Python identifier"),
        ({"exceptions": ["Exception"]}, "exceptions.Exception", "every error"),
        ({"exceptions": ["print"]}, "exceptions.print", "not an exception"),
        ({"exceptions": {"Gone": {"status": 200}}}, "exceptions.Gone.status", "400 to 599"),
        ({"exceptions": {"Gone": {"status": 500}}}, "exceptions.Gone.status", "other than 500"),
        ({"plugins": {"nope": {}}}, "plugins.nope", "unknown plugin (installed:"),
        ({"max_body_size": -1}, "max_body_size", "greater than 0"),
        ({"retries": True}, "retries", "expected an integer, got True"),
    ],
)
def test_a_wrong_description_fails_naming_the_key(api, key, words):
    with pytest.raises(ApiError) as raised:
        pyservice.Service(**api)
    assert raised.value.key == key
    assert words in str(raised.value)
    assert repr(key) in str(raised.value)


def test_client_checks_the_description_too():
    with pytest.raises(ApiError, match="operatons"):
        pyservice.Client(operatons=[])


def test_handler_for_an_undeclared_operation_fails():
    service = pyservice.Service(operations=["a"])
    with pytest.raises(ApiError, match="'b', which the api does not declare"):
        service.operation("b")(lambda request, response, context: None)


def test_a_second_handler_for_one_operation_fails():
    service = pyservice.Service(operations=["a"])
    service.operation("a")(lambda request, response, context: None)
    with pytest.raises(ApiError, match="already registered"):
        service.operation("a")(lambda request, response, context: None)


def test_require_handlers_refuses_to_start_with_a_missing_handler():
    service = pyservice.Service(operations=["a", "b"], require_handlers=True)
    service.operation("a")(lambda request, response, context: None)
    with pytest.raises(ApiError, match="no handler for b") as raised:
        service.compile()
    assert raised.value.key == "require_handlers"


def test_load_api_reads_json(tmp_path):
    path = tmp_path / "api.json"
    path.write_text(json.dumps({"name": "items", "operations": ["get"]}))
    assert pyservice.load_api(path) == {"name": "items", "operations": ["get"]}


def test_load_api_refuses_a_key_written_twice(tmp_path):
    path = tmp_path / "api.json"
    path.write_text('{"operations": {"get": {}, "get": {"idempotent": true}}}')
    with pytest.raises(ApiError, match="written twice") as raised:
        pyservice.load_api(path)
    assert raised.value.key == "get"


@pytest.mark.parametrize("text", ["{", "[1]"])
def test_load_api_refuses_what_is_not_a_json_object(tmp_path, text):
    path = tmp_path / "api.json"
    path.write_text(text)
    with pytest.raises(ApiError, match=str(path)):
        pyservice.load_api(path)


class Recorder(Plugin):
    name = "recorder"
    options = {
        "label": Option(str, "rec", "A label."),
        "limit": Option(
            int, 3, "A limit.", check=lambda v: v if v > 0 else (_ for _ in ()).throw(ValueError("expected > 0"))
        ),
        "token": Option(str, None, "A secret.", secret=True),
    }
    operation_options = {"label": options["label"]}
    api_keys = {"recorder_metadata": Option(dict, {}, "Owned top-level key.")}
    operation_keys = {"audited": Option(bool, False, "Owned operation key.")}
    exceptions = {"Recorded": 409}

    def setup(self, owner):
        self.owner = owner


def test_plugin_config_is_checked_and_filled():
    service = pyservice.Service(operations=["a"], plugins={"recorder": {"label": "x"}}, available_plugins=[Recorder])
    (plugin,) = service.plugins
    assert plugin.config == {"label": "x", "limit": 3, "token": None}
    assert plugin.owner is service


@pytest.mark.parametrize(
    ("plugins", "key", "words"),
    [
        ({"recorder": ["label"]}, "plugins.recorder", "expected a mapping of the plugin's config"),
        ({"recorder": {"lable": "x"}}, "plugins.recorder.lable", "unknown key (accepted: label, limit, token)"),
        ({"recorder": {"limit": 0}}, "plugins.recorder.limit", "expected > 0"),
        ({"recorder": {"limit": "3"}}, "plugins.recorder.limit", "expected an integer"),
    ],
)
def test_bad_plugin_config_fails_naming_plugin_and_key(plugins, key, words):
    with pytest.raises(ApiError) as raised:
        pyservice.Service(operations=["a"], plugins=plugins, available_plugins=[Recorder])
    assert raised.value.key == key
    assert words in str(raised.value)


def test_plugin_owned_keys_are_accepted_where_declared():
    service = pyservice.Service(
        operations={"a": {"audited": True}},
        recorder_metadata={"team": "x"},
        plugins={"recorder": {}},
        available_plugins=[Recorder],
    )
    assert service.api.extra == {"recorder_metadata": {"team": "x"}}
    assert service.api.operations["a"].extra == {"audited": True}


def test_plugin_owned_keys_are_unknown_without_the_plugin():
    with pytest.raises(ApiError, match="recorder_metadata"):
        pyservice.Service(operations=[], recorder_metadata={})


def test_per_operation_plugin_overrides_are_checked():
    with pytest.raises(ApiError) as raised:
        pyservice.Service(
            operations={"a": {"plugins": {"recorder": {"limit": 5}}}},
            plugins={"recorder": {}},
            available_plugins=[Recorder],
        )
    assert raised.value.key == "operations.a.plugins.recorder.limit"


def test_per_operation_entry_for_a_plugin_not_enabled_fails():
    with pytest.raises(ApiError, match="not enabled") as raised:
        pyservice.Service(operations={"a": {"plugins": {"recorder": False}}})
    assert raised.value.key == "operations.a.plugins.recorder"


def test_operation_config_merges_overrides_and_switches_off():
    service = pyservice.Service(
        operations={"a": {"plugins": {"recorder": {"label": "y"}}}, "b": {"plugins": {"recorder": False}}, "c": {}},
        plugins={"recorder": {}},
        available_plugins=[Recorder],
    )
    (plugin,) = service.plugins
    ops = service.api.operations
    assert plugin.operation_config(ops["a"])["label"] == "y"
    assert plugin.operation_config(ops["b"]) is None
    assert plugin.operation_config(ops["c"]) == plugin.config


def test_plugin_exceptions_join_the_whitelist():
    service = pyservice.Service(operations=[], plugins={"recorder": {}}, available_plugins=[Recorder])
    assert service.api.exceptions["Recorded"] == 409


def test_an_object_that_is_not_a_plugin_class_is_refused():
    with pytest.raises(ApiError, match="Plugin subclasses"):
        pyservice.Service(operations=[], available_plugins=[object])  # type: ignore[list-item]


def test_a_secret_option_never_shows_its_value_in_errors():
    def check(value):
        raise ValueError(f"expected a URL, not {value}")

    class Vault(Plugin):
        name = "vault"
        options = {
            "token": Option(str, "", secret=True),
            "url": Option(str, "", secret=True, check=check),
        }

        def setup(self, owner):
            pass

    for config in ({"token": 12345678}, {"url": "postgresql://user:hunter2@db/x"}):
        with pytest.raises(ApiError) as raised:
            pyservice.Service(operations=[], plugins={"vault": config}, available_plugins=[Vault])
        assert "12345678" not in str(raised.value)
        assert "hunter2" not in str(raised.value)
        assert "***" in str(raised.value)


def test_a_missing_handler_is_warned_about_at_start_up_naming_it(caplog):
    service = pyservice.Service(name="shop", operations=["a", "b", "c"])
    service.operation("b")(lambda request, response, context: None)
    with caplog.at_level("WARNING", logger="pyservice"):
        service.compile()
    assert [record.getMessage() for record in caplog.records] == [
        "shop v1: no handler for a, c; they are answered 501 NotImplemented (set require_handlers to refuse to start)"
    ]


def test_the_missing_handler_warning_is_not_repeated_by_a_second_compile(caplog):
    service = pyservice.Service(operations=["a"])
    with caplog.at_level("WARNING", logger="pyservice"):
        service.compile()
        service.compile()
    assert len(caplog.records) == 1


def test_a_service_with_every_handler_starts_without_a_warning(caplog):
    service = pyservice.Service(operations=["a"])
    service.operation("a")(lambda request, response, context: None)
    with caplog.at_level("WARNING", logger="pyservice"):
        service.compile()
    assert caplog.records == []
