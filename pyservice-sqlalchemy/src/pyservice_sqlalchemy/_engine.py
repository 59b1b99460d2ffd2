"""Where sessions come from: an engine built lazily in each process.

Pre-fork servers (gunicorn with ``preload_app``) import the service in the
master and fork the workers from it. A pool created before the fork would
hand the same socket to several processes, so the engine is built on first
use, in the process that uses it, and an engine that already exists at a
fork gets a fresh, empty pool in the child (``dispose(close=False)`` leaves
the parent's connections alone).
"""

from __future__ import annotations

import os
import queue
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["EngineSource"]

_sources: weakref.WeakSet[EngineSource] = weakref.WeakSet()


class EngineSource:
    """The engine and session factory of one plugin, per process.

    Args:
        url: the database to build an engine for; ``None`` with ``given``.
        engine_options: keyword arguments of ``create_engine``.
        given: an engine or sessionmaker the application built.
        prepare: called once with each engine and its session factory
            before the first session.
        capacity: the connections the engine's pool gives at most; calls
            bounded by a deadline take a token from :attr:`gate` (one per
            open session) rather than wait in the pool, whose wait cannot be
            cut short.
    """

    def __init__(
        self,
        *,
        url: URL | None,
        engine_options: Mapping[str, Any],
        given: Engine | sessionmaker[Session] | None,
        prepare: Callable[[Engine, sessionmaker[Session]], None],
        capacity: int | None = None,
    ) -> None:
        self._url = url
        self._engine_options = dict(engine_options)
        self._prepare = prepare
        self._capacity = capacity
        self.gate = None if capacity is None else _tokens(capacity)
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._factory: sessionmaker[Session] | None = None
        if isinstance(given, sessionmaker):
            bind = given.kw.get("bind")
            self._factory = given
            self._engine = bind if isinstance(bind, Engine) else None
        elif given is not None:
            self._engine = given
            self._factory = sessionmaker(bind=given, expire_on_commit=False)
        if self._engine is not None and self._factory is not None:
            prepare(self._engine, self._factory)
        _sources.add(self)

    @property
    def factory(self) -> sessionmaker[Session]:
        """The session factory, building the engine on first use in this process."""
        factory = self._factory
        if factory is None:
            factory = self._build()
        return factory

    @property
    def engine(self) -> Engine | None:
        """The engine sessions are bound to, built on first use; ``None`` for a sessionmaker without one."""
        if self._factory is None:
            self._build()
        return self._engine

    def _build(self) -> sessionmaker[Session]:
        with self._lock:
            if self._factory is None:
                assert self._url is not None  # given when nothing else is
                engine = create_engine(self._url, **self._engine_options)
                # Commit comes after the answer is encoded, so nothing reads
                # the objects afterwards: expiring them would be wasted work.
                factory = sessionmaker(bind=engine, expire_on_commit=False)
                self._prepare(engine, factory)
                self._engine = engine
                self._factory = factory
            return self._factory

    def dispose(self) -> None:
        """Close the pooled connections of an engine this source built."""
        if self._url is not None and self._engine is not None:
            self._engine.dispose()

    def _after_fork(self) -> None:
        # A lock held by another thread at the fork would stay held forever here.
        self._lock = threading.Lock()
        if self._capacity is not None:
            self.gate = _tokens(self._capacity)  # tokens taken by the parent's threads never come back here
        if self._engine is not None:
            self._engine.dispose(close=False)


def _tokens(count: int) -> queue.SimpleQueue[None]:
    # A queue of tokens, not a Semaphore: its get and put are C code, a
    # tenth of the Semaphore's Python-level acquire and release.
    tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
    for _ in range(count):
        tokens.put(None)
    return tokens


def _after_fork_in_child() -> None:
    for source in list(_sources):
        source._after_fork()


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere processes are spawned, not forked
    os.register_at_fork(after_in_child=_after_fork_in_child)
