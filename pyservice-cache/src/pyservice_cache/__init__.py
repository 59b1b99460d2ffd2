"""pyservice-cache: response caching for pyservice services and clients.

Enable it in the api description (``"plugins": {"cache": {...}}``) and give
each cached operation a scope (``"operations": {"get_item": {"plugins":
{"cache": {"scope": "public"}}}}``). See the README for every key.
"""

from __future__ import annotations

from ._backend import Backend, BackendUnavailable
from ._handle import CURRENT_CALLER, CallCache
from ._keys import KEY_FORMAT_VERSION
from ._memory import MemoryBackend
from ._plugin import Cache, cache_of
from ._redis import RedisBackend
from ._stats import CacheStats

__all__ = [
    "CURRENT_CALLER",
    "KEY_FORMAT_VERSION",
    "Backend",
    "BackendUnavailable",
    "Cache",
    "CacheStats",
    "CallCache",
    "MemoryBackend",
    "RedisBackend",
    "cache_of",
]


def __getattr__(name: str) -> str:
    # Read lazily so importing the plugin does not scan installed distributions.
    if name == "__version__":
        from importlib.metadata import version

        return version("pyservice-cache")
    raise AttributeError(f"module 'pyservice_cache' has no attribute {name!r}")
