"""The request chain: scopes, order, short-circuits, exceptions, per-operation hooks."""

from __future__ import annotations

import pyservice
import pytest
from pyservice import Plugin


def recording_service(**api):
    api.setdefault("operations", ["get", "put"])
    service = pyservice.Service(exceptions=["Refused"], **api)
    events: list[str] = []

    @service.operation("get")
    def get(request, response, context):
        events.append("handler")
        response.value = request.value

    @service.operation("put")
    def put(request, response, context):
        events.append("put")

    return service, events


def test_scopes_nest_request_outside_decoding_outside_operation(wsgi):
    service, events = recording_service()

    @service.plugin(scope="request")
    def outer(context):
        events.append(f"request in, decoded={context.request is not None}")
        context.process_request()
        events.append(f"request out, encoded={context.response_body}")

    @service.plugin(scope="operation")
    def inner(request, response, context):
        events.append(f"operation in, value={request.value}")
        context.process_request()
        events.append(f"operation out, response={dict(response)}")

    wsgi(service, "/api/v1/get", b'{"value": 3}')
    assert events == [
        "request in, decoded=False",
        "operation in, value=3",
        "handler",
        "operation out, response={'value': 3}",
        "request out, encoded=b'{\"value\":3}'",
    ]


def test_hooks_run_in_registration_order_outermost_first(wsgi):
    service, events = recording_service()
    for name in "abc":

        def hook(context, name=name):
            events.append(name + ">")
            context.process_request()
            events.append("<" + name)

        service.plugin(scope="request", name=name)(hook)
    wsgi(service, "/api/v1/get")
    assert events == ["a>", "b>", "c>", "handler", "<c", "<b", "<a"]


def test_an_innermost_hook_sits_inside_hooks_registered_after_it(wsgi):
    service, events = recording_service()
    for name, innermost in (("a", False), ("cache", True), ("b", False)):

        def hook(context, name=name):
            events.append(name + ">")
            context.process_request()

        hook.__qualname__ = name
        service.plugin(scope="request", name=name, innermost=innermost)(hook)
    wsgi(service, "/api/v1/get")
    assert events == ["a>", "b>", "cache>", "handler"]
    shown = [line.split()[-1] for line in service.describe_chain("get").splitlines()[1:4]]
    assert shown == ["a", "b", "cache"]


def test_a_request_hook_that_does_not_continue_answers_its_response(wsgi):
    service, events = recording_service()

    @service.plugin(scope="request")
    def cached(context):
        context.response.value = "from cache"

    answer = wsgi(service, "/api/v1/get", b"not even json")
    assert answer.status == 200
    assert answer.json() == {"value": "from cache"}
    assert events == []


def test_a_request_hook_can_answer_with_encoded_bytes(wsgi):
    service, _events = recording_service()

    @service.plugin(scope="request")
    def cached(context):
        context.response_body = b'{"value":"bytes"}'

    assert wsgi(service, "/api/v1/get").body == b'{"value":"bytes"}'


def test_an_operation_hook_that_does_not_continue_skips_the_handler(wsgi):
    service, events = recording_service()

    @service.plugin(scope="operation")
    def cached(request, response, context):
        response.value = "hit"

    assert wsgi(service, "/api/v1/get", b'{"value": 1}').json() == {"value": "hit"}
    assert events == []


@pytest.mark.parametrize("scope", ["request", "operation"])
def test_continuing_twice_is_an_error(wsgi, scope):
    service, events = recording_service(debug=True)

    def twice(*args):
        context = args[-1]
        context.process_request()
        context.process_request()

    service.plugin(scope=scope)(twice)
    answer = wsgi(service, "/api/v1/get")
    assert answer.status == 500
    assert answer.error["name"] == "PluginError"
    assert "called twice" in answer.error["message"]
    assert events == ["handler"]


@pytest.mark.parametrize("hooked", [False, True], ids=["flattened", "through hooks"])
def test_a_handler_cannot_continue(wsgi, hooked):
    service = pyservice.Service(operations=["get"], debug=True)

    @service.operation()
    def get(request, response, context):
        context.process_request()

    if hooked:

        @service.plugin(scope="operation")
        def passthrough(request, response, context):
            context.process_request()

    assert wsgi(service, "/api/v1/get").error["name"] == "PluginError"


def test_exceptions_travel_out_through_the_hooks(wsgi):
    service = pyservice.Service(operations=["get"], exceptions=["Refused"])
    seen = []

    @service.operation()
    def get(request, response, context):
        raise ValueError("inner")

    @service.plugin(scope="request")
    def translate(context):
        try:
            context.process_request()
        except ValueError as exc:
            seen.append(str(exc))
            raise service.exceptions.Refused("translated") from exc

    answer = wsgi(service, "/api/v1/get")
    assert seen == ["inner"]
    assert answer.status == 400
    assert answer.error["name"] == "Refused"


def test_request_hooks_see_protocol_refusals(wsgi):
    service, _events = recording_service()
    seen = []

    @service.plugin(scope="request")
    def observe(context):
        try:
            context.process_request()
        except Exception as exc:
            seen.append(service.describe_error(exc, context).status)
            raise

    assert wsgi(service, "/api/v1/get", b"{oops").status == 400
    assert seen == [400]


def test_hooks_set_status_and_headers_of_successes_and_errors(wsgi):
    service = pyservice.Service(operations=["get", "fail"], exceptions={"Throttled": {"status": 429}})
    service.operation("get")(lambda request, response, context: None)

    @service.operation()
    def fail(request, response, context):
        raise service.exceptions.Throttled()

    @service.plugin(scope="request")
    def headers(context):
        context.response_headers.append(("X-Limit", "10"))
        if context.operation == "get":
            context.status = 202
        context.process_request()

    ok = wsgi(service, "/api/v1/get")
    assert (ok.status, ok.headers["X-Limit"]) == (202, "10")
    refused = wsgi(service, "/api/v1/fail")
    assert (refused.status, refused.headers["X-Limit"]) == (429, "10")


