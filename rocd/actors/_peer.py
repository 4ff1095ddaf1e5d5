"""Peer actors: one per trusted remote instance, keeping a link to it and its mirror.

The actor dials the remote's listener, over and over: a link that closes (the peer said
bye, went silent for `dead_after` seconds, was killed) is marked offline at once and
dialled again after a backoff (0.5 s doubling to 5 s; reset after a link that got
through; a `Retry` skips the wait, e.g. when that peer has just dialled us). Each time a
link opens the actor subscribes to the remote's events, then loads the remote's state in
full (`GetSnapshot`) into its mirror, then applies and relays every event it receives:
the mirror stays current, and this instance's event bus carries the remote's events.
Events lost on the way (a gap in their numbers) cause a full reload.

`RemotePeer` is the actor's face in the `Peers` directory: the API asks it like the
local instance. Reads it can answer from the mirror are answered there (marked stale
with their age while the peer is offline); any other request crosses the link with a
deadline, and comes back as the remote's reply or the remote's error, re-raised here as
the same RocdError. An offline peer answers writes with 503, a silent one with 504, both
naming the peer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import msgspec
import trio
import zmq

from rocd.errors import AskTimeout, NotFound, RocdError, Unavailable, error_from_code
from rocd.net.signalling import (
    ActorAddress,
    AskRefused,
    AskTimedOut,
    Closed,
    Connection,
    HandshakeFailed,
    KeyPair,
    LinkDown,
    LocalInfo,
    MalformedMessage,
    Welcome,
    decode_value,
    encode_value,
    fingerprint,
)

from ._actor import DEFAULT_ASK_TIMEOUT, Actor, Request
from ._audio_types import (
    DeleteVad,
    Device,
    DeviceList,
    GetDevice,
    GetDrivers,
    GetVad,
    ListDevices,
    ListVads,
    Vad,
)
from ._events import Event
from ._mirror import GetSnapshot, Mirror, Snapshot
from ._node import GetPeerInfo, PeerInfo
from ._peer_handle import Peers
from ._supervisor import Publish
from ._trust import TrustedPeer
from ._wire import WIRE

log = logging.getLogger("rocd.cluster")

R = TypeVar("R")

#: Seconds between two dials of a peer that cannot be reached (doubling, up to MAX).
BACKOFF_MIN = 0.5
BACKOFF_MAX = 5.0
#: Seconds a snapshot may take.
SNAPSHOT_TIMEOUT = 10.0


@dataclass
class PeerRuntime:
    """What every peer actor of this instance shares."""

    ctx: zmq.Context[Any]
    keys: KeyPair
    local: Callable[[], LocalInfo]  # what this instance says about itself, now
    publish: Publish
    relay: Callable[[Event], None]  # a remote event into this instance's bus
    peers: Peers
    learned: Callable[[TrustedPeer], None]  # a handshake taught us the peer's uid/name
    join_refused: Callable[[TrustedPeer, str], None]  # an invite we used was turned down
    heartbeat_interval: float = 1.0
    dead_after: float = 3.0
    handshake_timeout: float = 5.0


class Retry(msgspec.Struct, frozen=True):
    """Dial again now (skip the backoff)."""


class Leave(Request[None], frozen=True):
    """Say bye on the link (if open) and stop dialling until the actor restarts."""

    reason: str
    code: str = "closing"


class SetTrust(msgspec.Struct, frozen=True):
    """The peer's trust entry changed (its role, its learnt uid)."""

    trusted: TrustedPeer


