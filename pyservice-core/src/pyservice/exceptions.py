"""Exception classes built on demand by name, shared by every Service and Client.

``from pyservice.exceptions import DoesNotExist`` and
``service.exceptions.DoesNotExist`` give the same class: one per name for the
whole process, so identity is stable and ``except`` clauses work across a
Service and a Client in the same process. Names of Python's builtin
exceptions resolve to the builtins (``KeyError`` is ``builtins.KeyError``).

Only the names an api description whitelists cross the wire; any other
exception raised by a handler reaches the caller as an internal error.
"""

from __future__ import annotations

import builtins
import threading

from ._errors import ServiceException

__all__ = ["ExceptionNamespace", "ServiceException", "exception_class", "is_exception_name"]

_classes: dict[str, type[BaseException]] = {}
_lock = threading.Lock()


def is_exception_name(name: object) -> bool:
    """Tell whether ``name`` can name an exception class that crosses the wire."""
    return isinstance(name, str) and name.isidentifier() and not name.startswith("_")


def exception_class(name: str) -> type[BaseException]:
    """Return the exception class called ``name``, building it on first use.

    Args:
        name: a Python identifier that does not start with an underscore.

    Returns:
        The builtin exception of that name if there is one, else a subclass of
        ``ServiceException`` that is the same object on every call.

    Raises:
        AttributeError: ``name`` is not a valid exception name, or names a
            builtin that is not an exception.
    """
    found = _classes.get(name)
    if found is not None:
        return found
    if not is_exception_name(name):
        raise AttributeError(f"{name!r} is not a valid exception name")
    builtin = getattr(builtins, name, None)
    if builtin is not None:
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            return builtin
        raise AttributeError(f"{name!r} is a builtin that is not an exception")
    with _lock:
        found = _classes.get(name)
        if found is None:
            found = type(name, (ServiceException,), {"__module__": __name__, "__qualname__": name})
            _classes[name] = found
    return found


class ExceptionNamespace:
    """Attribute access to ``exception_class``: ``service.exceptions.DoesNotExist``."""

    __slots__ = ()

    def __getattr__(self, name: str) -> type[BaseException]:
        return exception_class(name)

    def __getitem__(self, name: str) -> type[BaseException]:
        try:
            return exception_class(name)
        except AttributeError as exc:
            raise KeyError(name) from exc

    def __repr__(self) -> str:
        return "<pyservice exceptions>"


def __getattr__(name: str) -> type[BaseException]:
    # PEP 562: ``from pyservice.exceptions import DoesNotExist`` builds the class,
    # and pickling a built class finds it again by module and name.
    if name.startswith("__"):
        raise AttributeError(name)
    return exception_class(name)
