"""The applications under test, each doing the same small operation.

The operation: decode a JSON object, build a result from three of its
fields (and echo ``data`` when the request carries it, for the payload
sweep), encode the result. Every implementation answers the same bytes
for the same request; ``check_answer`` verifies it before anything is
timed, so no case can win by doing less.

The module-level ``bare_app``, ``service``, ``falcon_app`` and
``flask_app`` are what the HTTP section serves (``suite.apps:service``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson
import pyservice

PATH = "/api/v1/echo"
JSON = "application/json"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def expected_result(request: dict[str, Any]) -> dict[str, Any]:
    """The answer every implementation must give to ``request``."""
    result = {
        "id": request["id"],
        "total": request["qty"] * request["price"],
        "label": f"{request['name']} x{request['qty']}",
    }
    if "data" in request:
        result["data"] = request["data"]
    return result


# -- the limit: a bare WSGI function -----------------------------------------------


def bare_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Only the work itself: route check, read body, decode, build, encode, start_response."""
    if environ["PATH_INFO"] != PATH or environ["REQUEST_METHOD"] != "POST":
        start_response("404 Not Found", [("Content-Type", JSON), ("Content-Length", "2")])
        return [b"{}"]
    request = orjson.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
    result = {
        "id": request["id"],
        "total": request["qty"] * request["price"],
        "label": f"{request['name']} x{request['qty']}",
    }
    if "data" in request:
        result["data"] = request["data"]
    body = orjson.dumps(result)
    start_response("200 OK", [("Content-Type", JSON), ("Content-Length", str(len(body)))])
    return [body]


class BareService(pyservice.Service):
    """A Service that answers every call with :func:`bare_app`, and nothing else.

    ``pyservice serve`` serves only Services; this one lets it serve the bare
    function, so the limit is measured under exactly the server and settings
    ``pyservice serve`` runs by default, whatever they are. Both ways a server
    can call it (``service.wsgi_application``, or the object itself) are the
    bare function: no Python frame is added.
    """

    wsgi_application = staticmethod(bare_app)  # type: ignore[assignment]
    __call__ = staticmethod(bare_app)  # type: ignore[assignment]


# -- pyservice ---------------------------------------------------------------------


def echo(request: Any, response: Any, context: Any) -> None:
    """The operation as a pyservice handler, testing the optional field as the bare function does."""
    response.id = request.id
    response.total = request.qty * request.price
    response.label = f"{request.name} x{request.qty}"
    if "data" in request:
        response.data = request.data


def echo_reading_missing(request: Any, response: Any, context: Any) -> None:
    """The same, testing the optional field the attribute way: ``request.data`` reads None when absent."""
    response.id = request.id
    response.total = request.qty * request.price
    response.label = f"{request.name} x{request.qty}"
    if request.data is not None:
        response.data = request.data


def pass_request(context: Any) -> None:
    """A request-scope hook that only continues the call."""
    context.process_request()


def pass_operation(request: Any, response: Any, context: Any) -> None:
    """An operation-scope hook that only continues the call."""
    context.process_request()


def build_service(
    *,
    request_hooks: int = 0,
    operation_hooks: int = 0,
    extra_operations: int = 0,
    plugins: dict[str, Any] | None = None,
    echo_options: dict[str, Any] | None = None,
    handler: Callable[..., None] = echo,
    **api: Any,
) -> pyservice.Service:
    """A Service answering ``echo``, with pass-through hooks and plugins as asked.

    Args:
        request_hooks: pass-through hooks registered with ``service.plugin(scope="request")``.
        operation_hooks: pass-through hooks registered with ``service.plugin(scope="operation")``.
        extra_operations: more operations declared (with handlers) next to ``echo``.
        plugins: the api's ``plugins`` (real plugin packages, by name).
        echo_options: the ``echo`` operation's options (per-operation plugin config).
        handler: the ``echo`` handler.
        **api: more keys of the api description.
    """
    operations: dict[str, Any] = {f"op{i}": {} for i in range(extra_operations)}
    operations["echo"] = echo_options or {}
    service = pyservice.Service(name="bench", operations=operations, plugins=plugins or {}, **api)
    for index in range(request_hooks):
        service.plugin(scope="request", name=f"request_hook_{index}")(pass_request)
    for index in range(operation_hooks):
        service.plugin(scope="operation", name=f"operation_hook_{index}")(pass_operation)
    service.operation("echo")(handler)
    for index in range(extra_operations):
        service.operation(f"op{index}")(echo)
    service.compile()
    return service


service = build_service()


# -- peers ---------------------------------------------------------------------------


def build_falcon() -> WSGIApp:
    """The operation as a Falcon resource."""
    import falcon

    class Echo:
        def on_post(self, req: Any, resp: Any) -> None:
            request = orjson.loads(req.bounded_stream.read())
            result = {
                "id": request["id"],
                "total": request["qty"] * request["price"],
                "label": f"{request['name']} x{request['qty']}",
            }
            if "data" in request:
                result["data"] = request["data"]
            resp.data = orjson.dumps(result)
            resp.content_type = JSON

    app = falcon.App()
    app.add_route(PATH, Echo())
    return app  # type: ignore[no-any-return]


def build_flask() -> WSGIApp:
    """The operation as a Flask view."""
    import flask

    app = flask.Flask("bench")

    @app.post(PATH)
    def echo_view() -> Any:
        request = orjson.loads(flask.request.get_data())
        result = {
            "id": request["id"],
            "total": request["qty"] * request["price"],
            "label": f"{request['name']} x{request['qty']}",
        }
        if "data" in request:
            result["data"] = request["data"]
        return flask.Response(orjson.dumps(result), mimetype=JSON)

    return app  # type: ignore[no-any-return]


def __getattr__(name: str) -> Any:
    # Built on first use, so that importing the module for the bare app does
    # not import Falcon and Flask into the server's workers.
    if name == "falcon_app":
        return build_falcon()
    if name == "flask_app":
        return build_flask()
    if name == "bare_service":
        return BareService(name="bench", operations={"echo": {}})
    raise AttributeError(name)
