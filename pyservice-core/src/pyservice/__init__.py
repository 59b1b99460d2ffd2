"""pyservice: one api description, a fast WSGI Service and a requests Client.

The public API lives here; the modules behind it are private.
"""

from __future__ import annotations

from ._api import Api, Endpoint, Operation, Timeout, load_api
from ._caller import Caller
from ._chain import Context
from ._client import Client, ClientContext
from ._container import Container
from ._deadline import time_left
from ._errors import (
    ApiError,
    CallTimeout,
    ClientError,
    InvalidRequest,
    InvalidResponse,
    PluginError,
    PyserviceError,
    ServiceError,
    ServiceException,
    TransportError,
    UndeclaredOperation,
)
from ._group import ServiceGroup
from ._options import REQUIRED, Option
from ._plugin import ENTRY_POINT_GROUP, InstalledPlugin, Placement, Plugin, installed_plugins
from ._retry import CircuitBreaker, CircuitOpen, RetryBudget
from ._server import worker_processes
from ._service import ErrorAnswer, Service, ServiceContext
from ._transport import ClientResponse
from ._wire import RequestRefused

__all__ = [
    "ENTRY_POINT_GROUP",
    "REQUIRED",
    "Api",
    "ApiError",
    "CallTimeout",
    "Caller",
    "CircuitBreaker",
    "CircuitOpen",
    "Client",
    "ClientContext",
    "ClientError",
    "ClientResponse",
    "Container",
    "Context",
    "Endpoint",
    "ErrorAnswer",
    "InstalledPlugin",
    "InvalidRequest",
    "InvalidResponse",
    "Operation",
    "Option",
    "Placement",
    "Plugin",
    "PluginError",
    "PyserviceError",
    "RequestRefused",
    "RetryBudget",
    "Service",
    "ServiceContext",
    "ServiceError",
    "ServiceException",
    "ServiceGroup",
    "Timeout",
    "TransportError",
    "UndeclaredOperation",
    "installed_plugins",
    "load_api",
    "time_left",
    "worker_processes",
]


def __getattr__(name: str) -> str:
    # Read lazily so importing pyservice does not scan installed distributions.
    if name == "__version__":
        from importlib.metadata import version

        return version("pyservice-core")
    raise AttributeError(f"module 'pyservice' has no attribute {name!r}")
