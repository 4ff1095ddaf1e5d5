"""The stream host: every stream end this instance holds, and the requests that reach them.

It answers the end requests of `_stream_types` (prepare, commit, abort, list, metrics,
update), from the local coordinator or, through the cluster, from another instance's. It
owns the audio plane (the daemon's one `Ticker`, the device buses) and supervises one
`EndActor` per end. Tree:

    streams <instance uid>
    ├── ticker      the daemon's one timer for unclocked devices
    ├── buses       one task per device in use (`AudioPlane`)
    └── ends        supervisor of the end actors (kind "stream_end")

At start it brings back the committed ends from the store and removes those whose other
half should be here but is not (a kill between the two commits of a local stream). Ends
whose other half is on another instance are checked there whenever that instance comes
(back) online, at once (reconciliation at reconnect), and every `RECONCILE_S` seconds,
and removed when that instance answers that it has no such end; an instance that cannot
be reached leaves the end as it is (degraded with the reason, not deleted). A prepared
end whose coordinator went offline is removed at once (no commit can come). Every second
it publishes one `stream.metrics` event per stream it holds an end of.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import trio

from rocd._exception_groups import root_cause
from rocd.errors import NotFound, RocdError
from rocd.net.roc import Interface

from ._actor import Actor, ActorRef
from ._peer_handle import Peers
from ._registry import Registry
from ._store import DeleteSetting, ListSettings
from ._stream_end import Commit, EndActor, EndRecord, GetEndInfo, GetMetrics, Patch
from ._stream_faults import Faults
from ._stream_media import HUB_KIND, GetMediaPath, media_path, offline_reason, peer_started
from ._stream_plane import AudioPlane
from ._stream_settings import check_external, resolve
from ._stream_types import (
    AbortEnd,
    CommitEnd,
    EndInfo,
    GetEndMetrics,
    ListEnds,
    PrepareReceiver,
    PrepareSender,
    ReceiverPrepared,
    Role,
    SenderPrepared,
    StreamSpec,
    UpdateEnd,
    end_uid,
)
from ._supervisor import Publish, Restart, Supervisor

log = logging.getLogger("rocd.streams")

#: Seconds between two checks that the other half of each end still exists.
RECONCILE_S = 5.0
#: Seconds between two looks at whether the instances holding other halves are online.
WATCH_S = 0.25
#: Seconds between two `stream.metrics` events of a stream.
METRICS_S = 1.0


class Expired(msgspec.Struct, frozen=True):
    """Told by an end: it was prepared and never committed."""

    stream: str
    role: str


class StreamHost(Actor):
    kind = "streams"
    mailbox_capacity = 256

    def __init__(
        self,
        uid: str,
        *,
        store: ActorRef,
        publish: Publish,
        registry: Registry,
        peers: Peers,
        faults: Faults | None = None,
    ) -> None:
        super().__init__(uid)
        self._store = store
        self._publish = publish
        self._registry = registry
        self._peers = peers
        self.faults = faults or Faults()
        self.ends = Supervisor("ends", registry=registry, publish=publish)
        self.plane: AudioPlane | None = None

    def supervisors(self) -> list[Supervisor]:
        return [self.ends]

    async def on_start(self) -> None:
        from rocd.net.roc import Ticker

        ticker = await self.nursery.start(Ticker().run)
        self.plane = AudioPlane(self.nursery, ticker)
        self.ends = Supervisor("ends", registry=self._registry, publish=self._publish)
        await self.nursery.start(self.ends.run)
        await self._restore()
        self.nursery.start_soon(self._reconcile_loop)
        self.nursery.start_soon(self._watch_peers)
        self.nursery.start_soon(self._metrics_loop)

    async def on_stop(self) -> None:
        self.ends.close("stream host stopped")

    # -- ends ---------------------------------------------------------------------------

    def _actor(self, record: EndRecord, ttl_s: float = 10.0) -> EndActor:
        assert self.plane is not None
        actor = EndActor(
            record,
            peer=self.uid,
            plane=self.plane,
            registry=self._registry,
            store=self._store,
            publish=self._publish,
            expire=self._expired,
            peers=self._peers,
            ttl_s=ttl_s,
        )
        actor.origin_started = peer_started(self._peers, record.stream.origin)
        return actor

    def _expired(self, stream: str, role: str) -> None:
        try:
            self.ref.tell_nowait(Expired(stream, role))
        except RocdError:
            log.warning("stream %s: could not report the expiry of its %s", stream, role)

    def _end(self, stream: str, role: str) -> ActorRef:
        ref = self._registry.find(EndActor.kind, end_uid(stream, role))
        if ref is None:
            raise NotFound(f"no {role} of stream {stream!r} on this instance")
        return ref

    def _end_actors(self) -> list[EndActor]:
        return [c for c in self.ends.children() if isinstance(c, EndActor)]

    async def _restore(self) -> None:
        stored = await self._store.ask(ListSettings("stream_end"))
        records: dict[str, EndRecord] = {}
        for key, raw in stored.items():
            try:
                records[key] = msgspec.convert(raw, EndRecord)
            except msgspec.ValidationError as exc:
                log.warning("stream end %s: stored record ignored (%s)", key, exc)
        for key, record in records.items():
            other = _other_half(record, self.uid)
            if other is not None and end_uid(record.stream.uid, other) not in records:
                # Both halves live here, one is missing: a setup cut between the commits.
                log.warning("stream %s: its %s is missing; removed", record.stream.uid, other)
                await self._store.ask(DeleteSetting("stream_end", key))
                continue
            try:
                await self.ends.start_child(self._actor(record), Restart.ON_FAILURE)
            except RocdError as exc:
                log.warning("stream end %s not restored: %s", key, exc)

    async def _remove(self, stream: str, role: str, reason: str) -> bool:
        uid = end_uid(stream, role)
        found = False
        try:
            await self.ends.stop_child(EndActor.kind, uid, reason=reason)
            found = True
        except NotFound:
            pass
        found = await self._store.ask(DeleteSetting("stream_end", uid)) or found
        if found:
            self._publish(
                "stream.state",
                stream,
                {"stream": stream, "role": role, "state": "stopped", "reason": reason},
            )
        return found

    # -- messages -----------------------------------------------------------------------

    async def handle(self, msg: Any) -> Any:
        match msg:
            case PrepareReceiver():
                await self.faults.at("prepare_receiver.before")
                actor = await self._prepare(msg.stream, "receiver", msg.bind_host, msg.ttl_s)
                await self.faults.at("prepare_receiver.after")
                assert actor.record.endpoints is not None
                return ReceiverPrepared(actor.record.endpoints, actor.observed_endpoints())
            case PrepareSender():
                await self.faults.at("prepare_sender.before")
                record = EndRecord(
                    stream=_resolved(msg.stream), role="sender", endpoints=msg.targets
                )
                actor = await self._start(record, msg.ttl_s)
                await self.faults.at("prepare_sender.after")
                send = actor._send
                port = send.udp.local[1] if send is not None and send.udp is not None else 0
                return SenderPrepared(port, actor.observed.get(Interface.CONTROL, ""))
            case CommitEnd(stream=stream, role=role, punch=punch):
                await self.faults.at(f"commit_{role}.before")
                info = await self._end(stream, role).ask(Commit(punch))
                await self.faults.at(f"commit_{role}.after")
                return info
            case GetMediaPath(peer=peer):
                hub_here = self._registry.find(HUB_KIND, self.uid) is not None
                return media_path(self._peers, peer, hub_here=hub_here)
            case AbortEnd(stream=stream, role=role, reason=reason):
                return await self._remove(stream, role, reason)
            case ListEnds(stream=stream):
                return await self._list(stream)
            case GetEndMetrics(stream=stream, role=role):
                return await self._end(stream, role).ask(GetMetrics())
            case UpdateEnd(stream=stream, role=role, patch=patch):
                return await self._end(stream, role).ask(Patch(patch))
            case Expired(stream=stream, role=role):
                if await self._remove(stream, role, "not committed in time"):
                    log.info("stream %s: the prepared %s expired", stream, role)
                return None
        return await super().handle(msg)

    async def _prepare(
        self, stream: StreamSpec, role: Role, bind_host: str, ttl_s: float
    ) -> EndActor:
        record = EndRecord(stream=_resolved(stream), role=role, bind_host=bind_host)
        return await self._start(record, ttl_s)

    async def _start(self, record: EndRecord, ttl_s: float) -> EndActor:
        """Start (prepare) an end; its refusal is raised as the RocdError it is."""
        actor = self._actor(record, ttl_s)
        try:
            await self.ends.start_child(actor, Restart.ON_FAILURE)
        except BaseExceptionGroup as group:
            cause = root_cause(group)
            if isinstance(cause, RocdError):
                raise cause from None
            raise
        return actor

    async def _list(self, stream: str | None) -> list[EndInfo]:
        out = []
        for actor in self._end_actors():
            if stream is not None and actor.record.stream.uid != stream:
                continue
            try:
                out.append(await actor.ref.ask(GetEndInfo()))
            except RocdError:
                continue  # stopping meanwhile
        return out

    # -- background ---------------------------------------------------------------------

    async def _reconcile_loop(self) -> None:
        while True:
            await trio.sleep(RECONCILE_S)
            for actor in self._end_actors():
                await self._reconcile(actor)

    async def _watch_peers(self) -> None:
        """Reconcile at reconnect: the ends whose other half lives on an instance that
        has just come (back) online are checked there at once (until it answers), and a
        prepared end whose coordinator went offline is removed (no commit will come)."""
        seen: dict[str, tuple[bool, float | None]] = {}  # uid -> (online, started)
        due: set[str] = set()
        while True:
            await trio.sleep(WATCH_S)
            for actor in self._end_actors():
                record = actor.record
                if not record.committed:
                    why = self._coordinator_gone(actor)
                    if why:
                        await self._remove(record.stream.uid, record.role, why)
                    continue
                other = _remote_other(record, self.uid)
                if other is None:
                    continue
                now = (not offline_reason(self._peers, other), peer_started(self._peers, other))
                before = seen.get(other, (False, None))
                if now[0] and (not before[0] or (before[1] is not None and now[1] != before[1])):
                    due.add(other)  # back online, or restarted meanwhile
                seen[other] = now
            for uid in list(due):
                if await self._reconcile_with(uid):
                    due.discard(uid)

    def _coordinator_gone(self, actor: EndActor) -> str:
        """Why a prepared end's coordinator can no longer commit it ("" if it can): it
        is a known peer that went offline, or that restarted since (its setup died)."""
        origin = actor.record.stream.origin
        if origin == self.uid:
            return ""
        try:
            self._peers.get(origin)
        except NotFound:
            return ""
        if offline_reason(self._peers, origin):
            return "its coordinator went offline"
        started = peer_started(self._peers, origin)
        if started is not None and actor.origin_started not in (None, started):
            return "its coordinator restarted"
        return ""

    async def _reconcile_with(self, uid: str) -> bool:
        """Remove the committed ends whose other half instance `uid` does not hold; True
        once it answered."""
        try:
            handle = self._peers.get(uid)
            there = await handle.ask(self.kind, handle.uid, ListEnds(), within=2.0)
        except RocdError:
            return False  # not reachable, or its streams are not up yet: try again
        held = {(e.stream.uid, e.role) for e in there}
        for actor in self._end_actors():
            record = actor.record
            if not record.committed or _remote_other(record, self.uid) != uid:
                continue
            other = "sender" if record.role == "receiver" else "receiver"
            if (record.stream.uid, other) not in held:
                log.warning(
                    "stream %s: its %s is gone from %s; removed", record.stream.uid, other, uid
                )
                await self._remove(record.stream.uid, record.role, f"its {other} is gone")
        return True

    async def _reconcile(self, actor: EndActor) -> None:
        record = actor.record
        if not record.committed:
            return
        spec = record.stream
        other: Role = "sender" if record.role == "receiver" else "receiver"
        peer = _remote_other(record, self.uid)
        if peer is None:
            return
        try:
            handle = self._peers.get(peer)
            ends = await handle.ask(self.kind, handle.uid, ListEnds(stream=spec.uid), within=2.0)
        except RocdError:
            return  # unreachable: keep the end, it is degraded until the peer is back
        if not any(e.role == other for e in ends):
            log.warning("stream %s: its %s is gone from %s; removed", spec.uid, other, peer)
            await self._remove(spec.uid, record.role, f"its {other} is gone")

    async def _metrics_loop(self) -> None:
        while True:
            await trio.sleep(METRICS_S)
            by_stream: dict[str, list[Any]] = {}
            for actor in self._end_actors():
                try:
                    m = await actor.ref.ask(GetMetrics(), within=1.0)
                except RocdError:
                    continue
                by_stream.setdefault(m.stream, []).append(msgspec.to_builtins(m))
            for stream, ends in by_stream.items():
                self._publish("stream.metrics", stream, {"stream": stream, "ends": ends})


def _resolved(spec: StreamSpec) -> StreamSpec:
    """`spec` with its settings filled in and checked: a request from another instance is
    checked as one from the API is (422 naming the field)."""
    external = []
    if spec.source.is_external:
        external.append(check_external(spec.source, "source", sender=False).fec_scheme)
    if spec.destination.is_external:
        external.append(check_external(spec.destination, "destination", sender=True).fec_scheme)
    return msgspec.structs.replace(spec, settings=resolve(spec.settings, external))


def _remote_other(record: EndRecord, local: str) -> str | None:
    """The uid of the instance holding the other end, when that is another instance."""
    spec = record.stream
    other = spec.source if record.role == "receiver" else spec.destination
    if other.is_external or other.peer is None or other.peer == local:
        return None
    return other.peer


def _other_half(record: EndRecord, local: str) -> Role | None:
    """The role of the other end when it lives on this instance too (else None)."""
    spec = record.stream
    if record.role == "receiver":
        other = spec.source
        role: Role = "sender"
    else:
        other = spec.destination
        role = "receiver"
    if other.is_external or other.peer != local:
        return None
    return role
