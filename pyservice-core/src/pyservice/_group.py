"""Several services in one WSGI application: versions of one api, served side by side."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from ._errors import ApiError
from ._health import GetEndpoint, answer_get, live_endpoint, ready_endpoint
from ._openapi import DocumentEndpoint, merged_document
from ._service import Service, unknown_operation
from ._wire import JSON_HEADER, STATUS_LINES, error_body

if TYPE_CHECKING:
    from .typing import StartResponse, WSGIEnvironment

__all__ = ["ServiceGroup"]


class ServiceGroup:
    """Serve several services, typically the versions of one api, as one WSGI application.

    Each service keeps its own description, handlers and plugins; the group
    routes each request to the service whose path it is, and answers the
    protocol's 404 for any other path. A client is pinned to a version by
    its own api description::

        v1 = pyservice.Service(**api_v1)  # "version": "v1"
        v2 = pyservice.Service(**api_v2)  # "version": "v2"
        app = pyservice.ServiceGroup(v1, v2)

    Health endpoints that several services share a path for are answered
    once, with the readiness checks of all of them (each named
    ``"<version>.<check>"``).

    Args:
        *services: the services, at least one; they must listen on the same
            endpoint (scheme, host and port).

    Raises:
        ApiError: no service, endpoints that differ, or two services
            claiming one path.

    Attributes:
        services: the services, in the order given.
    """

    def __init__(self, *services: Service) -> None:
        if not services:
            raise ApiError("", "a ServiceGroup needs at least one Service")
        for service in services:
            if not isinstance(service, Service):
                raise ApiError("", f"a ServiceGroup groups Services, got {type(service).__name__}")
        first = services[0].api.endpoint
        for service in services[1:]:
            endpoint = service.api.endpoint
            if (endpoint.scheme, endpoint.host, endpoint.port) != (first.scheme, first.host, first.port):
                raise ApiError(
                    "endpoint",
                    f"{_name(service)} listens on {endpoint.base_url}, {_name(services[0])} on {first.base_url}: "
                    "the services of a group share one address",
                )
        self.services: tuple[Service, ...] = services
        self._routes: dict[str, Service] | None = None
        self._get_endpoints: dict[str, GetEndpoint] = {}
        self._check_paths()

    def _check_paths(self) -> None:
        # Paths depend on the descriptions only: a clash is found here, before any handler is registered.
        owners: dict[str, str] = {}
        for service in self.services:
            api = service.api
            for name in api.operations:
                path = api.endpoint.path_for(api.version, name)
                _claim(owners, path, f"{_name(service)} operation {name!r}")
        # A document or explorer path several services name is theirs together: the group serves the
        # merged document there (and one explorer over it).
        shared = _shared_paths(self.services)
        for path, owner in shared.items():
            _claim(owners, path, owner)
        for service in self.services:
            explorer = service.api.explorer
            if explorer is not None:
                prefix = explorer.rstrip("/") + "/"
                for path, owner in owners.items():
                    if path.startswith(prefix):
                        raise ApiError("explorer", f"the explorer's assets are served under {prefix!r}, as is {owner}")
        health_paths = {
            path
            for service in self.services
            if service.api.health is not None
            for path in (service.api.health.live, service.api.health.ready)
            if path is not None
        }
        for path in sorted(health_paths):
            if path in owners:
                raise ApiError("health", f"the health path {path!r} is also the path of {owners[path]}")

    def compile(self) -> dict[str, Service]:
        """Compile every service and the group's routing table; done once, before the first call.

        Returns:
            The service answering each operation path.
        """
        routes: dict[str, Service] = {}
        endpoints: dict[str, GetEndpoint] = {}
        live: set[str] = set()
        ready: dict[str, list[Service]] = {}
        documents: dict[str, list[Service]] = {}
        for service in self.services:
            for path in service.compile():
                routes[path] = service
            api = service.api
            if api.openapi is not None:
                endpoints.update(
                    (path, endpoint) for path, endpoint in service._get_endpoints.items() if path not in routes
                )
                documents.setdefault(api.openapi, []).append(service)
            # What plugins serve beside the operations (Service.add_get_endpoint); the first version's wins.
            for path, (_, endpoint) in service._added_get_endpoints.items():
                endpoints.setdefault(path, endpoint)
            if api.health is not None:
                if api.health.live is not None:
                    live.add(api.health.live)
                if api.health.ready is not None:
                    ready.setdefault(api.health.ready, []).append(service)
        for path, services in documents.items():
            if len(services) > 1:
                endpoints[path] = DocumentEndpoint(functools.partial(merged_document, services))
        for path in live:
            endpoints[path] = live_endpoint
        for path, services in ready.items():
            prefixed = len(services) > 1
            endpoints[path] = ready_endpoint(
                (f"{service.api.version}." if prefixed else "", service.readiness) for service in services
            )
        self._get_endpoints = endpoints
        self._routes = routes
        return routes

    def wsgi_application(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        """The WSGI application (PEP 3333) serving every service of the group."""
        routes = self._routes
        if routes is None:
            routes = self.compile()
        path = environ.get("PATH_INFO", "")
        service = routes.get(path)
        if service is not None:
            return service.wsgi_application(environ, start_response)
        endpoint = self._get_endpoints.get(path)
        if endpoint is not None:
            return answer_get(endpoint, environ, start_response)
        refusal = unknown_operation(environ, self.services)
        body = error_body("protocol", refusal.name, refusal.message)
        start_response(STATUS_LINES[404], [JSON_HEADER, ("Content-Length", str(len(body)))])
        return [body]

    __call__ = wsgi_application

    def describe_chain(self, operation: str | None = None, *, deadline: bool = False, verbose: bool = False) -> str:
        """The composed chain of each service's operations; see ``Service.describe_chain``."""
        return "".join(
            service.describe_chain(operation, deadline=deadline, verbose=verbose)
            for service in self.services
            if operation is None or operation in service.api.operations
        )

    def openapi(self, server_url: str | None = None) -> dict[str, Any]:
        """One OpenAPI 3.1 document for every service of the group.

        Their paths never clash. Operation ids are made unique across
        services (``v1_greet`` and ``v2_greet`` when both versions have
        ``greet``), and each operation is tagged with its version. Services
        that name the same ``openapi`` path are served this document
        there (only theirs, if some name another path or none).

        Args:
            server_url: the document's ``servers`` entry; defaults to the
                services' endpoint (the served document names the address
                each request was sent to).
        """
        return merged_document(self.services, server_url)

    def __repr__(self) -> str:
        return f"<ServiceGroup {', '.join(_name(service) for service in self.services)}>"


def _name(service: Service) -> str:
    return f"{service.api.name} {service.api.version}"


def _shared_paths(services: tuple[Service, ...]) -> dict[str, str]:
    # The openapi and explorer paths, each with who names it; an explorer shows one document.
    owners: dict[str, list[str]] = {}
    explorers: dict[str, tuple[str, str]] = {}
    for service in services:
        api = service.api
        if api.openapi is not None:
            owners.setdefault(api.openapi, []).append(_name(service))
        if api.explorer is not None and api.openapi is not None:
            first = explorers.setdefault(api.explorer, (api.openapi, _name(service)))
            if first[0] != api.openapi:
                raise ApiError(
                    "explorer",
                    f"{_name(service)} and {first[1]} share the explorer {api.explorer!r} "
                    f"but not the document it shows ({api.openapi!r}, {first[0]!r})",
                )
            owners.setdefault(api.explorer, []).append(_name(service))
    return {
        path: f"{' and '.join(names)} {'openapi' if path not in explorers else 'explorer'}"
        for path, names in owners.items()
    }


def _claim(owners: dict[str, str], path: str, owner: str) -> None:
    if path in owners:
        raise ApiError("", f"{owner} and {owners[path]} both claim the path {path!r}")
    owners[path] = owner
