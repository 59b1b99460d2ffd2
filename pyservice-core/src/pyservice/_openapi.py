"""The OpenAPI 3.1 document of a Service (or a group of them), built from its api description."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._structures import INT_MAX, INT_MIN, Structure, TypeSpec
from ._wire import JSON_HEADER, STATUS_LINES, dumps

if TYPE_CHECKING:
    from ._service import Service
    from .typing import StartResponse, WSGIEnvironment

__all__ = [
    "ERROR_SCHEMA",
    "DocumentEndpoint",
    "merged_document",
    "openapi_document",
    "request_base_url",
    "structure_schema",
]

OPENAPI_VERSION = "3.1.0"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error answer, whatever its cause (see the wire protocol).",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["kind", "name", "message"],
            "properties": {
                "kind": {"enum": ["exception", "protocol", "internal"]},
                "name": {"type": "string", "description": "A stable name a program can switch on."},
                "message": {"type": "string", "description": "For a person; never parse it."},
                "args": {"type": "array", "description": "kind 'exception' only: the exception's arguments."},
                "traceback": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "kind 'internal' with the api's debug on only.",
                },
                "errors": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/FieldError"},
                    "description": "InvalidRequest only: every field error.",
                },
            },
        }
    },
}

FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["path", "expected", "got"],
    "properties": {
        "path": {"type": "string", "description": "The field: 'address.city', 'tags[2]'."},
        "expected": {"type": "string"},
        "got": {"type": "string"},
    },
}

# The protocol's refusals an operation may answer, whatever it declares.
_PROTOCOL_ERRORS: list[tuple[int, str]] = [
    (400, "MalformedJSON"),
    (400, "MalformedRequest"),
    (408, "RequestTimeout"),
    (411, "LengthRequired"),
    (413, "BodyTooLarge"),
    (415, "UnsupportedMediaType"),
    (504, "DeadlineExceeded"),
]

_SIMPLE: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "null": {"type": "null"},
}


def spec_schema(spec: TypeSpec) -> dict[str, Any]:
    """The JSON Schema (2020-12, as OpenAPI 3.1 has it) of one field's spec."""
    if spec.types == ("any",):
        schema: dict[str, Any] = {}
    else:
        alternatives = []
        for name in spec.types:
            if name in _SIMPLE:
                alternatives.append(dict(_SIMPLE[name]))
            elif name == "list":
                item: dict[str, Any] = {"type": "array"}
                if spec.items is not None and spec.items.types != ("any",):
                    item["items"] = spec_schema(spec.items)
                alternatives.append(item)
            elif name == "mapping":
                mapping: dict[str, Any] = {"type": "object"}
                if spec.values is not None and spec.values.types != ("any",):
                    mapping["additionalProperties"] = spec_schema(spec.values)
                alternatives.append(mapping)
            else:
                assert spec.fields is not None
                alternatives.append(fields_schema(spec.fields, reject_unknown=True))
        if len(alternatives) == 1:
            schema = alternatives[0]
        elif all(set(alternative) == {"type"} for alternative in alternatives):
            schema = {"type": [alternative["type"] for alternative in alternatives]}
        else:
            schema = {"anyOf": alternatives}
    if spec.doc:
        schema["description"] = spec.doc
    if spec.has_default:
        schema["default"] = spec.default
    return schema


