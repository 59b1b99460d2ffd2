"""The Service as a WSGI application: answers, errors and the protocol's rules."""

from __future__ import annotations

import io
import logging

import pyservice
import pytest


def test_an_operation_takes_the_flattened_path_exactly_when_it_has_no_hooks(items_service):
    routes = items_service.compile().values()
    assert len(routes) == 2
    for route in routes:
        assert (route.handler_only is None) == ("request:pass_request" in repr(route))


def test_a_call_answers_200_with_the_response(items_service, wsgi):
    answer = wsgi(items_service, "/api/v1/put_item", b'{"item": {"a": 1}}')
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Content-Length"] == str(len(answer.body))
    item_id = answer.json()["id"]
    assert wsgi(items_service, "/api/v1/get_item", b'{"id": "%s"}' % item_id.encode()).json() == {"item": {"a": 1}}


def test_a_whitelisted_exception_answers_its_name_and_args(items_service, wsgi):
    answer = wsgi(items_service, "/api/v1/get_item", b'{"id": "7"}')
    assert answer.status == 400
    assert answer.error == {
        "kind": "exception",
        "name": "DoesNotExist",
        "message": "No item with id 7",
        "args": ["No item with id 7"],
    }


def test_a_whitelisted_exception_answers_its_configured_status(wsgi):
    service = pyservice.Service(operations=["get"], exceptions={"DoesNotExist": {"status": 404}})

    @service.operation()
    def get(request, response, context):
        raise service.exceptions.DoesNotExist("gone", 3)

    answer = wsgi(service, "/api/v1/get")
    assert answer.status == 404
    assert answer.error["args"] == ["gone", 3]


def test_a_builtin_name_whitelists_the_builtin_and_its_subclasses(wsgi):
    service = pyservice.Service(operations=["get"], exceptions=["LookupError"])

    @service.operation()
    def get(request, response, context):
        return {}[request.key]  # raises KeyError, a LookupError

    answer = wsgi(service, "/api/v1/get", b'{"key": "k"}')
    assert answer.status == 400
    assert answer.error["name"] == "LookupError"
    assert answer.error["args"] == ["k"]


def test_an_exception_not_whitelisted_is_an_internal_error_without_detail(wsgi, caplog):
    service = pyservice.Service(operations=["get"])

    @service.operation()
    def get(request, response, context):
        raise RuntimeError("secret database password in this message")

    with caplog.at_level(logging.ERROR, logger="pyservice"):
        answer = wsgi(service, "/api/v1/get")
    assert answer.status == 500
    assert answer.error == {"kind": "internal", "name": "InternalError", "message": "internal error"}
    assert b"secret" not in answer.body
    # The service's own log keeps the traceback.
    assert "secret database password" in caplog.text
    assert "Traceback" in caplog.text


def test_debug_sends_internal_error_detail(wsgi):
    service = pyservice.Service(operations=["get"], debug=True)

    @service.operation()
    def get(request, response, context):
        raise RuntimeError("boom")

    answer = wsgi(service, "/api/v1/get")
    assert answer.status == 500
    assert answer.error["name"] == "RuntimeError"
    assert answer.error["message"] == "boom"
    assert any("raise RuntimeError" in line for line in answer.error["traceback"])


def test_an_unknown_operation_is_404(items_service, wsgi):
    answer = wsgi(items_service, "/api/v1/delete_item")
    assert answer.status == 404
    assert answer.error["kind"] == "protocol"
    assert answer.error["name"] == "UnknownOperation"


def test_an_unknown_operation_is_answered_with_the_declared_ones(items_service, wsgi):
    message = wsgi(items_service, "/api/v1/get_iten").error["message"]
    assert message == (
        "no operation at the path '/api/v1/get_iten' (items v1 answers POST /api/v1/{operation} for get_item, put_item)"
    )


