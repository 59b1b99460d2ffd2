"""The OpenAPI 3.1 document of a Service, built from its api description."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._structures import INT_MAX, INT_MIN, Structure, TypeSpec

if TYPE_CHECKING:
    from ._service import Service

__all__ = ["ERROR_SCHEMA", "openapi_document", "structure_schema"]

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


def openapi_document(service: Service) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``service``; see :meth:`Service.openapi`."""
    api = service.api
    paths: dict[str, Any] = {
        api.endpoint.path_for(api.version, name): {"post": _operation(service, name)} for name in api.operations
    }
    paths.update(_health_paths(service))
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": api.name, "version": api.version},
        "servers": [{"url": api.endpoint.base_url}],
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA, "FieldError": FIELD_ERROR_SCHEMA}},
    }