def fields_schema(fields: Mapping[str, TypeSpec], *, reject_unknown: bool) -> dict[str, Any]:
    """The JSON Schema of an object with these fields."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {name: spec_schema(spec) for name, spec in fields.items()},
    }
    required = [name for name, spec in fields.items() if spec.required]
    if required:
        schema["required"] = required
    if reject_unknown:
        schema["additionalProperties"] = False
    return schema


def structure_schema(structure: Structure) -> dict[str, Any]:
    """The JSON Schema of a declared input or output."""
    return fields_schema(structure.fields, reject_unknown=structure.reject_unknown)


def _unpacked_schema(handler: Any) -> dict[str, Any] | None:
    # An unpacking handler without a declared input still says which fields it takes.
    unpack = getattr(handler, "_pyservice_unpack", None)
    if unpack is None:
        return None
    fields, open_ended = unpack
    schema: dict[str, Any] = {"type": "object", "properties": {name: {} for name in fields}}
    required = [name for name, is_required in fields.items() if is_required]
    if required:
        schema["required"] = required
    if not open_ended:
        schema["additionalProperties"] = False
    return schema


def _error_response(errors: list[tuple[str, str]]) -> dict[str, Any]:
    names = ", ".join(f"{name} ({kind})" for kind, name in errors)
    return {
        "description": names,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        "x-pyservice-errors": [{"kind": kind, "name": name} for kind, name in errors],
    }


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(service: Service, name: str) -> dict[str, Any]:
    api = service.api
    operation = api.operations[name]
    handler = service._handlers.get(name)
    if operation.input is not None:
        request_schema = structure_schema(operation.input)
    else:
        request_schema = _unpacked_schema(handler) or {"type": "object"}
    response_schema = {"type": "object"} if operation.output is None else structure_schema(operation.output)
    by_status: dict[int, list[tuple[str, str]]] = {}
    for status, error in _PROTOCOL_ERRORS:
        by_status.setdefault(status, []).append(("protocol", error))
    if operation.input is not None or getattr(handler, "_pyservice_unpack", None) is not None:
        by_status[400].append(("protocol", "InvalidRequest"))
    if handler is None:
        by_status.setdefault(501, []).append(("protocol", "NotImplemented"))
    for exception, status in {**api.exceptions, **operation.exceptions}.items():
        by_status.setdefault(status, []).append(("exception", exception))
    by_status.setdefault(500, []).append(("internal", "InternalError"))
    responses: dict[str, Any] = {"200": _json_response("The response's fields.", response_schema)}
    for status in sorted(by_status):
        responses[str(status)] = _error_response(by_status[status])
    document: dict[str, Any] = {"operationId": name}
    original = getattr(handler, "__wrapped__", handler)
    doc = getattr(original, "__doc__", None)
    if doc:
        summary, _, description = doc.strip().partition("\n")
        document["summary"] = summary.strip()
        if description.strip():
            document["description"] = description.strip()
    document["requestBody"] = {"required": True, "content": {"application/json": {"schema": request_schema}}}
    document["responses"] = responses
    if operation.idempotent:
        document["x-pyservice-idempotent"] = True
    return document


def _health_paths(service: Service) -> dict[str, Any]:
    health = service.api.health
    paths: dict[str, Any] = {}
    if health is None:
        return paths
    if health.live is not None:
        live = {"type": "object", "required": ["status"], "properties": {"status": {"const": "live"}}}
        paths[health.live] = {
            "get": {
                "operationId": "pyservice_health_live",
                "summary": "Liveness: the process answers.",
                "tags": ["health"],
                "responses": {"200": _json_response("Live.", live)},
            }
        }
    if health.ready is not None:
        ready = {
            "type": "object",
            "required": ["status", "checks"],
            "properties": {
                "status": {"enum": ["ready", "not ready"]},
                "checks": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
        paths[health.ready] = {
            "get": {
                "operationId": "pyservice_health_ready",
                "summary": "Readiness: every check passes ('ready'), or the reasons they do not.",
                "tags": ["health"],
                "responses": {
                    "200": _json_response("Ready.", ready),
                    "503": _json_response("Not ready: the failing checks' reasons.", ready),
                },
            }
        }
    return paths


def openapi_document(service: Service, server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``service``; see ``Service.openapi``."""
    api = service.api
    paths: dict[str, Any] = {
        api.endpoint.path_for(api.version, name): {"post": _operation(service, name)} for name in api.operations
    }
    paths.update(_health_paths(service))
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": api.name, "version": api.version},
        "servers": [{"url": api.endpoint.base_url if server_url is None else server_url}],
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA, "FieldError": FIELD_ERROR_SCHEMA}},
    }


