"""The stream coordinator: sets streams up, all or nothing, and answers for the cluster's
streams, reaching every end only through `Peers` (never assuming an end is local).

Setup (`_stream_setup` has the phases): prepare the receiver on the destination's
instance (device opened, ports bound), prepare the sender on the source's instance
(told where to send), commit the receiver, then the sender. Any failure, or the setup
deadline, aborts every end made so far, and the answer is the error of the side that
failed (its details say which end, on which peer, at which step). A coordinator that dies
halfway leaves prepared ends that expire by themselves, and committed ends whose other
half is missing, which their hosts remove (`StreamHost`'s reconciliation).

A stream exists as its ends: listing asks every instance for the ends it holds and
groups them by stream; the stream's state is the worst of its ends' (`combine`).
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from typing import Any

import msgspec
import trio

from rocd.errors import AskTimeout, NotFound, RocdError, Unavailable, Unsupported

from ._actor import Actor, Request
from ._peer_handle import PeerHandle, Peers
from ._stream_media import (
    HUB_KIND,
    AllocateRelay,
    GetMediaPath,
    HubLease,
    MediaPath,
    MediaPlan,
    ReleaseRelay,
    offline_reason,
)
from ._stream_settings import check_external, resolve, targets_on
from ._stream_setup import Setup
from ._stream_state import StreamState, combine
from ._stream_types import (
    AbortEnd,
    CommitEnd,
    CreateStream,
    DeleteStream,
    EndInfo,
    EndMetrics,
    EndSpec,
    EndView,
    ExternalEndpoints,
    GetEndMetrics,
    GetStream,
    GetStreamMetrics,
    ListEnds,
    ListStreams,
    PrepareReceiver,
    PrepareSender,
    ReceiverPrepared,
    Role,
    SenderPrepared,
    Stream,
    StreamCreate,
    StreamMetrics,
    StreamSpec,
    UpdateEnd,
    UpdateStream,
)
from ._supervisor import Publish

log = logging.getLogger("rocd.streams")

#: Seconds a whole setup may take before it is rolled back.
SETUP_TIMEOUT = 5.0
#: Seconds a prepared end waits for its commit before it removes itself.
PREPARE_TTL = 10.0
#: Seconds a rollback step may take (an unreachable end expires on its own anyway).
ABORT_TIMEOUT = 2.0

HOST_KIND = "streams"
#: Ends remembered from listings (what is shown of an instance that cannot be asked).
MAX_REMEMBERED = 4096


class StreamCoordinator(Actor):
    kind = "stream_coordinator"
    mailbox_capacity = 128
    concurrent = True  # a setup under way does not hold up listings

    def __init__(self, uid: str, *, peers: Peers, publish: Publish) -> None:
        super().__init__(uid)
        self._peers = peers
        self._publish = publish
        #: The ends last heard of, by (stream, role): what the cluster's listings show of
        #: an end whose instance cannot be asked now (degraded, with the reason).
        self._seen: dict[tuple[str, str], EndInfo] = {}

    async def handle(self, msg: Any) -> Any:
        match msg:
            case CreateStream(create=create):
                return await self._create(create)
            case ListStreams():
                return await self._list_all()
            case GetStream(uid=uid):
                return _view(uid, await self._ends_of(uid))
            case UpdateStream(uid=uid, patch=patch):
                ends = await self._ends_of(uid)
                for end in ends:
                    self._reachable(end)
                for end in ends:
                    await self._ask(end.peer, UpdateEnd(stream=uid, role=end.role, patch=patch))
                return _view(uid, await self._ends_of(uid))
            case DeleteStream(uid=uid):
                await self._delete(uid)
                return None
            case GetStreamMetrics(uid=uid):
                ends = await self._ends_of(uid)
                metrics: list[EndMetrics] = []
                for end in ends:
                    self._reachable(end)
                    metrics.append(
                        await self._ask(end.peer, GetEndMetrics(stream=uid, role=end.role))
                    )
                view = _view(uid, ends)
                return StreamMetrics(uid=uid, state=view.state, reason=view.reason, ends=metrics)
        return await super().handle(msg)

    async def _ask(self, peer: str, request: Request[Any], within: float = 5.0) -> Any:
        handle = self._peers.get(peer)
        return await handle.ask(HOST_KIND, handle.uid, request, within=within)

    def _reachable(self, end: EndInfo) -> None:
        """Unavailable when `end` is one remembered from an instance that cannot be asked."""
        if end.stale:
            raise Unavailable(end.reason, details=[{"peer": end.peer, "role": end.role}])

    async def _delete(self, uid: str) -> None:
        """Remove every end that can be reached; an end on an instance that cannot be is
        removed there when it is back (its other half is gone). 503 when none could be."""
        ends = await self._ends_of(uid)
        removed, missed = 0, []
        for end in ends:
            if end.stale:
                missed.append(end)
                continue
            try:
                await self._ask(end.peer, AbortEnd(stream=uid, role=end.role, reason="deleted"))
                removed += 1
            except (Unavailable, AskTimeout) as exc:
                missed.append(msgspec.structs.replace(end, reason=exc.message))
        if not removed and missed:
            raise Unavailable(
                f"stream {uid} not deleted: {missed[0].reason}",
                details=[{"peer": e.peer, "role": e.role} for e in missed],
            )
        for end in ends:
            self._seen.pop((uid, end.role), None)
        media = ends[0].stream.media
        if media is not None and media.hub is not None:
            await self._release(media.hub, uid)
        self._publish("stream.deleted", uid, {"stream": uid})

    # -- listing ------------------------------------------------------------------------

    async def _all_ends(self, stream: str | None) -> list[EndInfo]:
        """The ends every instance of the cluster holds (of one stream, or all), asked at
        once; for an instance that cannot be asked, the ends last heard of from it, or
        that its peers' ends name, marked `stale` and degraded with the reason."""
        answers: dict[str, list[EndInfo]] = {}
        failed: dict[str, str] = {}

        async def ask(handle: PeerHandle) -> None:
            try:
                found = await handle.ask(HOST_KIND, handle.uid, ListEnds(stream=stream), within=2.0)
                answers[handle.uid] = list(found)
            except NotFound as exc:
                failed[handle.uid] = exc.message  # streams not up there yet
            except RocdError as exc:
                failed[handle.uid] = offline_reason(self._peers, handle.uid) or exc.message
                log.debug("no stream ends from %s: %s", handle.uid, exc)

        handles = self._peers.cluster()
        async with trio.open_nursery() as nursery:
            for handle in handles:
                nursery.start_soon(ask, handle)
        ends: list[EndInfo] = []
        for found in answers.values():
            ends.extend(found)
        present = {(e.stream.uid, e.role) for e in ends}
        # What the answers say is gone is forgotten; what they hold is remembered.
        for key, end in list(self._seen.items()):
            if end.peer in answers and key not in present and (stream in (None, key[0])):
                del self._seen[key]
        for end in ends:
            self._seen[(end.stream.uid, end.role)] = end
        while len(self._seen) > MAX_REMEMBERED:
            del self._seen[next(iter(self._seen))]
        # Ends on instances that did not answer: remembered, or named by their other half.
        missing: dict[tuple[str, str], EndInfo] = {}
        for key, end in self._seen.items():
            if end.peer not in answers and (stream is None or key[0] == stream):
                missing[key] = end
        for end in ends:
            other = _other_half(end)
            if other is not None and other[1] not in answers:
                key = (end.stream.uid, other[0])
                if key not in present and key not in missing:
                    missing[key] = EndInfo(
                        stream=end.stream,
                        role=other[0],
                        peer=other[1],
                        state=StreamState.DEGRADED,
                        committed=True,
                    )
        for end in missing.values():
            why = failed.get(end.peer) or offline_reason(self._peers, end.peer)
            why = why or f"peer {end.peer} did not answer"
            ends.append(
                msgspec.structs.replace(end, state=_stale_state(end.state), reason=why, stale=True)
            )
        return ends

    async def _ends_of(self, uid: str) -> list[EndInfo]:
        ends = await self._all_ends(uid)
        if not ends:
            raise NotFound(f"no stream {uid!r}", details=[{"in": "path", "field": "uid"}])
        return ends

    async def _list_all(self) -> list[Stream]:
        grouped: dict[str, list[EndInfo]] = {}
        for end in await self._all_ends(None):
            grouped.setdefault(end.stream.uid, []).append(end)
        streams = [_view(uid, ends) for uid, ends in grouped.items()]
        return sorted(streams, key=lambda s: (s.created, s.uid))

    # -- setup --------------------------------------------------------------------------

    def _resolve_end(self, end: EndSpec, where: str) -> EndSpec:
        if end.is_external:
            return end
        assert end.peer is not None
        try:
            uid = self._peers.resolve(end.peer)
        except NotFound as exc:
            raise NotFound(
                exc.message, details=[{"in": "body", "field": f"{where}.peer"}]
            ) from None
        return EndSpec(peer=uid, device=end.device, vad=end.vad)

    async def _create(self, create: StreamCreate) -> Stream:
        source = self._resolve_end(create.source, "source")
        destination = self._resolve_end(create.destination, "destination")
        if source.is_external and destination.is_external:
            raise Unsupported(
                "a stream joins at least one device or VAD: both ends are external",
                details=[{"in": "body", "field": "source"}],
            )
        external_fec = []
        if source.is_external:
            external_fec.append(check_external(source, "source", sender=False).fec_scheme)
        if destination.is_external:
            external_fec.append(check_external(destination, "destination", sender=True).fec_scheme)
        settings = resolve(create.settings, external_fec)
        spec = StreamSpec(
            uid=uuid.uuid4().hex[:12],
            source=source,
            destination=destination,
            settings=settings,
            created=time.time(),
            origin=self.uid,
        )
        setup = Setup(spec.uid, receiver=destination.peer, sender=source.peer)
        started = time.monotonic()
        try:
            with trio.fail_after(SETUP_TIMEOUT):
                await self._setup(spec, setup)
        except BaseException as exc:
            with trio.CancelScope(shield=True):
                await self._rollback(spec, setup)
            if isinstance(exc, trio.TooSlowError):
                raise AskTimeout(
                    f"the setup of stream {spec.uid} took longer than {SETUP_TIMEOUT:g} s; "
                    "rolled back"
                ) from None
            raise
        log.info(
            "stream %s set up in %.1f ms (%s): %s -> %s",
            spec.uid,
            (time.monotonic() - started) * 1000,
            ", ".join(f"{step} {ms:.1f}" for step, ms in setup.took),
            _name(source),
            _name(destination),
        )
        self._publish("stream.created", spec.uid, {"stream": _to_json(spec)})
        return _view(spec.uid, setup.ends)  # as the commits answered

    async def _step(self, setup: Setup, role: Role, step: str, request: Request[Any]) -> Any:
        peer = setup.expects[role]
        assert peer is not None
        started = time.monotonic()
        try:
            answer = await self._ask(peer, request, within=SETUP_TIMEOUT)
            setup.took.append((step, (time.monotonic() - started) * 1000))
            return answer
        except RocdError as exc:
            side = "destination" if role == "receiver" else "source"
            error = copy.copy(exc)  # the same type and status: the side's own error
            error.message = f"{side} ({step}): {exc.message}"
            error.args = (error.message,)
            error.details = [*exc.details, {"end": side, "peer": peer, "step": step}]
            raise error from None

    async def _setup(self, spec: StreamSpec, setup: Setup) -> None:
        receiver_peer, sender_peer = setup.expects["receiver"], setup.expects["sender"]
        spec, back = await self._plan(spec, setup)
        if receiver_peer is not None:
            bind_host = "127.0.0.1" if receiver_peer == sender_peer else "0.0.0.0"
            prepared = await self._step(
                setup,
                "receiver",
                "prepare_receiver",
                PrepareReceiver(stream=spec, bind_host=bind_host, ttl_s=PREPARE_TTL),
            )
            setup.prepared("receiver")
            targets = self._targets(spec, prepared, setup.there)
        else:
            ext = spec.destination.external
            assert ext is not None
            targets = ExternalEndpoints(ext.source, ext.repair, ext.control)
        punch: tuple[str, ...] = ()
        if sender_peer is not None:
            sent = await self._step(
                setup,
                "sender",
                "prepare_sender",
                PrepareSender(stream=spec, targets=targets, ttl_s=PREPARE_TTL),
            )
            setup.prepared("sender")
            punch = _punch_candidates(sent, back)
        if receiver_peer is not None:
            info = await self._step(
                setup,
                "receiver",
                "commit_receiver",
                CommitEnd(stream=spec.uid, role="receiver", punch=punch),
            )
            setup.committed("receiver")
            setup.ends.append(info)
        if sender_peer is not None:
            info = await self._step(
                setup, "sender", "commit_sender", CommitEnd(stream=spec.uid, role="sender")
            )
            setup.committed("sender")
            setup.ends.append(info)

    async def _plan(self, spec: StreamSpec, setup: Setup) -> tuple[StreamSpec, MediaPath | None]:
        """The path of the stream's audio (see `_stream_media`); `spec` with it, and how
        the receiver's instance reaches the sender's (a `nat` path), if asked."""
        receiver_peer, sender_peer = setup.expects["receiver"], setup.expects["sender"]
        if receiver_peer is None or sender_peer is None:
            return msgspec.structs.replace(spec, media=MediaPlan(mode="direct")), None
        if receiver_peer == sender_peer:
            setup.there = "127.0.0.1"
            return msgspec.structs.replace(spec, media=MediaPlan(mode="local")), None
        there = await self._step(setup, "sender", "plan", GetMediaPath(peer=receiver_peer))
        if there.host:
            setup.there = there.host
            return msgspec.structs.replace(spec, media=MediaPlan(mode="direct")), None
        back = await self._step(setup, "receiver", "plan", GetMediaPath(peer=sender_peer))
        lease = await self._lease(spec, setup, [h for h in there.hubs if h in back.hubs])
        if lease is None and not back.host:
            raise Unavailable(
                f"no media path from {sender_peer} to {receiver_peer}: neither reaches the "
                "other directly and they share no hub (a rendezvous with `hub` on, linked "
                "directly to both)",
                details=[{"source": there.route, "destination": back.route}],
            )
        return msgspec.structs.replace(spec, media=MediaPlan(mode="nat", hub=lease)), back

    async def _lease(self, spec: StreamSpec, setup: Setup, hubs: list[str]) -> HubLease | None:
        """A relay on the first of `hubs` that grants one (None: none did)."""
        for hub in hubs:
            try:
                handle = self._peers.get(hub)
                lease: HubLease = await handle.ask(
                    HUB_KIND, handle.uid, AllocateRelay(stream=spec.uid), within=2.0
                )
            except RocdError as exc:
                log.warning("stream %s: no relay on hub %s: %s", spec.uid, hub, exc)
                continue
            setup.lease = lease
            return lease
        return None

    @staticmethod
    def _targets(
        spec: StreamSpec, prepared: ReceiverPrepared, there: str
    ) -> ExternalEndpoints | None:
        """Where the sender sends: the receiver's ports on the host it reaches it at, or
        on a `nat` path the public side of the receiver's mappings (None: unknown)."""
        if spec.media is not None and spec.media.mode == "nat":
            return prepared.observed
        return targets_on(prepared.endpoints, there)

    async def _rollback(self, spec: StreamSpec, setup: Setup) -> None:
        made = setup.rolling_back()

        async def abort(role: str, peer: str) -> None:
            try:
                await self._ask(
                    peer,
                    AbortEnd(stream=spec.uid, role=_role(role), reason="setup rolled back"),
                    within=ABORT_TIMEOUT,
                )
            except RocdError as exc:
                # Unreachable: the prepared end expires, a committed one is reconciled.
                # An end never answered for (its step failed or was not reached) is
                # most likely not there at all: no warning for it.
                level = logging.WARNING if role in setup.made else logging.INFO
                log.log(level, "stream %s: %s on %s not aborted: %s", spec.uid, role, peer, exc)

        async with trio.open_nursery() as nursery:
            for role, peer in made.items():
                nursery.start_soon(abort, role, peer)
            if setup.lease is not None:
                nursery.start_soon(self._release, setup.lease, spec.uid)
        setup.rolled_back()

    async def _release(self, lease: HubLease, stream: str) -> None:
        """Give a hub relay back (unreachable: it expires once both ends stop using it)."""
        try:
            handle = self._peers.get(lease.hub)
            await handle.ask(
                HUB_KIND, handle.uid, ReleaseRelay(stream=stream), within=ABORT_TIMEOUT
            )
        except RocdError as exc:
            log.info("stream %s: relay on %s not released: %s", stream, lease.hub, exc)