def test_a_long_unknown_path_is_cut_in_the_message(items_service, wsgi):
    message = wsgi(items_service, "/" + "x" * 5000).error["message"]
    assert len(message) < 400
    assert "/" + "x" * 199 + "..." in message


def test_an_unknown_version_is_404(items_service, wsgi):
    assert wsgi(items_service, "/api/v2/get_item").status == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"])
def test_a_method_other_than_post_is_405_with_allow(items_service, wsgi, method):
    answer = wsgi(items_service, "/api/v1/get_item", method=method)
    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"
    assert answer.error["name"] == "MethodNotAllowed"


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"]
)
def test_a_body_that_is_not_json_by_its_content_type_is_415(items_service, wsgi, content_type):
    answer = wsgi(items_service, "/api/v1/get_item", content_type=content_type)
    assert answer.status == 415
    assert answer.error["name"] == "UnsupportedMediaType"


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", 'application/json;charset="UTF-8"']
)
def test_json_content_types_with_utf8_are_accepted(items_service, wsgi, content_type):
    answer = wsgi(items_service, "/api/v1/put_item", b'{"item": 1}', content_type=content_type)
    assert answer.status == 200


def test_a_body_without_length_or_chunked_framing_is_411(items_service, wsgi):
    answer = wsgi(items_service, "/api/v1/get_item", content_length=None)
    assert answer.status == 411
    assert answer.error["name"] == "LengthRequired"


@pytest.mark.parametrize("length", ["-1", "1e3", " 12", "0x10", "99999999999999999999", "\xb2", "1_0"])
def test_a_malformed_content_length_is_400(items_service, wsgi, length):
    answer = wsgi(items_service, "/api/v1/get_item", content_length=length)
    assert answer.status == 400
    assert answer.error["name"] == "MalformedRequest"


def test_a_content_length_over_the_limit_is_413_before_reading(wsgi):
    class Untouchable(io.BytesIO):
        def read(self, *args):
            raise AssertionError("the body must not be read")

    service = pyservice.Service(operations=["get"], max_body_size=10)
    answer = wsgi(service, "/api/v1/get", content_length="11", stream=Untouchable())
    assert answer.status == 413
    assert answer.error["name"] == "BodyTooLarge"


def test_the_limit_is_overridable_per_operation(wsgi):
    service = pyservice.Service(operations={"small": {"max_body_size": 5}, "large": {}}, max_body_size=100)
    service.operation("small")(lambda request, response, context: None)
    service.operation("large")(lambda request, response, context: None)
    body = b'{"a": "0123456789"}'
    assert wsgi(service, "/api/v1/small", body).status == 413
    assert wsgi(service, "/api/v1/large", body).status == 200


def test_a_chunked_body_over_the_limit_is_413_counting_bytes_read(wsgi):
    service = pyservice.Service(operations=["get"], max_body_size=1000)
    service.operation("get")(lambda request, response, context: None)
    body = b'{"a": "' + b"x" * 5000 + b'"}'
    answer = wsgi(service, "/api/v1/get", body, content_length=None, headers={"Transfer-Encoding": "chunked"})
    assert answer.status == 413


def test_a_chunked_body_within_the_limit_is_read(wsgi):
    service = pyservice.Service(operations=["echo"])

    @service.operation()
    def echo(request, response, context):
        response.update(request)

    body = b'{"a": "' + b"x" * 200_000 + b'"}'
    answer = wsgi(service, "/api/v1/echo", body, content_length=None, headers={"Transfer-Encoding": "chunked"})
    assert answer.status == 200
    assert len(answer.json()["a"]) == 200_000


def test_both_transfer_encoding_and_content_length_are_refused(items_service, wsgi):
    answer = wsgi(items_service, "/api/v1/get_item", headers={"Transfer-Encoding": "chunked"})
    assert answer.status == 400
    assert "both Transfer-Encoding and Content-Length" in answer.error["message"]