class RemotePeer:
    """A remote instance as this one sees it; see the module docstring."""

    def __init__(self, trusted: TrustedPeer) -> None:
        self.trusted = trusted
        self.fingerprint = fingerprint(trusted.key)
        self.mirror = Mirror()
        self.connection: Connection | None = None
        self.welcome: Welcome | None = None
        self.reason = "not reached yet"
        self.last_contact: float | None = None  # trio time the link was last heard from
        self.settled = trio.Event()  # set once the first handshake succeeded or was refused
        self.refusal: RocdError | None = None
        self._uid = trusted.uid

    # -- PeerHandle --------------------------------------------------------------------

    @property
    def uid(self) -> str:
        return self._uid

    @property
    def local(self) -> bool:
        return False

    @property
    def online(self) -> bool:
        return self.connection is not None and self.connection.open

    @property
    def name(self) -> str:
        if self.mirror.peer is not None:
            return self.mirror.peer.name
        return self.welcome.name if self.welcome is not None else self.trusted.name

    async def ask(
        self, kind: str, uid: str, request: Request[R], *, within: float = DEFAULT_ASK_TIMEOUT
    ) -> R:
        """Answer from the mirror when it can (see `read`), else ask across the link."""
        if self.mirror.synced:
            found, value = self.read(kind, uid, request)
            if found:
                return cast(R, value)
        return await self.forward(kind, uid, request, within=within)

    def read(self, kind: str, uid: str, request: Request[Any]) -> tuple[bool, Any]:
        """(True, answer) for the reads the mirror holds, else (False, None)."""
        mirror = self.mirror
        match request:
            case GetPeerInfo():
                return True, self.info()
            case GetDrivers():
                return True, list(mirror.drivers)
            case ListDevices():
                devices = sorted(mirror.devices.values(), key=lambda d: d.id)
                return True, self._marked(DeviceList(list(mirror.drivers), devices))
            case GetDevice():
                device = mirror.devices.get(uid)
                if device is None:
                    raise NotFound(f"no device {uid!r}", details=[{"in": "path", "field": "uid"}])
                return True, self._marked(device)
            case ListVads():
                vads = sorted(mirror.vads.values(), key=lambda v: (v.name, v.uid))
                return True, [self._marked(v) for v in vads]
            case GetVad():
                vad = mirror.vads.get(uid)
                if vad is None:
                    raise NotFound(f"no VAD {uid!r}", details=[{"in": "path", "field": "uid"}])
                return True, self._marked(vad)
        return False, None

    async def forward(
        self, kind: str, uid: str, request: Request[R], *, within: float = DEFAULT_ASK_TIMEOUT
    ) -> R:
        """Ask actor (kind, uid) of the remote instance across the link."""
        entry = WIRE.of(request)
        conn = self.connection
        who = f"peer {self.name or self.fingerprint} ({self.uid or self.fingerprint})"
        details = [{"peer": self.uid}]
        if conn is None or not conn.open:
            raise Unavailable(f"{who} is offline: {self.reason}", details=details)
        try:
            body = await conn.ask(
                ActorAddress(kind, uid), entry.name, encode_value(request), within
            )
            reply = decode_value(body, entry.reply)
        except AskRefused as exc:
            error = exc.error
            where = f"{error.actor.kind}/{error.actor.uid}" if error.actor else "the link"
            log.debug("%s: %s refused %s: %s", who, where, entry.name, error.message)
            raise error_from_code(error.code, error.message, error.details) from None
        except AskTimedOut:
            raise AskTimeout(
                f"{who} did not answer {entry.name} within {within:g} s", details=details
            ) from None
        except LinkDown as exc:
            raise Unavailable(f"{who} is offline: {exc}", details=details) from None
        except MalformedMessage as exc:
            raise Unavailable(f"{who} answered {entry.name} unreadably: {exc}") from None
        self._learn(request, reply)
        return cast(R, reply)

    # -- views -------------------------------------------------------------------------

    def info(self) -> PeerInfo:
        """This peer as GET /peers lists it."""
        peer, welcome = self.mirror.peer, self.welcome
        now, now_unix = trio.current_time(), time.time()
        conn = self.connection if self.online else None
        heard = self.heard()
        rtt = conn.link.rtt if conn is not None else None
        return PeerInfo(
            uid=self.uid,
            name=self.name,
            is_self=False,
            state="online" if conn is not None else "offline",
            version=peer.version if peer else welcome.software if welcome else "",
            api=peer.api if peer else welcome.api if welcome else "",
            started=peer.started if peer else welcome.started if welcome else 0.0,
            key=self.trusted.key,
            fingerprint=self.fingerprint,
            address=self.trusted.address,
            role=self.trusted.role,
            rtt_ms=round(rtt * 1000, 3) if rtt is not None else None,
            last_seen=round(now_unix - (now - heard), 3) if heard is not None else None,
            reason="" if conn is not None else self.reason,
        )

    def heard(self) -> float | None:
        """Trio time the peer was last heard from (None: never)."""
        if self.connection is not None:
            return self.connection.link.last_heard
        return self.last_contact

    def _marked(self, value: Any) -> Any:
        """`value` marked stale with its age while the peer is offline."""
        heard = self.heard()
        if self.online or heard is None:
            return value
        age = round(trio.current_time() - heard, 3)
        return msgspec.structs.replace(value, stale=True, age_s=age)

    def _learn(self, request: Request[Any], reply: Any) -> None:
        """Writes answered: keep the mirror as the reply says (their events follow)."""
        if isinstance(reply, Device):
            self.mirror.put_device(reply)
        elif isinstance(reply, Vad):
            self.mirror.put_vad(reply)
        elif isinstance(reply, PeerInfo):
            self.mirror.peer = reply  # its own view of itself (a rename)
        elif isinstance(request, DeleteVad):
            self.mirror.drop_vad(request.uid)