def _punch_candidates(sent: SenderPrepared, back: MediaPath | None) -> tuple[str, ...]:
    """Where the receiver punches towards the sender: the public side of the sender's
    socket as the hub saw it, and the sender's port on the host the receiver's instance
    dials, when it can."""
    out: list[str] = []
    if sent.observed:
        out.append(sent.observed)
    if back is not None and back.host and sent.port:
        host = f"[{back.host}]" if ":" in back.host else back.host
        out.append(f"{host}:{sent.port}")
    return tuple(dict.fromkeys(out))


def _other_half(end: EndInfo) -> tuple[Role, str] | None:
    """(role, peer) of the other end of `end`'s stream, when an instance holds it."""
    spec = end.stream
    if end.role == "receiver":
        other, role = spec.source, "sender"
    else:
        other, role = spec.destination, "receiver"
    if other.is_external or other.peer is None:
        return None
    return _role(role), other.peer


def _stale_state(state: StreamState) -> StreamState:
    """The state shown for an end that cannot be asked: degraded, unless it had ended."""
    return state if state in (StreamState.FAILED, StreamState.STOPPED) else StreamState.DEGRADED


def _role(role: str) -> Role:
    return "receiver" if role == "receiver" else "sender"


def _name(end: EndSpec) -> str:
    if end.external is not None:
        return end.external.source
    return f"{end.peer}/{end.device or 'vad:' + (end.vad or '')}"


def _to_json(spec: StreamSpec) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(spec)
    return out


def _view(uid: str, ends: list[EndInfo]) -> Stream:
    """A stream as the cluster sees it, from the ends its instances hold."""
    spec = ends[0].stream
    # The newest settings (a live change reaches every end; take the receiver's first).
    ordered = sorted(ends, key=lambda e: e.role != "receiver")
    state = combine(e.state for e in ends)
    reason = next((f"{e.role}: {e.reason}" for e in ordered if e.state is state and e.reason), "")
    return Stream(
        uid=uid,
        source=spec.source,
        destination=spec.destination,
        settings=ordered[0].stream.settings,
        state=state,
        reason=reason,
        created=spec.created,
        ends=[
            EndView(
                role=e.role,
                peer=e.peer,
                state=e.state,
                reason=e.reason,
                endpoints=e.endpoints,
                path=e.path,
                stale=e.stale,
            )
            for e in ordered
        ],
    )