def test_a_hook_for_some_operations_leaves_the_others_untouched(wsgi):
    service, events = recording_service()

    @service.plugin(scope="operation", operations=["put"])
    def only_put(request, response, context):
        events.append("hook")
        context.process_request()

    wsgi(service, "/api/v1/get")
    wsgi(service, "/api/v1/put")
    assert events == ["handler", "hook", "put"]
    assert len(service.compile()["/api/v1/get"].steps) == 2  # exchange and the end: nothing else


def test_a_hook_for_an_undeclared_operation_fails():
    service = pyservice.Service(operations=["get"])
    with pytest.raises(pyservice.ApiError, match="'nope'"):
        service.plugin(scope="request", operations=["nope"])


def test_an_unknown_scope_fails():
    service = pyservice.Service(operations=["get"])
    with pytest.raises(ValueError, match="scope must be one of"):
        service.plugin(scope="attempt")


class Counting(Plugin):
    name = "counting"
    options = {"step": pyservice.Option(int, 1, "Added per call.")}
    operation_options = options

    def setup(self, owner):
        self.calls = 0
        for op in owner.api.operations.values():
            config = self.operation_config(op)
            if config is None:
                continue

            def hook(context, step=config["step"]):
                self.calls += step
                context.process_request()

            owner.plugin(scope="request", operations=[op.name], name=self.name)(hook)


def test_a_plugin_reads_per_operation_config_and_is_switched_off_per_operation(wsgi):
    service, _events = recording_service(
        plugins={"counting": {}},
        available_plugins=[Counting],
        operations={"get": {"plugins": {"counting": {"step": 10}}}, "put": {"plugins": {"counting": False}}},
    )
    (plugin,) = service.plugins
    wsgi(service, "/api/v1/get")
    wsgi(service, "/api/v1/put")
    assert plugin.calls == 10


def test_switching_off_by_name_applies_to_hooks_for_all_operations(wsgi):
    events = []
    service = pyservice.Service(
        operations={"get": {}, "put": {"plugins": {"counting": False}}},
        plugins={"counting": {}},
        available_plugins=[Counting],
    )

    @service.plugin(scope="request", name="counting")
    def everywhere(context):
        events.append(context.operation)
        context.process_request()

    wsgi(service, "/api/v1/get")
    wsgi(service, "/api/v1/put")
    assert events == ["get"]


def test_plugins_named_in_the_api_wrap_hooks_registered_later(wsgi):
    service = pyservice.Service(operations=["get"], plugins={"counting": {}}, available_plugins=[Counting])
    service.operation("get")(lambda request, response, context: None)

    @service.plugin(scope="request")
    def later(context):
        context.process_request()

    route = service.compile()["/api/v1/get"]
    assert [step.__name__ for step in route.steps[:2]] == ["hook", "later"]


def test_describe_chain_shows_order_scope_and_masked_config():
    class Secretive(Plugin):
        name = "secretive"
        options = {"token": pyservice.Option(str, "abc", secret=True), "level": pyservice.Option(str, "info")}

        def setup(self, owner):
            owner.plugin(scope="operation", name=self.name)(lambda request, response, context: None)

    service = pyservice.Service(operations=["get"], plugins={"secretive": {}}, available_plugins=[Secretive])

    @service.plugin(scope="request")
    def timing(context):
        context.process_request()

    text = service.describe_chain(verbose=True)
    assert text.splitlines() == [
        "service service v1 get",
        "  request   hook test_describe_chain_shows_order_scope_and_masked_config.<locals>.timing",
        "            decode request",
        "  operation plugin secretive {'token': '***', 'level': 'info'}",
        "            handler",
    ]
    assert "abc" not in text
    # Without verbose: one line per hook, the config left out.
    assert service.describe_chain().splitlines()[3] == "  operation plugin secretive"


def test_annotations_are_per_call_fields_for_observers(wsgi):
    service, _events = recording_service()
    seen = []

    @service.plugin(scope="request")
    def observer(context):
        context.process_request()
        seen.append(dict(context.annotations))

    @service.plugin(scope="operation")
    def cache(request, response, context):
        context.annotate(cache="miss")
        context.process_request()
        context.annotate(stored=True)

    wsgi(service, "/api/v1/get")
    wsgi(service, "/api/v1/put")
    assert seen == [{"cache": "miss", "stored": True}, {"cache": "miss", "stored": True}]
    assert dict(pyservice.ServiceContext.annotations) == {}  # the class default stays empty


@pytest.mark.parametrize(
    "scopes", [("request",), ("operation",), ("request", "operation")], ids=["request", "operation", "both"]
)
def test_the_chain_decodes_and_encodes_once_per_call(wsgi, monkeypatch, scopes):
    decoded, encoded = [], []
    decode, encode = pyservice._service._decode, pyservice._service.encode
    monkeypatch.setattr(pyservice._service, "_decode", lambda body: decoded.append(body) or decode(body))
    monkeypatch.setattr(pyservice._service, "encode", lambda fields: encoded.append(fields) or encode(fields))
    service = pyservice.Service(operations=["get"])
    service.operation("get")(lambda request, response, context: setattr(response, "value", request.value))
    for scope in scopes:
        service.plugin(scope=scope, name=f"pass_{scope}")(lambda *args: args[-1].process_request())
    assert wsgi(service, "/api/v1/get", b'{"value": 1}').json() == {"value": 1}
    assert (len(decoded), len(encoded)) == (1, 1)
