"""The OpenTelemetry semantic-convention names the plugin writes, in one table.

RPC spans and metrics follow the RPC conventions (semantic conventions 1.37
and later: ``rpc.system.name``, a fully qualified ``rpc.method``,
``rpc.response.status_code``); ``rpc.system`` and ``rpc.service``, which
earlier versions named, are written too, for backends that still read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ANNOTATION_PREFIX",
    "ERROR_TYPE",
    "HTTP_RESEND_COUNT",
    "HTTP_STATUS_CODE",
    "RPC_METHOD",
    "RPC_SERVICE",
    "RPC_STATUS_CODE",
    "RPC_SYSTEM",
    "RPC_SYSTEM_NAME",
    "SYSTEM",
    "annotation_attributes",
    "call_attributes",
]

SYSTEM = "pyservice"
RPC_SYSTEM_NAME = "rpc.system.name"
RPC_SYSTEM = "rpc.system"
RPC_SERVICE = "rpc.service"
RPC_METHOD = "rpc.method"
RPC_STATUS_CODE = "rpc.response.status_code"
ERROR_TYPE = "error.type"
HTTP_STATUS_CODE = "http.response.status_code"
HTTP_RESEND_COUNT = "http.request.resend_count"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
CLIENT_ADDRESS = "client.address"
PEER_ADDRESS = "network.peer.address"
PEER_PORT = "network.peer.port"
PROTOCOL_NAME = "network.protocol.name"
PROTOCOL_VERSION = "network.protocol.version"
TRANSPORT = "network.transport"
REQUEST_SIZE = "rpc.request.size"
RESPONSE_SIZE = "rpc.response.size"
#: Annotations plugins leave on the context become span attributes under this prefix.
ANNOTATION_PREFIX = "pyservice."


def call_attributes(service: str, operation: str) -> dict[str, Any]:
    """The attributes every span and measurement of one operation carries."""
    return {
        RPC_SYSTEM_NAME: SYSTEM,
        RPC_SYSTEM: SYSTEM,
        RPC_SERVICE: service,
        RPC_METHOD: f"{service}/{operation}",
    }


_SCALARS = (str, bool, int, float)


def annotation_attributes(annotations: Mapping[str, Any]) -> dict[str, Any]:
    """Span attributes for the annotations plugins left: ``pyservice.<name>``.

    Strings, booleans, integers and floats are kept, and lists or tuples of
    one of them; anything else (a mapping, ``None``) is left out, as span
    attributes cannot carry it.
    """
    attributes: dict[str, Any] = {}
    for name, value in annotations.items():
        if isinstance(value, _SCALARS):
            attributes[ANNOTATION_PREFIX + name] = value
        elif (
            isinstance(value, (list, tuple))
            and value
            and isinstance(value[0], _SCALARS)
            and all(type(item) is type(value[0]) for item in value)
        ):
            attributes[ANNOTATION_PREFIX + name] = list(value)
    return attributes