def merged_document(services: Sequence[Service], server_url: str | None = None) -> dict[str, Any]:
    """One OpenAPI 3.1 document for several services; see ``ServiceGroup.openapi``.

    Their paths never clash (the group refuses it), but their operation
    names may: two versions both have ``greet``. OpenAPI wants each
    ``operationId`` unique, as code generators name their methods after it,
    so when any two clash every operation's id is prefixed with its
    version (``v1_greet``, ``v2_greet``), or with its api's name and
    version when that is not enough. Each operation is tagged with its
    service's version (name and version when the group serves several
    apis), which is how explorers group them.
    """
    documents = [service.openapi(server_url) for service in services]
    names = sorted({service.api.name for service in services})
    several_apis = len(names) > 1
    merged: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": ", ".join(names), "version": ", ".join(service.api.version for service in services)},
        "servers": documents[0]["servers"],
        "paths": {},
        "components": {"schemas": {}},
    }
    tags = []
    for service, document in zip(services, documents, strict=True):
        api = service.api
        tag = f"{api.name} {api.version}" if several_apis else api.version
        if len(services) > 1:
            tags.append({"name": tag, "description": f"{api.name}, version {api.version}"})
        for path, item in document["paths"].items():
            for operation in item.values():
                if len(services) > 1 and "health" not in operation.get("tags", ()):
                    operation["tags"] = [tag]
                operation["x-pyservice-service"] = {"name": api.name, "version": api.version}
            # Health paths shared by several services are one endpoint: the first document's entry stands.
            merged["paths"].setdefault(path, item)
        merged["components"]["schemas"].update(document["components"]["schemas"])
    if tags:
        merged["tags"] = tags
    _unique_operation_ids(merged["paths"])
    return merged


def _operations(paths: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(path, operation) for path, item in paths.items() for operation in item.values()]


def _clashes(ids: Sequence[str]) -> bool:
    return len(set(ids)) != len(ids)


def _identifier(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def _unique_operation_ids(paths: Mapping[str, Any]) -> None:
    operations = _operations(paths)
    if not _clashes([operation["operationId"] for _, operation in operations]):
        return
    # The rules, tried in turn until every id is unique: the version, the api's name and version, the path.
    rules: list[Callable[[str, dict[str, Any]], str]] = [
        lambda path, op: f"{_identifier(op['x-pyservice-service']['version'])}_{op['operationId']}",
        lambda path, op: _identifier(
            f"{op['x-pyservice-service']['name']}_{op['x-pyservice-service']['version']}_{op['operationId']}"
        ),
        lambda path, op: _identifier(path.strip("/")),
    ]
    for rule in rules:
        ids = [rule(path, operation) for path, operation in operations]
        if not _clashes(ids):
            break
    seen: set[str] = set()
    for (_, operation), new in zip(operations, ids, strict=True):
        # Two paths that differ only in punctuation: a number keeps them apart.
        candidate, n = new, 2
        while candidate in seen:
            candidate, n = f"{new}_{n}", n + 1
        seen.add(candidate)
        operation["operationId"] = candidate


# A Host header the document may name: a name or an address, and a port. Anything else is not echoed.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")


def request_base_url(environ: WSGIEnvironment) -> str:
    """``scheme://host:port`` the request was sent to, from its ``Host`` header (PEP 3333).

    That is where the service actually listens as its caller sees it,
    whatever ``--host`` or ``--port`` it was served with, or whichever proxy
    forwarded it. Without a well-formed ``Host`` header: ``"/"``, which
    OpenAPI reads as the document's own server.
    """
    host = environ.get("HTTP_HOST", "")
    if not host or not _HOST.match(host):
        return "/"
    scheme = environ.get("wsgi.url_scheme", "http")
    return f"{'https' if scheme == 'https' else 'http'}://{host}"


class DocumentEndpoint:
    """The GET endpoint of an OpenAPI document, its ``servers`` where each request was sent.

    The encoded document is kept for each base URL asked for, a few at a
    time: the ``Host`` header is the caller's to choose, so the memory it
    takes is bounded.

    Args:
        build: ``build(server_url) -> document``.
    """

    __slots__ = ("_bodies", "_build")

    #: The encoded documents kept (one per host name a caller used).
    max_kept = 8

    def __init__(self, build: Callable[[str], dict[str, Any]]) -> None:
        self._build = build
        self._bodies: dict[str, bytes] = {}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        """Answer the document (``HEAD``: its headers only)."""
        url = request_base_url(environ)
        body = self._bodies.get(url)
        if body is None:
            if len(self._bodies) >= self.max_kept:
                self._bodies.clear()
            body = self._bodies[url] = dumps(self._build(url))
        start_response(STATUS_LINES[200], [JSON_HEADER, ("Content-Length", str(len(body)))])
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
