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
from ._stream_settings import check_external, resolve, targets_on
from ._stream_setup import Setup
from ._stream_state import combine
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
    Role,
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


class StreamCoordinator(Actor):
    kind = "stream_coordinator"
    mailbox_capacity = 128

    def __init__(self, uid: str, *, peers: Peers, publish: Publish) -> None:
        super().__init__(uid)
        self._peers = peers
        self._publish = publish

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
                    await self._ask(end.peer, UpdateEnd(stream=uid, role=end.role, patch=patch))
                return _view(uid, await self._ends_of(uid))
            case DeleteStream(uid=uid):
                ends = await self._ends_of(uid)
                for end in ends:
                    await self._ask(end.peer, AbortEnd(stream=uid, role=end.role, reason="deleted"))
                self._publish("stream.deleted", uid, {"stream": uid})
                return None
            case GetStreamMetrics(uid=uid):
                ends = await self._ends_of(uid)
                metrics: list[EndMetrics] = []
                for end in ends:
                    metrics.append(
                        await self._ask(end.peer, GetEndMetrics(stream=uid, role=end.role))
                    )
                view = _view(uid, ends)
                return StreamMetrics(uid=uid, state=view.state, reason=view.reason, ends=metrics)
        return await super().handle(msg)

    async def _ask(self, peer: str, request: Request[Any], within: float = 5.0) -> Any:
        handle = self._peers.get(peer)
        return await handle.ask(HOST_KIND, handle.uid, request, within=within)

    # -- listing ------------------------------------------------------------------------

    async def _all_ends(self, stream: str | None) -> list[EndInfo]:
        ends: list[EndInfo] = []
        for handle in self._peers.all():
            try:
                found = await handle.ask(HOST_KIND, handle.uid, ListEnds(stream=stream), within=2.0)
                ends.extend(found)
            except RocdError as exc:
                log.debug("no stream ends from %s: %s", handle.uid, exc)
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
        log.info("stream %s set up: %s -> %s", spec.uid, _name(source), _name(destination))
        self._publish("stream.created", spec.uid, {"stream": _to_json(spec)})
        return _view(spec.uid, await self._ends_of(spec.uid))

    async def _step(self, setup: Setup, role: Role, step: str, request: Request[Any]) -> Any:
        peer = setup.expects[role]
        assert peer is not None
        try:
            return await self._ask(peer, request, within=SETUP_TIMEOUT)
        except RocdError as exc:
            side = "destination" if role == "receiver" else "source"
            error = copy.copy(exc)  # the same type and status: the side's own error
            error.message = f"{side} ({step}): {exc.message}"
            error.args = (error.message,)
            error.details = [*exc.details, {"end": side, "peer": peer, "step": step}]
            raise error from None

    async def _setup(self, spec: StreamSpec, setup: Setup) -> None:
        receiver_peer, sender_peer = setup.expects["receiver"], setup.expects["sender"]
        if receiver_peer is not None:
            bind_host = "127.0.0.1" if receiver_peer == sender_peer else "0.0.0.0"
            prepared = await self._step(
                setup,
                "receiver",
                "prepare_receiver",
                PrepareReceiver(stream=spec, bind_host=bind_host, ttl_s=PREPARE_TTL),
            )
            setup.prepared("receiver")
            targets = targets_on(prepared.endpoints, self._media_host(receiver_peer, sender_peer))
        else:
            ext = spec.destination.external
            assert ext is not None
            targets = ExternalEndpoints(ext.source, ext.repair, ext.control)
        if sender_peer is not None:
            await self._step(
                setup,
                "sender",
                "prepare_sender",
                PrepareSender(stream=spec, targets=targets, ttl_s=PREPARE_TTL),
            )
            setup.prepared("sender")
        if receiver_peer is not None:
            await self._step(
                setup, "receiver", "commit_receiver", CommitEnd(stream=spec.uid, role="receiver")
            )
            setup.committed("receiver")
        if sender_peer is not None:
            await self._step(
                setup, "sender", "commit_sender", CommitEnd(stream=spec.uid, role="sender")
            )
            setup.committed("sender")

    def _media_host(self, receiver: str, sender: str | None) -> str:
        """The address a sender on `sender` reaches the receiver's instance at.

        A remote handle knows it (the cluster's `media_host`: the peer's address for
        media as seen from here); when the receiver is this instance and the sender a
        remote one, that remote's handle says how it reaches us (`our_media_host`)."""
        if sender is None or receiver == sender:
            return "127.0.0.1"
        handle: PeerHandle = self._peers.get(receiver)
        attribute = "media_host"
        if handle.local:
            handle, attribute = self._peers.get(sender), "our_media_host"
        host = getattr(handle, attribute, None)
        if not isinstance(host, str) or not host:
            raise Unavailable(
                f"no media address known for peer {receiver}: a stream between two "
                "instances needs the cluster's pairing"
            )
        return host

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
                log.warning("stream %s: %s on %s not aborted: %s", spec.uid, role, peer, exc)

        async with trio.open_nursery() as nursery:
            for role, peer in made.items():
                nursery.start_soon(abort, role, peer)
        setup.rolled_back()


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
            EndView(role=e.role, peer=e.peer, state=e.state, reason=e.reason, endpoints=e.endpoints)
            for e in ordered
        ],
    )
