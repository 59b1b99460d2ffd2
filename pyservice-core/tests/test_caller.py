from __future__ import annotations

import pickle
from typing import Any

import pyservice
import pytest
from pyservice import Caller
from pyservice.testing import client_for


def test_each_kind_has_its_own_key() -> None:
    assert Caller.principal("jwt", "alice").key == "jwt:alice"
    assert Caller.principal("api_key", "billing").key == "api_key:billing"
    assert Caller.anonymous("127.0.0.1").key == "anonymous:127.0.0.1"
    assert Caller.credential("api_key", "3f2a").key == "credential:api_key:3f2a"


def test_a_principal_named_like_an_address_is_not_the_anonymous_caller_from_it() -> None:
    assert Caller.principal("jwt", "127.0.0.1") != Caller.anonymous("127.0.0.1")
    assert Caller.principal("jwt", "127.0.0.1").key != Caller.anonymous("127.0.0.1").key


def test_the_same_id_proved_by_two_schemes_is_two_callers() -> None:
    assert Caller.principal("signed", "signer") != Caller.principal("jwt", "signer")


def test_callers_with_the_same_key_are_equal_and_hash_alike() -> None:
    assert Caller.principal("jwt", "a") == Caller.principal("jwt", "a")
    assert len({Caller.principal("jwt", "a"), Caller.principal("jwt", "a")}) == 1


def test_an_anonymous_caller_is_made_once_per_address() -> None:
    assert Caller.anonymous("10.1.2.3") is Caller.anonymous("10.1.2.3")
    assert Caller.anonymous(None).id is None
    assert Caller.anonymous(None).is_anonymous


@pytest.mark.parametrize("scheme", ["anonymous", "credential", "", "JWT", "a:b", "1x", 3])
def test_a_scheme_that_would_make_keys_ambiguous_is_refused(scheme: Any) -> None:
    with pytest.raises(ValueError, match="expected a scheme name"):
        Caller.principal(scheme, "x")


def test_a_caller_is_immutable_and_made_only_by_its_class_methods() -> None:
    caller = Caller.principal("jwt", "a")
    with pytest.raises(AttributeError, match="immutable"):
        caller.id = "b"  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"Caller\.principal"):
        Caller()


def test_a_caller_survives_pickling() -> None:
    caller = Caller.credential("jwt", "ab12")
    copy = pickle.loads(pickle.dumps(caller))
    assert (copy, copy.kind, copy.scheme, copy.id) == (caller, "credential", "jwt", "ab12")


def _whoami_service() -> pyservice.Service:
    service = pyservice.Service(name="who", operations=["whoami"])

    @service.operation("whoami")
    def whoami(request: Any, response: Any, context: pyservice.ServiceContext) -> None:
        response.key = context.caller_identity.key

    return service


def test_without_authentication_the_caller_is_anonymous_by_the_peer_address() -> None:
    service = _whoami_service()
    assert client_for(service, remote_addr="10.0.0.5").whoami().key == "anonymous:10.0.0.5"


def test_a_plugin_that_sets_only_the_display_name_gets_a_namespace_of_its_own() -> None:
    service = _whoami_service()

    @service.plugin("request")
    def legacy(context: pyservice.ServiceContext) -> None:
        context.caller = "alice"
        context.process_request()

    assert client_for(service).whoami().key == "caller:alice"


def test_a_plugin_sets_the_identity_other_plugins_read() -> None:
    service = _whoami_service()

    @service.plugin("request")
    def authenticate(context: pyservice.ServiceContext) -> None:
        context.caller_identity = Caller.principal("jwt", "127.0.0.1")
        context.process_request()

    assert client_for(service, remote_addr="127.0.0.1").whoami().key == "jwt:127.0.0.1"