class PeerActor(Actor):
    """Keeps the link to one trusted peer; see the module docstring."""

    kind = "peer"

    def __init__(self, trusted: TrustedPeer, runtime: PeerRuntime) -> None:
        super().__init__(fingerprint(trusted.key))
        self.remote = RemotePeer(trusted)
        self._runtime = runtime
        self._retry_scope: trio.CancelScope | None = None
        self._greeting_scope: trio.CancelScope | None = None
        self._retry_now = False
        self._leaving = False

    async def on_start(self) -> None:
        self._leaving = False
        if self.remote.uid and self.remote.uid != self._runtime.local().uid:
            # Known from an earlier run: reachable by uid at once (offline until linked).
            self._runtime.peers.add(self.remote)
        self.nursery.start_soon(self._keep_linked)

    async def on_stop(self) -> None:
        self.remote.connection = None

    async def handle(self, msg: Any) -> Any:
        match msg:
            case Retry():
                # Waiting to dial again, or dialling a peer that had not let us in yet:
                # start over at once (it has just shown it is there).
                self._retry_now = True
                for scope in (self._retry_scope, self._greeting_scope):
                    if scope is not None:
                        scope.cancel()
                return None
            case SetTrust(trusted=trusted):
                self.remote.trusted = trusted
                return None
            case Leave(reason=reason, code=code):
                self._leaving = True
                conn = self.remote.connection
                if conn is not None:
                    await conn.aclose(reason, code)
                return None
        return await super().handle(msg)

    # -- the link ------------------------------------------------------------------------

    async def _keep_linked(self) -> None:
        backoff = BACKOFF_MIN
        while not self._leaving:
            self._retry_now = False
            if await self._attempt():
                backoff = BACKOFF_MIN
            if self._leaving:
                return
            if self._retry_now:
                continue
            with trio.move_on_after(backoff) as scope:
                self._retry_scope = scope
                await trio.sleep_forever()
            self._retry_scope = None
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _attempt(self) -> bool:
        """One link, from dialling to its end; True if it got through the handshake."""
        rt, trusted = self._runtime, self.remote.trusted
        conn = Connection(
            rt.ctx,
            rt.keys,
            address=trusted.address,
            server_key=trusted.key,
            local=rt.local(),
            join=trusted.join,
            heartbeat_interval=rt.heartbeat_interval,
            dead_after=rt.dead_after,
            handshake_timeout=rt.handshake_timeout,
        )
        async with trio.open_nursery() as nursery:
            try:
                with trio.CancelScope() as greeting:
                    self._greeting_scope = greeting
                    welcome: Welcome = await nursery.start(conn.run)
            except HandshakeFailed as exc:
                self._failed(exc.closed)
                return False
            except LinkDown as exc:
                self.remote.reason = str(exc)
                return False
            finally:
                self._greeting_scope = None
            if greeting.cancelled_caught:
                return False
            if welcome.uid == rt.local().uid:
                self.remote.reason = "it has this instance's uid (a copied state directory?)"
                await conn.aclose(self.remote.reason, "refused")
                return False
            self._online(conn, welcome)
            try:
                await self._follow(conn)
            finally:
                self._offline(conn)
        return True

    def _failed(self, closed: Closed) -> None:
        remote = self.remote
        joining = bool(remote.trusted.join)
        if closed.code == "join" or (joining and closed.code == "refused"):
            remote.reason = f"join refused: {closed.reason}"
            remote.refusal = RocdError(remote.reason)
            remote.settled.set()
            self._leaving = True
            self._runtime.join_refused(remote.trusted, closed.reason)
        elif closed.by_remote or closed.code == "refused":
            remote.reason = f"refused: {closed.reason}"
        else:
            remote.reason = f"no answer from {remote.trusted.address} ({closed.reason})"

    def _online(self, conn: Connection, welcome: Welcome) -> None:
        rt, remote = self._runtime, self.remote
        if remote.uid and remote.uid != welcome.uid:
            rt.peers.remove(remote.uid)
        remote._uid = welcome.uid
        remote.connection, remote.welcome, remote.reason = conn, welcome, ""
        rt.peers.add(remote)
        trusted = remote.trusted
        if (trusted.uid, trusted.name, trusted.join) != (welcome.uid, welcome.name, ""):
            remote.trusted = msgspec.structs.replace(
                trusted, uid=welcome.uid, name=welcome.name, join=""
            )
            rt.learned(remote.trusted)
        remote.settled.set()
        log.info("peer %s (%s) online at %s", welcome.name, welcome.uid, conn.address)
        rt.publish(
            "peer.joined",
            welcome.uid,
            {
                "uid": welcome.uid,
                "name": welcome.name,
                "address": trusted.address,
                "fingerprint": remote.fingerprint,
                "role": trusted.role,
            },
        )

    def _offline(self, conn: Connection) -> None:
        remote = self.remote
        closed = conn.closed_by
        remote.connection = None
        remote.last_contact = conn.link.last_heard
        remote.reason = closed.reason if closed is not None else "link closed"
        if closed is not None and closed.by_remote:
            remote.reason = f"the peer said bye: {closed.reason}"
        log.info("peer %s (%s) offline: %s", remote.name, remote.uid, remote.reason)
        self._runtime.publish(
            "peer.left",
            remote.uid,
            {"uid": remote.uid, "name": remote.name, "reason": remote.reason},
        )

    async def _follow(self, conn: Connection) -> None:
        """Subscribe, load the mirror, then apply and relay events until the link ends."""
        conn.subscribe([])
        await self._resync(conn)
        expected, lost = 1, conn.events_lost
        async for ev in conn.events:
            if ev.n != expected or conn.events_lost != lost:
                log.info("peer %s: events lost, reloading its state", self.remote.uid)
                lost = conn.events_lost
                await self._resync(conn)
            expected = ev.n + 1
            self.remote.mirror.apply(ev.kind, ev.subject, ev.data, ev.seq)
            self._runtime.relay(Event(ev.seq, ev.time, ev.kind, ev.peer, ev.subject, ev.data))

    async def _resync(self, conn: Connection) -> None:
        """Load the remote's state into the mirror (retrying while the link is open)."""
        address = ActorAddress("cluster", self.remote.uid)
        while conn.open:
            try:
                body = await conn.ask(
                    address, "GetSnapshot", encode_value(GetSnapshot()), SNAPSHOT_TIMEOUT
                )
                self.remote.mirror.load(decode_value(body, Snapshot))
                return
            except LinkDown:
                return
            except (AskRefused, AskTimedOut, MalformedMessage) as exc:
                log.warning("peer %s: no snapshot (%s); trying again", self.remote.uid, exc)
                await trio.sleep(1.0)
