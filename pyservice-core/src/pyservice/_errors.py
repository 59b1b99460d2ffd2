"""The exceptions pyservice itself raises, on both sides of the wire."""

from __future__ import annotations

from typing import Any


class PyserviceError(Exception):
    """Base class of every exception pyservice raises on its own account."""


class ApiError(PyserviceError, ValueError):
    """The api description is wrong.

    Raised when a Service or Client is built, never during a call. The message
    names the key (as a dotted path), what was expected and what came.

    Attributes:
        key: the dotted path of the offending key, for example
            ``"operations.get_item.plugins.cache.ttl"``.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"api[{key!r}]: {problem}" if key else problem)
        self.key = key
        self.problem = problem


class PluginError(PyserviceError):
    """A plugin broke the plugin contract during a call.

    For example by calling ``context.process_request()`` twice.
    """


class ServiceException(Exception):
    """Base class of the exception classes built on demand by name.

    ``service.exceptions.DoesNotExist`` and ``client.exceptions.DoesNotExist``
    are the same subclass of this class, so an exception whitelisted in the
    api description can be raised on the service and caught on the client.
    """


class ClientError(PyserviceError):
    """Base class of the errors a Client raises when a call did not complete.

    Whitelisted exceptions are not ClientErrors: they are raised as the
    classes in ``client.exceptions``.
    """

    def __init__(self, message: str, *, operation: str) -> None:
        super().__init__(message)
        self.operation = operation


class TransportError(ClientError):
    """The HTTP exchange failed: connection refused or reset, DNS, TLS...

    ``__cause__`` holds the underlying exception: an ``OSError`` (or an
    ``http.client`` error) from the Client's own transport, a ``requests``
    exception from a Client given ``session=``.
    """


class CallTimeout(TransportError):
    """The service did not answer within the call's connect or read timeout."""


class InvalidResponse(ClientError):
    """The service answered something that is not the pyservice protocol.

    A status or body that no pyservice service sends: a proxy's HTML error
    page, a body that is not a JSON object, an error without its shape.

    Attributes:
        status: the HTTP status of the answer.
    """

    def __init__(self, message: str, *, operation: str, status: int) -> None:
        super().__init__(message, operation=operation)
        self.status = status


class ServiceError(ClientError):
    """The service answered an error that is not a whitelisted exception.

    Attributes:
        status: the HTTP status of the answer.
        kind: ``"internal"`` for an error inside the service (HTTP 500),
            ``"protocol"`` for a request the service refused (404, 413...),
            ``"exception"`` for an exception the service whitelists but
            this client's api description does not.
        name: the error's name, for example ``"InternalError"`` or
            ``"UnknownOperation"``.
        detail: the error object of the answer, as sent.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status: int,
        kind: str,
        name: str,
        detail: dict[str, Any],
    ) -> None:
        super().__init__(message, operation=operation)
        self.status = status
        self.kind = kind
        self.name = name
        self.detail = detail


class InvalidRequest(ClientError):
    """The request's fields do not match the operation's declared ``input``.

    Raised before sending when the Client validates (``Client(validate=True)``),
    and when the service answers 400 ``InvalidRequest``.

    Attributes:
        errors: every field error, as ``{"path", "expected", "got"}`` dicts
            (``"address.city"``, ``"tags[2]"``).
        status: 400 when the service answered, None when the client refused
            to send.
        detail: the error object of the answer, or None.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        errors: list[dict[str, str]],
        status: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, operation=operation)
        self.errors = errors
        self.status = status
        self.detail = detail


class UndeclaredOperation(PyserviceError, AttributeError):
    """A Client was asked for an operation its api description does not declare.

    An ``AttributeError``, so ``hasattr(client, "name")`` and ``getattr``
    with a default behave as for any attribute; the message names the
    declared operations and the closest match.

    Attributes:
        operation: the name asked for.
        declared: the declared operations' names, sorted.
    """

    def __init__(self, message: str, *, operation: str, declared: list[str]) -> None:
        super().__init__(message)
        self.operation = operation
        self.declared = declared
