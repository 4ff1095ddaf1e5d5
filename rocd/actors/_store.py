"""The store actor: the one owner of the state file, off the Trio thread.

Every query runs in a worker thread (`trio.to_thread.run_sync`), one at a time because
the actor handles one message at a time. A query is not abandoned on cancellation: the
caller waits for it to finish, so a write is never half-done from our side.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

from ._actor import Actor, Request
from ._statedb import StateDB

T = TypeVar("T")


class GetIdentity(Request[str], frozen=True):
    """The instance uid (created on first start, then stable)."""


class GetSetting(Request[Any], frozen=True):
    namespace: str
    key: str


class PutSetting(Request[None], frozen=True):
    namespace: str
    key: str
    value: Any


class DeleteSetting(Request[bool], frozen=True):
    namespace: str
    key: str


class ListSettings(Request[dict[str, Any]], frozen=True):
    namespace: str


class StoreQuery(Request[T], frozen=True):
    """A request that brings its own query (`apply`, run in the store's worker thread),
    for tables other than the settings: each kind of state keeps its SQL beside its
    types, and the store stays one owner of the file."""

    def apply(self, db: StateDB) -> T:
        raise NotImplementedError


class Store(Actor):
    kind = "store"

    def __init__(self, path: Path) -> None:
        super().__init__("state")
        self.path = path
        self._db: StateDB | None = None

    async def on_start(self) -> None:
        self._db = await trio.to_thread.run_sync(StateDB, self.path)

    async def on_stop(self) -> None:
        if self._db is not None:
            await trio.to_thread.run_sync(self._db.close)
            self._db = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args)

    async def handle(self, msg: Any) -> Any:
        db = self._db
        assert db is not None  # on_start ran
        match msg:
            case GetIdentity():
                return await self._run(db.identity)
            case GetSetting(namespace=ns, key=key):
                return await self._run(db.get, ns, key)
            case PutSetting(namespace=ns, key=key, value=value):
                return await self._run(db.put, ns, key, value)
            case DeleteSetting(namespace=ns, key=key):
                return await self._run(db.delete, ns, key)
            case ListSettings(namespace=ns):
                return await self._run(db.items, ns)
            case StoreQuery():
                return await self._run(msg.apply, db)
        return await super().handle(msg)