def test_a_transfer_encoding_other_than_chunked_is_refused(items_service, wsgi):
    answer = wsgi(items_service, "/api/v1/get_item", content_length=None, headers={"Transfer-Encoding": "gzip"})
    assert answer.status == 400


def test_a_body_shorter_than_its_content_length_is_400(items_service, wsgi):
    answer = wsgi(items_service, "/api/v1/get_item", b'{"id": "1"}', content_length="50")
    assert answer.status == 400
    assert "ended after 11 of 50 bytes" in answer.error["message"]


def test_a_read_timeout_is_408(items_service, wsgi):
    class TimesOut(io.BytesIO):
        def read(self, *args):
            raise TimeoutError("timed out")

    answer = wsgi(items_service, "/api/v1/get_item", content_length="10", stream=TimesOut())
    assert answer.status == 408
    assert answer.error["name"] == "RequestTimeout"


def test_a_body_arriving_in_pieces_is_assembled(items_service, wsgi):
    class Trickle(io.BytesIO):
        def read(self, size=-1):
            return super().read(min(size, 3))

    body = b'{"item": "abcdefghij"}'
    answer = wsgi(items_service, "/api/v1/put_item", body, stream=Trickle(body))
    assert answer.status == 200


@pytest.mark.parametrize(
    ("body", "name"),
    [
        (b'{"id": ', "MalformedJSON"),
        (b"", "MalformedJSON"),
        (b'{"id": NaN}', "MalformedJSON"),
        (b'{"id": Infinity}', "MalformedJSON"),
        (b'{"id": 1e400}', "MalformedJSON"),
        (b'{"id": "\xff\xfe"}', "MalformedJSON"),
        (b"[" * 2000 + b"]" * 2000, "MalformedJSON"),
        (b"[]", "MalformedRequest"),
        (b'"text"', "MalformedRequest"),
        (b"null", "MalformedRequest"),
        (b"12", "MalformedRequest"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(items_service, wsgi, body, name):
    answer = wsgi(items_service, "/api/v1/get_item", body)
    assert answer.status == 400
    assert answer.error["kind"] == "protocol"
    assert answer.error["name"] == name


def test_nan_in_a_response_is_never_emitted(wsgi, chain_path):
    service = chain_path(pyservice.Service(operations=["get"]))

    @service.operation()
    def get(request, response, context):
        response.value = float("nan")

    answer = wsgi(service, "/api/v1/get")
    assert answer.body == b'{"value":null}'


def test_a_response_that_cannot_be_encoded_is_an_internal_error(wsgi, chain_path):
    service = chain_path(pyservice.Service(operations=["get"]))

    @service.operation()
    def get(request, response, context):
        response.value = object()

    assert wsgi(service, "/api/v1/get").status == 500


def test_a_declared_operation_without_handler_answers_501(wsgi):
    service = pyservice.Service(operations=["later"])
    answer = wsgi(service, "/api/v1/later")
    assert answer.status == 501
    assert answer.error["name"] == "NotImplemented"


def test_missing_request_fields_read_as_none(wsgi, chain_path):
    service = chain_path(pyservice.Service(operations=["get"]))
    seen = {}

    @service.operation()
    def get(request, response, context):
        seen["missing"] = request.missing
        seen["present"] = request.present

    wsgi(service, "/api/v1/get", b'{"present": 0}')
    assert seen == {"missing": None, "present": 0}


def test_the_context_carries_the_call(wsgi, chain_path):
    service = chain_path(pyservice.Service(operations=["get"]))
    seen = {}

    @service.operation()
    def get(request, response, context):
        seen.update(
            operation=context.operation,
            service=context.service,
            header=context.headers["x-trace"],
            header_get=context.headers.get("X-Missing", "none"),
            remote=context.remote_addr,
            side=context.side,
        )

    wsgi(service, "/api/v1/get", headers={"X-Trace": "abc"})
    assert seen == {
        "operation": "get",
        "service": service,
        "header": "abc",
        "header_get": "none",
        "remote": "127.0.0.1",
        "side": "service",
    }


def test_the_endpoint_path_pattern_routes(wsgi):
    service = pyservice.Service(operations=["get"], version="2024-01", endpoint={"path": "/rpc/{operation}/{version}"})
    service.operation("get")(lambda request, response, context: None)
    assert wsgi(service, "/rpc/get/2024-01").status == 200
    assert wsgi(service, "/api/2024-01/get").status == 404


def test_registering_after_the_first_call_recomposes(wsgi):
    service = pyservice.Service(operations=["get"])
    assert wsgi(service, "/api/v1/get").status == 501
    service.operation("get")(lambda request, response, context: None)
    assert wsgi(service, "/api/v1/get").status == 200


def test_whatever_the_servers_stream_raises_is_a_400_not_an_internal_error(items_service, wsgi):
    class InvalidChunkSize(Exception):  # as gunicorn's, which is not an OSError
        pass

    class Broken(io.BytesIO):
        def read(self, *args):
            raise InvalidChunkSize("bad hex")

    answer = wsgi(
        items_service,
        "/api/v1/get_item",
        content_length=None,
        headers={"Transfer-Encoding": "chunked"},
        stream=Broken(),
    )
    assert answer.status == 400
    assert answer.error["name"] == "MalformedRequest"


def test_an_internal_error_is_logged_once_unless_a_hook_logged_it(wsgi, caplog):
    service = pyservice.Service(operations=["get", "quiet"])

    @service.operation()
    def get(request, response, context):
        raise RuntimeError("boom")

    @service.operation()
    def quiet(request, response, context):
        raise RuntimeError("boom")

    kinds = []

    @service.plugin(scope="request")
    def observer(context):
        try:
            context.process_request()
        except Exception as exc:
            kinds.append(service.describe_error(exc, context).kind)  # describing logs nothing
            if context.operation == "quiet":
                context.error_logged = True
            raise

    with caplog.at_level(logging.ERROR, logger="pyservice"):
        wsgi(service, "/api/v1/get")
        wsgi(service, "/api/v1/quiet")
    assert kinds == ["internal", "internal"]
    assert [record.getMessage() for record in caplog.records] == ["internal error in service.get"]


def test_a_lazy_context_attribute_is_computed_once_per_call_that_reads_it():
    opened = []

    def open_thing(context):
        opened.append(context.operation)
        return f"thing of {context.operation}"

    pyservice.ServiceContext.add_lazy_attribute("lazy_thing_for_test", open_thing, owner="test")
    try:
        service = pyservice.Service(operations=["reads", "ignores"])

        @service.operation()
        def reads(request, response, context):
            response.first = context.lazy_thing_for_test
            response.second = context.lazy_thing_for_test

        @service.operation()
        def ignores(request, response, context):
            response.ok = True

        client = pyservice.testing.client_for(service)
        assert client.reads() == {"first": "thing of reads", "second": "thing of reads"}
        assert client.ignores() == {"ok": True}
        assert opened == ["reads"]
    finally:
        delattr(pyservice.ServiceContext, "lazy_thing_for_test")


def test_a_lazy_context_attribute_cannot_take_a_name_already_used():
    with pytest.raises(ValueError, match=r"context\.caller is not free"):
        pyservice.ServiceContext.add_lazy_attribute("caller", lambda context: None, owner="test")
    pyservice.ServiceContext.add_lazy_attribute("lazy_taken_for_test", lambda context: 1, owner="first")
    try:
        with pytest.raises(ValueError, match="already defined by 'first'"):
            pyservice.ServiceContext.add_lazy_attribute("lazy_taken_for_test", lambda context: 2, owner="second")
        pyservice.ServiceContext.add_lazy_attribute("lazy_taken_for_test", lambda context: 3, owner="first")
    finally:
        delattr(pyservice.ServiceContext, "lazy_taken_for_test")
