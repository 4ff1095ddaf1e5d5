"""A stream's end on this instance: a receiver playing into a device, or a sender reading
one. One actor per end; the stream host starts, commits and stops them.

Lifetime: prepared (state pending: device opened, sockets bound, nothing plays yet) ->
committed (persisted; the link is attached to the device's bus, so audio flows) ->
stopped. A pending end not committed within its time to live asks the host to remove it.
A committed end is in the store ("stream_end", "<stream>:<role>") and is started again
after a daemon restart (a receiver binds the same ports, so its sender finds it again).

State (`_stream_state`): checked twice a second from the link's counters, never from the
audio path: a receiver is active while a session plays, a sender while its source
delivers; degraded when that stops or the device broke; a sender whose source ended
(a file) is stopped. An end that ended (stopped or failed) keeps that state across
restarts until the stream is deleted.

Failures while (re)opening a committed end (the device is not there yet after a restart,
the port is taken for now) keep it degraded and are retried; the same failures while
preparing are the prepare's answer.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import msgspec
import trio
from msgspec import UNSET

from rocd.audio import volume_to_amplitude
from rocd.errors import Conflict, InvalidRequest, RocdError
from rocd.net.roc import (
    Address,
    EndpointError,
    FanoutSlot,
    Interface,
    MixSlot,
    Receiver,
    ReceiverReporter,
    RecvLink,
    Sender,
    SendLink,
    SessionMetrics,
    SessionState,
    receiver_endpoints,
    samples_for_duration,
    sender_endpoints,
)

from ._actor import Actor, ActorRef, Request
from ._audio_types import DeviceEndpoint, GetEndpoint, GetVad
from ._peer_handle import Peers
from ._registry import Registry
from ._store import PutSetting
from ._stream_media import PathChooser, media_host, offline_reason
from ._stream_nat import (
    address_text,
    probe_mapping,
    punch_from,
    punch_token,
    receiver_loop,
    resolve,
    sender_loop,
    wait_punches,
)
from ._stream_plane import AudioPlane, InputBus, OutputBus
from ._stream_reports import ReceiverReports
from ._stream_settings import (
    bound_endpoints,
    check_external,
    encoding,
    encoding_map,
    fixed_bounds_ns,
    local_endpoints,
    receiver_config,
    sender_config,
)
from ._stream_state import Lifecycle, StreamState
from ._stream_types import (
    EndInfo,
    EndMetrics,
    ExternalEndpoints,
    ReceiverEndMetrics,
    Role,
    SenderEndMetrics,
    StreamPatch,
    StreamSpec,
    end_uid,
)
from ._supervisor import Publish

log = logging.getLogger("rocd.streams")

#: Seconds between two checks of an end's state (and retries of a broken one).
CHECK_S = 0.5
#: Seconds a sender on a `nat` path waits for the receiver's punches when committed.
PUNCH_WAIT_S = 1.0
_MS = 1_000_000
#: Session counters an end adds up over every session it had.
_TOTALS = (
    "received",
    "lost",
    "recovered",
    "late",
    "concealed_samples",
    "underruns",
    "rtcp_foreign",
)
#: FEC reader fields that are not counters (a session's geometry and window).
_FEC_GAUGES = frozenset({"block_k", "block_n", "symbol_bytes", "window_blocks", "held_blocks"})


class EndRecord(msgspec.Struct, kw_only=True):
    """What the store keeps of a committed end."""

    stream: StreamSpec
    role: Role
    committed: bool = False
    #: receiver: the bound URIs (bound again after a restart); sender: its targets.
    endpoints: ExternalEndpoints | None = None
    bind_host: str = "0.0.0.0"
    final_state: StreamState | None = None  # stopped / failed: kept across restarts
    final_reason: str = ""
    #: A receiver on a `nat` path: where the sender's socket may be reached ("host:port").
    punch: list[str] = []


class GetEndInfo(Request[EndInfo], frozen=True):
    pass


class Commit(Request[EndInfo], frozen=True):
    punch: tuple[str, ...] = ()


class Patch(Request[EndInfo], frozen=True):
    patch: StreamPatch


class GetMetrics(Request[EndMetrics], frozen=True):
    pass


class EndActor(Actor):
    kind = "stream_end"
    mailbox_capacity = 32

    def __init__(
        self,
        record: EndRecord,
        *,
        peer: str,
        plane: AudioPlane,
        registry: Registry,
        store: ActorRef,
        publish: Publish,
        expire: Callable[[str, str], None],
        peers: Peers | None = None,
        ttl_s: float = 10.0,
    ) -> None:
        super().__init__(end_uid(record.stream.uid, record.role))
        self.record = record
        self.peer = peer
        self._peers = peers
        self._plane = plane
        self._registry = registry
        self._store = store
        self._publish = publish
        self._expire = expire
        self._deadline = time.monotonic() + ttl_s
        initial = StreamState.STARTING if record.committed else StreamState.PENDING
        self.life = Lifecycle(f"the {record.role} of stream {record.stream.uid}", initial)
        if record.final_state is not None:
            self.life = Lifecycle(self.life.what, record.final_state, record.final_reason)
        self._opened = False
        self._out: OutputBus | None = None
        self._in: InputBus | None = None
        self._recv: RecvLink | None = None
        self._send: SendLink | None = None
        self._mix_slot: MixSlot | None = None
        self._fan_slot: FanoutSlot | None = None
        self._last: tuple[float, int, int] = (time.monotonic(), 0, 0)  # time, chunks, bytes
        self._bitrate = 0.0
        self._ever_active = False
        self._flowing = False  # the source gave frames since the last check
        #: A sender to an external receiver: whether that receiver still reports.
        dest = record.stream.destination.external
        self._reports = ReceiverReports(dest.control) if dest is not None else None
        self._ended: dict[str, int] = {}  # counters of the sessions that ended
        self._ended_fec: dict[str, int] = {}  # and their FEC readers' counters
        #: A `nat` path: the public side of the receiver's sockets (as the hub saw them),
        #: or of the sender's; where the sender sends now; the task keeping the NAT open.
        self.observed: dict[Interface, str] = {}
        self._chooser: PathChooser | None = None
        self._nat_scope: trio.CancelScope | None = None
        #: When the stream's coordinator had started, as its link said at the prepare.
        self.origin_started: float | None = None

    @property
    def role(self) -> Role:
        return self.record.role

    @property
    def stream(self) -> StreamSpec:
        return self.record.stream

    # -- life cycle ---------------------------------------------------------------------

    async def on_start(self) -> None:
        if self.life.terminal:
            return
        if not self.record.committed:
            await self._open()  # a prepare: its errors are the answer
        else:
            await self._reopen_quietly()
        self.nursery.start_soon(self._watch)

    async def on_stop(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._nat_scope is not None:
            self._nat_scope.cancel(reason="end closed")
            self._nat_scope = None
        if self._out is not None:
            if self._mix_slot is not None and self._out.mix is not None:
                self._out.mix.remove(self._mix_slot)
            self._plane.release_output(self._out)
        if self._in is not None:
            if self._fan_slot is not None and self._in.fan is not None:
                self._in.fan.remove(self._fan_slot)
            self._plane.release_input(self._in)
        if self._recv is not None:
            self._recv.close()
        if self._send is not None:
            self._send.finish()
        self._out = self._in = None
        self._recv = self._send = None
        self._mix_slot = self._fan_slot = None
        self._opened = False

    async def _reopen_quietly(self) -> None:
        try:
            await self._open()
        except (RocdError, OSError) as exc:
            self._close()
            reason = getattr(exc, "message", None) or str(exc)
            self._set(StreamState.DEGRADED, f"cannot open: {reason}")
            return
        self._attach()

    async def _endpoint(self, direction: str) -> DeviceEndpoint:
        spec = self.stream.destination if self.role == "receiver" else self.stream.source
        device = spec.device
        if spec.vad is not None:
            vad = await self._registry.lookup("vad", spec.vad).ask(GetVad())
            if vad.device is None:
                raise Conflict(f"VAD {spec.vad} has no device yet ({vad.state}: {vad.reason})")
            device = vad.device
        assert device is not None
        endpoint = await self._registry.lookup("device", device).ask(GetEndpoint())
        if endpoint.direction != direction and not (
            direction == "source" and endpoint.driver.name == "pulse"
        ):
            where = "destination" if self.role == "receiver" else "source"
            raise InvalidRequest(
                f"invalid body: {where}: {device} is a {endpoint.direction}; a stream's "
                f"{where} must be a {direction}",
                details=[{"in": "body", "field": f"{where}.device"}],
            )
        return endpoint

    async def _open(self) -> None:
        if self.role == "receiver":
            await self._open_receiver()
        else:
            await self._open_sender()
        self._opened = True

    async def _open_receiver(self) -> None:
        rec, settings = self.record, self.stream.settings
        endpoint = await self._endpoint("sink")
        if rec.endpoints is not None:  # a restart: the same ports as before
            ext = rec.endpoints
            endpoints = receiver_endpoints(ext.source, ext.repair, ext.control)
        elif self.stream.source.is_external:
            endpoints = check_external(self.stream.source, "source", sender=False)
        else:
            endpoints = local_endpoints(settings, rec.bind_host)
        config = receiver_config(settings, endpoint.spec.rate, endpoint.spec.channels)
        receiver = Receiver(config, encodings=encoding_map(settings))
        link = RecvLink(
            receiver,
            endpoints,
            reporter=ReceiverReporter(rng=random.Random()),
            ticker=self._plane.ticker,
            on_event=self._session_event,
        )
        self._out = await self._plane.acquire_output(endpoint)
        try:
            bound = await link.open()
        except OSError as exc:
            raise Conflict(f"cannot listen on {endpoints}: {exc.strerror or exc}") from None
        self._recv = link
        rec.endpoints = bound_endpoints(endpoints, {i.value: a[1] for i, a in bound.items()})
        if not rec.committed:
            await self._probe({i: link.sockets[i] for i in bound})

    async def _open_sender(self) -> None:
        rec, settings = self.record, self.stream.settings
        endpoint = await self._endpoint("source")
        hub = self._hub_targets()
        ext = rec.endpoints if rec.endpoints is not None else hub
        if ext is None:
            raise InvalidRequest("a sender needs its targets (or a hub to send through)")
        try:
            targets = sender_endpoints(ext.source, ext.repair, ext.control)
        except EndpointError as exc:
            raise InvalidRequest(f"invalid targets: {exc}") from None
        sender = Sender(
            sender_config(settings),
            input_rate=endpoint.spec.rate,
            input_channels=endpoint.spec.channels,
            rng=random.Random(),
        )
        self._in = await self._plane.acquire_input(endpoint)
        link = SendLink(sender, targets, ticker=self._plane.ticker)
        try:
            await link.open()
        except OSError as exc:
            raise Conflict(f"cannot send to {targets}: {exc}") from None
        self._send = link
        if self._reports is not None:
            self._reports.reset()  # a new sender (SSRC, socket): its receivers report anew
        if self._nat:
            direct = None
            if rec.endpoints is not None:
                direct = await _resolved(rec.endpoints)
            hub_targets = await _resolved(hub) if hub is not None else None
            self._chooser = PathChooser(direct, hub_targets, trio.current_time())
            link.retarget(self._chooser.targets)
            if not rec.committed and link.udp is not None:
                await self._probe({Interface.CONTROL: link.udp})

    # -- a `nat` path ---------------------------------------------------------------------

    @property
    def _nat(self) -> bool:
        media = self.stream.media
        return media is not None and media.mode == "nat"

    def _hub_host(self) -> tuple[str, int] | None:
        """(host, probe port) of the stream's hub as this instance reaches it."""
        media = self.stream.media
        if media is None or media.hub is None or self._peers is None:
            return None
        host = media_host(self._peers, media.hub.hub)
        return (host, media.hub.probe_port or 0) if host else None

    def _hub_targets(self) -> ExternalEndpoints | None:
        """Where the sender sends through the hub's relay (None: no hub)."""
        media, hub = self.stream.media, self._hub_host()
        if media is None or media.hub is None or hub is None or self.role != "sender":
            return None
        s, r, c = media.hub.sender_ports
        host = f"[{hub[0]}]" if ":" in hub[0] else hub[0]
        settings = self.stream.settings
        scheme = settings.fec.scheme
        if scheme == "none":
            return ExternalEndpoints(f"rtp://{host}:{s}", None, f"rtcp://{host}:{c}")
        return ExternalEndpoints(
            f"rtp+{scheme}://{host}:{s}", f"{scheme}://{host}:{r}", f"rtcp://{host}:{c}"
        )

    async def _probe(self, sockets: dict[Interface, Any]) -> None:
        """Learn the public side of each socket's mapping from the hub (a `nat` path)."""
        hub = self._hub_host()
        if not self._nat or hub is None or not hub[1]:
            return
        target = await resolve(address_text(*hub))
        if target is None:
            return
        found: dict[Interface, str] = {}

        async def one(interface: Interface, udp: Any) -> None:
            seen = await probe_mapping(udp, target)
            if seen:
                found[interface] = seen

        async with trio.open_nursery() as nursery:
            for interface, udp in sockets.items():
                nursery.start_soon(one, interface, udp)
        self.observed = found

    def observed_endpoints(self) -> ExternalEndpoints | None:
        """A receiver's endpoints at the public side of its mappings (all of them, or
        None when a socket's is unknown)."""
        ends = self.record.endpoints
        if ends is None or not self.observed:
            return None
        uris: dict[Interface, str | None] = {}
        for interface, uri in (
            (Interface.SOURCE, ends.source),
            (Interface.REPAIR, ends.repair),
            (Interface.CONTROL, ends.control),
        ):
            if uri is None:
                uris[interface] = None
                continue
            seen = self.observed.get(interface)
            if seen is None:
                return None
            uris[interface] = f"{uri.split('://', 1)[0]}://{seen}"
        source = uris[Interface.SOURCE]
        assert source is not None
        return ExternalEndpoints(source, uris[Interface.REPAIR], uris[Interface.CONTROL])

    def _start_nat(self) -> None:
        """Keep the NAT open for a committed end of a `nat` path (punches, registrations)."""
        media = self.stream.media
        if not self._nat or media is None or self._nat_scope is not None:
            return
        scope = self._nat_scope = trio.CancelScope()
        self.nursery.start_soon(self._nat_task, scope)

    async def _nat_task(self, scope: trio.CancelScope) -> None:
        media = self.stream.media
        assert media is not None
        lease = media.hub
        with scope:
            hub = self._hub_host()
            hub_token = bytes.fromhex(lease.token) if lease is not None else None
            if self._recv is not None:
                hub_y = None
                if hub is not None and lease is not None:
                    hub_y = await resolve(address_text(hub[0], lease.receiver_port))
                punch_to = [a for a in [await resolve(p) for p in self.record.punch] if a]
                await receiver_loop(
                    dict(self._recv.sockets),
                    punch_to=punch_to,
                    punch=punch_token(media.token),
                    hub=hub_y,
                    hub_token=hub_token,
                )
            elif self._send is not None and self._send.udp is not None:
                if hub is None or lease is None or hub_token is None:
                    return
                control = await resolve(address_text(hub[0], lease.sender_ports[2]))
                if control is not None:
                    await sender_loop(self._send.udp, control, hub_token)

    def _steer(self) -> None:
        """A sender on a `nat` path: follow the receiver's punches, or move to the hub."""
        chooser, link, media = self._chooser, self._send, self.stream.media
        if chooser is None or link is None or media is None:
            return
        now = trio.current_time()
        changed = False
        token = punch_token(media.token)
        punches, link.punches = link.punches, []
        wanted = {i for i in Interface if link.endpoints.endpoint(i) is not None}
        for data, source in punches:
            interface = punch_from(data, token)
            if interface is not None and interface in wanted:
                changed = chooser.punched(interface, source, now) or changed
        changed = chooser.tick(link.rtcp_received, now) or changed
        if changed:
            log.info("stream %s: sending %s", self.stream.uid, chooser.path)
            link.retarget(chooser.targets)

    @property
    def path(self) -> str:
        media = self.stream.media
        if self._chooser is not None:
            return self._chooser.path
        if media is None:
            return ""
        return "local" if media.mode == "local" else media.mode

    def _gain(self) -> float:
        return volume_to_amplitude(self.stream.settings.volume)

    def _attach(self) -> None:
        if self.record.committed:
            self._start_nat()
        if self._recv is not None and self._out is not None and self._out.mix is not None:
            self._mix_slot = self._out.mix.add(self._recv, self._gain())
        if self._send is not None and self._in is not None and self._in.fan is not None:
            # The volume applies where the stream is played: here only if that is not us.
            gain = self._gain() if self.stream.destination.is_external else 1.0
            self._fan_slot = self._in.fan.add(self._send, gain)

    def _session_event(self, kind: str, data: dict[str, Any]) -> None:
        """A session started: give it the stream's fixed latency bounds. A session ended:
        keep its counters (the end's totals include the sessions that came and went)."""
        if kind == "session.ended":
            final = data.get("metrics")
            if isinstance(final, SessionMetrics):
                for name in _TOTALS:
                    self._ended[name] = self._ended.get(name, 0) + getattr(final, name)
                for name, value in _fec_counters(final).items():
                    self._ended_fec[name] = self._ended_fec.get(name, 0) + value
            return
        bounds = fixed_bounds_ns(self.stream.settings)
        if kind != "session.started" or bounds is None or self._recv is None:
            return
        session = self._recv.receiver.session(data["ssrc"])
        if session is not None:
            session.set_latency_bounds(*bounds)

    # -- messages -----------------------------------------------------------------------

    async def handle(self, msg: Any) -> Any:
        match msg:
            case GetEndInfo():
                return self.info()
            case Commit(punch=punch):
                if punch:
                    self.record.punch = list(punch)
                return await self._commit()
            case Patch(patch=patch):
                return await self._patch(patch)
            case GetMetrics():
                return self.metrics()
        return await super().handle(msg)

    async def _commit(self) -> EndInfo:
        if self.record.committed:
            raise Conflict(f"the {self.role} of stream {self.stream.uid} is committed already")
        self.life.to(StreamState.STARTING)
        await self._choose_path()
        self.record.committed = True
        # Audio flows from here: the first packet does not wait for the disk. A save that
        # fails fails the commit, and the setup's rollback removes the end.
        self._attach()
        await self._save()
        self._announce()
        return self.info()

    async def _choose_path(self) -> None:
        """A sender on a `nat` path, before its first packet: wait (at most
        `PUNCH_WAIT_S`) for the receiver's punches, which prove a direct path and tell
        the receiver's public addresses; without one, the hub's relay it is."""
        chooser, link, media = self._chooser, self._send, self.stream.media
        if chooser is None or link is None or link.udp is None or media is None:
            return
        token = punch_token(media.token)
        wanted = {i for i in Interface if link.endpoints.endpoint(i) is not None}
        now = trio.current_time()
        seen = await wait_punches(link.udp, token, wanted, PUNCH_WAIT_S)
        for interface, source in seen.items():
            chooser.punched(interface, source, now)
        chooser.settle(bool(seen), now)
        log.info("stream %s: sending %s (punches from %s)", self.stream.uid, chooser.path, seen)
        link.retarget(chooser.targets)

    async def _patch(self, patch: StreamPatch) -> EndInfo:
        settings = self.stream.settings
        if patch.volume is not UNSET:
            settings = msgspec.structs.replace(settings, volume=patch.volume)
        if patch.latency is not UNSET:
            lat = settings.latency
            changes = {k: v for k, v in msgspec.structs.asdict(patch.latency).items()}
            lat = msgspec.structs.replace(
                lat, **{k: v for k, v in changes.items() if v is not UNSET}
            )
            assert lat.target_ms is not None
            low, high = lat.min_ms, lat.max_ms
            if (low is not None and high is not None and low >= high) or (
                not lat.adaptive
                and (
                    (low is not None and low >= lat.target_ms)
                    or (high is not None and high <= lat.target_ms)
                )
            ):
                raise InvalidRequest(
                    "invalid body: latency: need min_ms < target_ms < max_ms",
                    details=[{"in": "body", "field": "latency"}],
                )
            settings = msgspec.structs.replace(settings, latency=lat)
        self.record.stream = msgspec.structs.replace(self.stream, settings=settings)
        # Applied between two chunks: plain assignments the audio loop reads.
        gain = self._gain()
        if self._mix_slot is not None:
            self._mix_slot.gain = gain
        if self._fan_slot is not None and self.stream.destination.is_external:
            self._fan_slot.gain = gain
        if self._recv is not None and patch.latency is not UNSET:
            lat = settings.latency
            bounds = fixed_bounds_ns(settings)
            if lat.adaptive and lat.min_ms is not None and lat.max_ms is not None:
                bounds = (round(lat.min_ms * _MS), round(lat.max_ms * _MS))
            if bounds is not None:
                for m in self._recv.receiver.metrics():
                    session = self._recv.receiver.session(m.ssrc)
                    if session is not None:
                        session.set_latency_bounds(*bounds)
        if self.record.committed:
            await self._save()
        return self.info()

    # -- state --------------------------------------------------------------------------

    def info(self) -> EndInfo:
        return EndInfo(
            stream=self.stream,
            role=self.role,
            peer=self.peer,
            state=self.life.state,
            reason=self.life.reason,
            since=self.life.since,
            committed=self.record.committed,
            endpoints=self.record.endpoints,
            path=self.path,
        )

    def _set(self, state: StreamState, reason: str = "") -> None:
        if not self.life.can(state):
            return  # e.g. a check racing a stop: the stop wins
        if self.life.to(state, reason):
            if state is StreamState.ACTIVE:
                self._ever_active = True
            self._announce()
            if self.life.terminal and self.record.committed:
                self.record.final_state, self.record.final_reason = state, reason
                self.nursery.start_soon(self._save)

    def _announce(self) -> None:
        self._publish(
            "stream.state",
            self.stream.uid,
            {
                "stream": self.stream.uid,
                "role": self.role,
                "state": self.life.state.value,
                "reason": self.life.reason,
            },
        )

    async def _watch(self) -> None:
        while True:
            await trio.sleep(CHECK_S)
            await self._check()

    async def _check(self) -> None:
        if self.life.terminal:
            return
        if self.life.state is StreamState.PENDING:
            if time.monotonic() > self._deadline:
                self._expire(self.stream.uid, self.role)
            return
        if not self._opened:
            await self._reopen_quietly()
            if not self._opened:
                return
        self._measure()
        self._steer()
        gone = self._other_half_gone()
        if gone:
            self._set(StreamState.DEGRADED, gone)
            return
        if self._recv is not None:
            bus = self._out
            playing = any(m.state is SessionState.PLAYING for m in self._recv.receiver.metrics())
            if bus is not None and bus.broken:
                self._set(StreamState.DEGRADED, f"device: {bus.broken}")
            elif playing:
                self._set(StreamState.ACTIVE)
            elif self._ever_active:
                self._set(StreamState.DEGRADED, "no audio from the sender")
        elif self._in is not None:
            source = self._in
            if source.ended:
                self._set(StreamState.STOPPED, "the source ended")
            elif source.broken:
                self._set(StreamState.DEGRADED, f"device: {source.broken}")
            elif self._flowing and (silent := self._receiver_silence()):
                self._set(StreamState.DEGRADED, silent)
            elif self._flowing:
                self._set(StreamState.ACTIVE)
            elif self._ever_active:
                self._set(StreamState.DEGRADED, "the source delivers no audio")

    def _receiver_silence(self) -> str:
        """Why an external receiver seems gone ("" if it reports, or cannot be heard)."""
        if self._reports is None or self._send is None:
            return ""
        return self._reports.silence(len(self._send.sender.metrics().receivers))

    def _other_half_gone(self) -> str:
        """Why the instance holding the other end cannot be reached ("" when it can)."""
        spec = self.stream
        other = spec.source if self.role == "receiver" else spec.destination
        if other.is_external or other.peer is None or self._peers is None:
            return ""
        return offline_reason(self._peers, other.peer)

    def _measure(self) -> None:
        """Bitrate over the last check, and whether the source moved."""
        now = time.monotonic()
        then, chunks0, bytes0 = self._last
        chunks = self._in.fan.chunks if self._in is not None and self._in.fan else 0
        octets = self._bytes()
        self._flowing = chunks > chunks0
        if now > then:
            self._bitrate = max(0.0, (octets - bytes0) * 8 / (now - then))
        self._last = (now, chunks, octets)

    def _bytes(self) -> int:
        if self._send is not None:
            m = self._send.sender.metrics()
            return m.source_bytes + m.repair_bytes + m.rtcp_bytes
        if self._recv is not None:
            settings = self.stream.settings
            enc = encoding(settings)
            samples = samples_for_duration(round(settings.packet_ms * _MS), enc.rate)
            footer = 0 if settings.fec.scheme == "none" else 6
            packet = 12 + samples * enc.frame_bytes + footer
            received = sum(m.received for m in self._recv.receiver.metrics())
            return (received + self._ended.get("received", 0)) * packet
        return 0

    # -- metrics ------------------------------------------------------------------------

    def metrics(self) -> EndMetrics:
        receiver = sender = None
        if self._recv is not None:
            sessions = self._recv.receiver.metrics()
            playing = [s for s in sessions if s.state is SessionState.PLAYING] or sessions
            first = playing[0] if playing else None
            ended = self._ended

            def total(name: str) -> int:
                return ended.get(name, 0) + sum(int(getattr(s, name)) for s in sessions)

            device_underruns = 0
            if self._out is not None and self._out.mix is not None:
                stats = getattr(self._out.mix.sink, "stats", None)
                if stats is not None:
                    device_underruns = stats().underruns
            receiver = ReceiverEndMetrics(
                sessions=len(sessions),
                packetsReceived=total("received"),
                packetsLost=total("lost"),
                packetsDiscarded=total("late"),
                recovered_packets=total("recovered"),
                late_packets=total("late"),
                concealedSamples=total("concealed_samples"),
                jitter=first.jitter_ms / 1000 if first else 0.0,
                latency_ms=first.latency_ms if first else 0.0,
                target_latency_ms=first.target_ms
                if first
                else self.stream.settings.latency.target_ms or 0.0,
                drift_ppm=first.drift_ppm if first else 0.0,
                underruns=total("underruns") + device_underruns,
                device_underruns=device_underruns,
                bitrate_bps=round(self._bitrate, 1),
                counters={
                    k: v
                    for k, v in msgspec.structs.asdict(self._recv.receiver.counters).items()
                    if isinstance(v, int)
                },
                session_metrics=[msgspec.to_builtins(s) for s in sessions],
                fec=self._fec_totals(sessions),
                rtcp=self._rtcp_stats(),
                rtcp_foreign=total("rtcp_foreign"),
            )
        if self._send is not None:
            m = self._send.sender.metrics()
            rtts = [r.rtt_ms for r in m.receivers if r.rtt_ms is not None]
            e2e = [r.e2e_latency_ms for r in m.receivers if r.e2e_latency_ms is not None]
            sender = SenderEndMetrics(
                packetsSent=m.source_packets,
                bytesSent=m.source_bytes + m.repair_bytes,
                fecPacketsSent=m.repair_packets,
                bitrate_bps=round(self._bitrate, 1),
                rtt_ms=rtts[0] if rtts else None,
                e2e_latency_ms=e2e[0] if e2e else None,
                receivers=[msgspec.to_builtins(r) for r in m.receivers],
            )
        return EndMetrics(
            stream=self.stream.uid,
            role=self.role,
            peer=self.peer,
            state=self.life.state,
            reason=self.life.reason,
            time=time.time(),
            receiver=receiver,
            sender=sender,
        )

    def _fec_totals(self, sessions: list[SessionMetrics]) -> dict[str, int]:
        """The FEC readers' counters, summed over every session the end had."""
        out = dict(self._ended_fec)
        for session in sessions:
            for name, value in _fec_counters(session).items():
                out[name] = out.get(name, 0) + value
        return out

    def _rtcp_stats(self) -> dict[str, int]:
        reporter = self._recv.reporter if self._recv is not None else None
        if reporter is None:
            return {}
        stats = msgspec.structs.asdict(reporter.stats)
        return {k: v for k, v in stats.items() if isinstance(v, int)}

    async def _save(self) -> None:
        await self._store.ask(PutSetting("stream_end", self.uid, msgspec.to_builtins(self.record)))


async def _resolved(ext: ExternalEndpoints) -> dict[Interface, Address]:
    """The numeric addresses of a slot's URIs (those that resolve)."""
    out: dict[Interface, Address] = {}
    for interface, uri in (
        (Interface.SOURCE, ext.source),
        (Interface.REPAIR, ext.repair),
        (Interface.CONTROL, ext.control),
    ):
        if uri is None:
            continue
        address = await resolve(uri.split("://", 1)[1])
        if address is not None:
            out[interface] = address
    return out


def _fec_counters(session: SessionMetrics) -> dict[str, int]:
    if session.fec is None:
        return {}
    fields = msgspec.structs.asdict(session.fec)
    return {k: v for k, v in fields.items() if k not in _FEC_GAUGES and isinstance(v, int)}
