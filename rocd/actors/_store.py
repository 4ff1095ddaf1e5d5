"""The store actor: the one owner of the state file, off the Trio thread.

Every query runs in a worker thread (`trio.to_thread.run_sync`), one at a time because
the actor handles one message at a time. A query is not abandoned on cancellation: the
caller waits for it to finish, so a write is never half-done from our side.

A full disk or a read-only state file is the environment, not a bug: the query is refused
with `StorageFailed` (503 over HTTP, a clean sentence, nothing saved), the actor stays up
(no restart, so restart intensity is left to bugs), publishes `store.error` and reports
itself degraded (`GetStoreStatus`, shown by /health). While degraded it tries a small real
write every `probe_interval` seconds; the first write that works, probe or request,
publishes `store.recovered`.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import msgspec
import trio

from rocd.errors import RocdError, StorageFailed

from ._actor import Actor, Request
from ._statedb import StateDB, StateError, storage_problem
from ._supervisor import Publish

log = logging.getLogger("rocd.store")

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

    #: False for a query that only reads: its failure does not mark the store degraded.
    writes: ClassVar[bool] = True

    def apply(self, db: StateDB) -> T:
        raise NotImplementedError


class StoreStatus(msgspec.Struct, frozen=True):
    """Whether the state file takes writes; `error` says why not."""

    ok: bool
    error: str = ""


class GetStoreStatus(Request[StoreStatus], frozen=True):
    pass


class _Probe(msgspec.Struct, frozen=True):
    """Internal: try a write now (told by the probe task while degraded)."""


class Store(Actor):
    kind = "store"

    def __init__(
        self, path: Path, *, publish: Publish | None = None, probe_interval: float = 2.0
    ) -> None:
        super().__init__("state")
        self.path = path
        self._db: StateDB | None = None
        self._publish = publish
        self.probe_interval = probe_interval  # seconds between write attempts while degraded
        self.error = ""  # why the last write failed; "" while writes work

    async def on_start(self) -> None:
        self._db = await trio.to_thread.run_sync(StateDB, self.path)
        # Known at once, not at the first change: a disk that takes no writes.
        with contextlib.suppress(StorageFailed):
            await self._run(self._db.probe)
        self.nursery.start_soon(self._probe_while_degraded)

    async def on_stop(self) -> None:
        if self._db is not None:
            await trio.to_thread.run_sync(self._db.close)
            self._db = None

    def status(self) -> StoreStatus:
        return StoreStatus(ok=not self.error, error=self.error)

    async def _run(self, fn: Callable[..., T], *args: Any, write: bool = True) -> T:
        try:
            result = await trio.to_thread.run_sync(fn, *args)
        except sqlite3.Error as exc:
            problem = storage_problem(exc)
            if write:
                self._degraded(problem)
            raise StorageFailed(
                f"state not {'saved' if write else 'read'}: {problem}",
                details=[{"in": "state", "message": problem}],
            ) from None
        if write:
            self._recovered()
        return result

    def _degraded(self, problem: str) -> None:
        if problem != self.error:
            log.error("state file %s: %s; requests that change state get 503", self.path, problem)
            self.error = problem
            self._emit("store.error", {"error": problem, "file": str(self.path)})

    def _recovered(self) -> None:
        if self.error:
            log.warning("state file %s takes writes again", self.path)
            self.error = ""
            self._emit("store.recovered", {"file": str(self.path)})

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        if self._publish is not None:
            self._publish(kind, self.uid, data)

    async def _probe_while_degraded(self) -> None:
        while True:
            await trio.sleep(self.probe_interval)
            if self.error:
                # Busy: requests are queued, and they will tell.
                with contextlib.suppress(RocdError):
                    self.ref.tell_nowait(_Probe())

    async def _writable(self, db: StateDB) -> StateDB:
        """`db`, or the state file opened anew when `db` could only be opened for reading
        and the file can now be written (a filesystem remounted read-write)."""
        if not db.read_only:
            return db
        try:
            fresh = await trio.to_thread.run_sync(StateDB, self.path)
        except StateError:
            return db
        if fresh.read_only:
            await trio.to_thread.run_sync(fresh.close)
            return db
        await trio.to_thread.run_sync(db.close)
        self._db = fresh
        return fresh

    async def handle(self, msg: Any) -> Any:
        db = self._db
        assert db is not None  # on_start ran
        match msg:
            case GetIdentity():
                return await self._run(db.identity, write=False)
            case GetSetting(namespace=ns, key=key):
                return await self._run(db.get, ns, key, write=False)
            case PutSetting(namespace=ns, key=key, value=value):
                return await self._run(db.put, ns, key, value)
            case DeleteSetting(namespace=ns, key=key):
                return await self._run(db.delete, ns, key)
            case ListSettings(namespace=ns):
                return await self._run(db.items, ns, write=False)
            case StoreQuery():
                return await self._run(msg.apply, db, write=msg.writes)
            case GetStoreStatus():
                return self.status()
            case _Probe():
                if self.error:
                    with contextlib.suppress(StorageFailed):
                        await self._run((await self._writable(db)).probe)
                return None
        return await super().handle(msg)
