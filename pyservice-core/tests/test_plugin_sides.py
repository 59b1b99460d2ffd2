"""Options for one side only, and a side's own plugin config from its constructor or the environment."""

from __future__ import annotations

from typing import Any

import pyservice
import pytest
from pyservice import ApiError, Option, Plugin
from pyservice._api import environ_name
from pyservice.testing import client_for


class Vault(Plugin):
    name = "vault"
    options = {
        "level": Option(str, "info", "Both sides."),
        "token": Option(str, doc="The client's secret.", secret=True, side="client"),
        "slots": Option(int, 5, "The service's own.", side="service"),
    }
    operation_options = {"slots": options["slots"]}

    def setup(self, owner: Any) -> None:
        pass


API: dict[str, Any] = {"operations": ["op"], "plugins": {"vault": {"level": "debug"}}}


def config(owner: pyservice.Service | pyservice.Client) -> dict[str, Any]:
    return dict(owner.plugins[0].config)


def test_a_service_starts_without_the_client_only_required_secret_and_never_sees_it():
    service = pyservice.Service(**API, available_plugins=[Vault])
    assert config(service) == {"level": "debug", "slots": 5}


def test_a_client_without_its_required_secret_fails_naming_the_key():
    with pytest.raises(ApiError, match="is required") as raised:
        pyservice.Client(**API, available_plugins=[Vault])
    assert raised.value.key == "plugins.vault.token"


def test_a_client_takes_its_secret_from_its_own_plugin_config():
    client = pyservice.Client(**API, plugin_config={"vault": {"token": "s3cret"}}, available_plugins=[Vault])
    assert config(client) == {"level": "debug", "token": "s3cret"}
    # The secret is not part of the description, which client_for and others copy.
    assert "plugin_config" not in client.api.raw
    assert "s3cret" not in repr(client.api.raw)


def test_a_client_takes_its_secret_from_the_environment(monkeypatch):
    monkeypatch.setenv("PYSERVICE_VAULT_TOKEN", "from-env")
    client = pyservice.Client(**API, available_plugins=[Vault])
    assert config(client)["token"] == "from-env"


def test_the_constructor_wins_over_the_environment_which_wins_over_the_description(monkeypatch):
    monkeypatch.setenv("PYSERVICE_VAULT_LEVEL", "warning")
    monkeypatch.setenv("PYSERVICE_VAULT_TOKEN", "from-env")
    client = pyservice.Client(**API, plugin_config={"vault": {"token": "given"}}, available_plugins=[Vault])
    assert config(client) == {"level": "warning", "token": "given"}


def test_a_service_reads_a_non_string_option_from_the_environment_as_json(monkeypatch):
    monkeypatch.setenv("PYSERVICE_VAULT_SLOTS", "7")
    assert config(pyservice.Service(**API, available_plugins=[Vault]))["slots"] == 7


@pytest.mark.parametrize(("text", "words"), [("seven", "expected a JSON value"), ("7.5", "expected an integer")])
def test_a_bad_environment_value_fails_naming_the_variable(monkeypatch, text, words):
    monkeypatch.setenv("PYSERVICE_VAULT_SLOTS", text)
    with pytest.raises(ApiError, match=words) as raised:
        pyservice.Service(**API, available_plugins=[Vault])
    assert raised.value.key == "PYSERVICE_VAULT_SLOTS"


def test_a_bad_secret_from_the_environment_is_not_shown(monkeypatch):
    class Locked(Plugin):
        name = "locked"
        options = {"pin": Option(int, 1, secret=True)}

        def setup(self, owner: Any) -> None:
            pass

    monkeypatch.setenv("PYSERVICE_LOCKED_PIN", "hunter2")
    with pytest.raises(ApiError) as raised:
        pyservice.Service(operations=[], plugins={"locked": {}}, available_plugins=[Locked])
    assert raised.value.key == "PYSERVICE_LOCKED_PIN"
    assert "hunter2" not in str(raised.value)


def test_the_other_side_option_in_the_description_is_checked_then_left_out():
    api = {"operations": ["op"], "plugins": {"vault": {"slots": 9, "token": "t"}}}
    assert config(pyservice.Service(**api, available_plugins=[Vault])) == {"level": "info", "slots": 9}
    assert config(pyservice.Client(**api, available_plugins=[Vault])) == {"level": "info", "token": "t"}
    bad = {"operations": ["op"], "plugins": {"vault": {"slots": "9"}}}
    with pytest.raises(ApiError) as raised:
        pyservice.Client(**bad, plugin_config={"vault": {"token": "t"}}, available_plugins=[Vault])
    assert raised.value.key == "plugins.vault.slots"


def test_an_operation_override_for_the_other_side_is_left_out():
    api = {"operations": {"op": {"plugins": {"vault": {"slots": 2}}}}, "plugins": {"vault": {}}}
    service = pyservice.Service(**api, available_plugins=[Vault])
    client = pyservice.Client(**api, plugin_config={"vault": {"token": "t"}}, available_plugins=[Vault])
    operation = service.api.operations["op"]
    assert service.plugins[0].operation_config(operation)["slots"] == 2
    assert "slots" not in client.plugins[0].operation_config(client.api.operations["op"])


def test_a_bad_value_in_the_constructor_config_names_it():
    with pytest.raises(ApiError) as raised:
        pyservice.Client(**API, plugin_config={"vault": {"token": 5}}, available_plugins=[Vault])
    assert raised.value.key == "plugin_config.vault.token"
    assert str(raised.value).endswith("got *** (int)")


def test_constructor_config_for_a_plugin_the_api_does_not_enable_is_refused():
    with pytest.raises(ApiError, match="not enabled") as raised:
        pyservice.Client(**API, plugin_config={"vault": {"token": "t"}, "audit": {}}, available_plugins=[Vault])
    assert raised.value.key == "plugin_config.audit"


def test_constructor_config_that_is_not_a_mapping_is_refused():
    with pytest.raises(ApiError, match="expected a mapping"):
        pyservice.Client(**API, plugin_config=[("vault", {})], available_plugins=[Vault])


def test_a_client_built_for_a_service_in_process_reads_its_secret_from_the_environment(monkeypatch):
    service = pyservice.Service(**API, available_plugins=[Vault])
    service.operation("op")(lambda request, response, context: None)
    with pytest.raises(ApiError, match="token"):
        client_for(service, available_plugins=[Vault])
    monkeypatch.setenv("PYSERVICE_VAULT_TOKEN", "t")
    client = client_for(service, available_plugins=[Vault])
    assert config(client)["token"] == "t"
    assert client.op() == {}


def test_environment_names_are_upper_case_with_underscores():
    assert environ_name("my-plugin", "redis.url") == "PYSERVICE_MY_PLUGIN_REDIS_URL"
