"""Peer actors: one per trusted remote instance, keeping a link to it and its mirror.

The actor dials the remote's listener, over and over: a link that closes (the peer said
bye, went silent for `dead_after` seconds, was killed) is marked offline at once and
dialled again after a backoff (0.5 s doubling to 5 s; reset after a link that got
through; a `Retry` skips the wait, e.g. when that peer has just dialled us). Each time a
link opens the actor subscribes to the remote's events, then loads the remote's state in
full (`GetSnapshot`) into its mirror, then applies and relays every event it receives:
the mirror stays current, and this instance's event bus carries the remote's events.
Events lost on the way (a gap in their numbers) cause a full reload.

When the peer cannot be dialled (behind a NAT, on a network this instance has no route
to) and a path for a relayed link exists (`PeerRuntime.relay_path`: back over the
connection the peer dialled to us, or through a rendezvous that lists the peer online),
the same link runs relayed: asks, replies and events cross inside the carrying link.
While relayed, a direct dial is tried again every `DIRECT_RETRY` seconds; when one gets
through the link moves to it (quietly: a `peer.changed` event, no left/joined).

The actor's face in the `Peers` directory is its `RemotePeer` (rocd.actors._remote_peer),
through which the API and the stream coordinator ask that instance like the local one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import trio
import zmq

from rocd.errors import RocdError
from rocd.net.signalling import (
    ActorAddress,
    AskRefused,
    AskTimedOut,
    Carrier,
    Closed,
    Connection,
    ConnectionCarrier,
    HandshakeFailed,
    KeyPair,
    LinkDown,
    LocalInfo,
    MalformedMessage,
    Misrouted,
    Switchboard,
    Welcome,
    decode_value,
    encode_value,
    fingerprint,
)

from ._actor import Actor, Request
from ._events import Event
from ._mirror import GetSnapshot, Snapshot
from ._peer_handle import Peers
from ._remote_peer import RemotePeer
from ._supervisor import Publish
from ._trust import TrustedPeer

log = logging.getLogger("rocd.cluster")

R = TypeVar("R")

#: Seconds between two dials of a peer that cannot be reached (doubling, up to MAX).
BACKOFF_MIN = 0.5
BACKOFF_MAX = 5.0
#: Seconds a snapshot may take.
SNAPSHOT_TIMEOUT = 10.0
#: Seconds a direct dial may take when a relayed link is there to fall back on.
DIRECT_TIMEOUT_WITH_RELAY = 2.0
#: Seconds between direct dials while the link runs relayed.
DIRECT_RETRY = 5.0

#: Where a relayed link to a peer can run: a carrier, and the peer's uid.
RelayPath = tuple[Carrier, str]


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
    switchboard: Switchboard | None = None  # carriers and relayed links (None: no relaying)
    #: A relayed link's path to a peer we cannot dial, if there is one now.
    relay_path: Callable[[RemotePeer], RelayPath | None] = lambda remote: None
    #: Told when a link opens or moves (the cluster then probes a rendezvous, updates lists).
    linked: Callable[[RemotePeer], None] = lambda remote: None
    heartbeat_interval: float = 1.0
    dead_after: float = 3.0
    handshake_timeout: float = 5.0


class Retry(msgspec.Struct, frozen=True):
    """Dial again now (skip the backoff)."""


class TryAddress(msgspec.Struct, frozen=True):
    """The peer said (or was announced) that it listens at `address` now, not where this
    instance dials it: when a direct dial where it is known to be fails (not when one is
    merely cut short), dial there, and keep the address (persisted) once a link through
    it is welcomed. Its word proves nothing by itself, the handshake with its key does,
    and an address that works (one a user gave, say a NAT's forwarded port, where the
    peer names its inside address) is never replaced."""

    address: str


class Leave(Request[None], frozen=True):
    """Say bye on the link (if open) and stop dialling until the actor restarts."""

    reason: str
    code: str = "closing"


class SetTrust(msgspec.Struct, frozen=True):
    """The peer's trust entry changed (its role, its learnt uid)."""

    trusted: TrustedPeer


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
        self._moving = False  # the link is moving from relayed to direct
        self._carrier: ConnectionCarrier | None = None
        self._candidate: str | None = None  # an address to try next (TryAddress)
        #: The last dial did not get through only because nothing answered there (not
        #: cancelled by a Retry, not refused by the peer: both prove nothing about the
        #: address, or prove it right).
        self._unanswered = False

    @property
    def carrier(self) -> ConnectionCarrier | None:
        """The direct link, as a carrier of relayed ones (None while not directly linked)."""
        carrier = self._carrier
        if carrier is None or carrier.connection is not self.remote.connection:
            return None
        return carrier

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
            case TryAddress(address=address):
                # Kept for the next dial that fails, even while a link runs: it may be
                # dead and not noticed yet (tried only after the known address failed).
                if address != self.remote.trusted.address:
                    self._candidate = address
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
        conn: Connection | None = None
        while not self._leaving:
            self._retry_now = False
            if conn is None:
                conn = await self._dial()
            if conn is not None:
                backoff = BACKOFF_MIN
                conn = await self._keep(conn)
                if conn is not None:
                    continue  # moved to a direct link: follow it at once
            if self._leaving:
                return
            if self._retry_now:
                continue
            with trio.move_on_after(backoff) as scope:
                self._retry_scope = scope
                await trio.sleep_forever()
            self._retry_scope = None
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _dial(self) -> Connection | None:
        """A welcomed link: direct if it gets through, else relayed if a path exists."""
        rt = self._runtime
        path = rt.relay_path(self.remote)
        timeout = DIRECT_TIMEOUT_WITH_RELAY if path is not None else rt.handshake_timeout
        conn = await self._start_direct(timeout)
        if conn is not None or self._leaving or self._retry_now:
            return conn
        path = rt.relay_path(self.remote)
        if path is None:
            return None
        reason = self.remote.reason
        conn = await self._start(self._relayed(*path))
        if conn is None and not self.remote.refusal:
            self.remote.reason = f"{reason}; and through {path[0].uid}: {self.remote.reason}"
        return conn

    async def _start_direct(self, handshake_s: float) -> Connection | None:
        """A welcomed direct link where the peer is known to be, or else at the address
        it said it moved to, if it did (kept then, see TryAddress)."""
        conn = await self._start(self._direct(handshake_s))
        if conn is not None:
            self._candidate = None  # where it is known to be works: nothing to learn
            return conn
        candidate = self._candidate
        if candidate is None or not self._unanswered or self._leaving:
            return None  # (the candidate waits for a dial that nothing answers)
        self._candidate = None
        if candidate == self.remote.trusted.address:
            return None
        reason = self.remote.reason
        conn = await self._start(self._direct(handshake_s, candidate))
        if conn is None:
            log.info("peer %s: not reached at %s", self.remote.uid, candidate)
            self.remote.reason = reason
            return None
        old = self.remote.trusted.address
        moved = msgspec.structs.replace(self.remote.trusted, address=candidate)
        self.remote.trusted = moved
        self._runtime.learned(self.remote.trusted)  # kept (persisted) by the cluster
        log.info("peer %s: now at %s (was %s)", self.remote.uid, candidate, old)
        return conn

    def _direct(self, handshake_timeout: float, address: str | None = None) -> Connection:
        rt, trusted = self._runtime, self.remote.trusted
        return Connection(
            rt.ctx,
            rt.keys,
            address=address or trusted.address,
            server_key=trusted.key,
            local=rt.local(),
            join=trusted.join,
            heartbeat_interval=rt.heartbeat_interval,
            dead_after=rt.dead_after,
            handshake_timeout=handshake_timeout,
            on_misrouted=self._misrouted,
        )

    def _relayed(self, carrier: Carrier, uid: str) -> Connection:
        rt, trusted = self._runtime, self.remote.trusted
        return Connection(
            rt.ctx,
            rt.keys,
            address=f"via {carrier.uid}",
            server_key=trusted.key,
            local=rt.local(),
            join=trusted.join,
            heartbeat_interval=rt.heartbeat_interval,
            dead_after=rt.dead_after,
            handshake_timeout=rt.handshake_timeout,
            carrier=carrier,
            peer_uid=uid,
        )

    async def _start(self, conn: Connection) -> Connection | None:
        """Run `conn` in the actor's nursery until welcomed; None if it did not get
        through (the reason is on the remote)."""
        rt = self._runtime
        self._unanswered = False
        if conn.carrier is not None and rt.switchboard is not None:
            rt.switchboard.dial(conn.link.peer_uid, conn)
        try:
            with trio.CancelScope() as greeting:
                self._greeting_scope = greeting
                welcome: Welcome = await self.nursery.start(conn.run)
        except HandshakeFailed as exc:
            self._failed(exc.closed)
            self._unanswered = not (exc.closed.by_remote or exc.closed.code in ("refused", "join"))
            self._hang_up(conn)
            return None
        except LinkDown as exc:
            self.remote.reason = str(exc)
            self._unanswered = True
            self._hang_up(conn)
            return None
        finally:
            self._greeting_scope = None
        if greeting.cancelled_caught:
            self._hang_up(conn)
            return None
        if welcome.uid == rt.local().uid:
            self.remote.reason = "it has this instance's uid (a copied state directory?)"
            await conn.aclose(self.remote.reason, "refused")
            self._hang_up(conn)
            return None
        return conn

    def _hang_up(self, conn: Connection) -> None:
        switchboard = self._runtime.switchboard
        if conn.carrier is not None and switchboard is not None:
            switchboard.hang_up(conn.link.peer_uid, conn)

    async def _keep(self, conn: Connection) -> Connection | None:
        """Follow a welcomed link until it ends; returns the direct link that replaced
        it, if a relayed one was upgraded."""
        assert conn.welcome is not None
        moved, self._moving = self._moving, False
        self._online(conn, conn.welcome, quiet=moved)
        carrier = self._carry(conn)
        upgraded: list[Connection] = []
        try:
            async with trio.open_nursery() as nursery:
                if conn.carrier is not None:
                    nursery.start_soon(self._upgrade, conn, upgraded)
                await self._follow(conn)
                nursery.cancel_scope.cancel(reason="link closed")
        finally:
            if carrier is not None and self._runtime.switchboard is not None:
                self._runtime.switchboard.remove_carrier(carrier, "its link closed")
            self._hang_up(conn)
            self._moving = bool(upgraded) and not self._leaving
            self._offline(conn, quiet=self._moving)
        if upgraded and not self._moving:
            await upgraded[0].aclose("leaving")
        return upgraded[0] if self._moving else None

    def _carry(self, conn: Connection) -> ConnectionCarrier | None:
        """A direct link carries relayed ones too."""
        switchboard, welcome = self._runtime.switchboard, conn.welcome
        if conn.carrier is not None or switchboard is None or welcome is None:
            return None
        carrier = ConnectionCarrier(
            conn,
            welcome.uid,
            self.remote.trusted.key,
            rendezvous="rendezvous" in welcome.capabilities,
        )
        self._carrier = carrier
        switchboard.add_carrier(carrier)
        return carrier

    def _misrouted(self, event: Misrouted) -> None:
        switchboard, carrier = self._runtime.switchboard, self._carrier
        conn = self.remote.connection
        if switchboard is None or carrier is None or conn is not carrier.connection:
            return
        switchboard.receive(carrier, event.frame, event.data)

    async def _upgrade(self, relayed: Connection, upgraded: list[Connection]) -> None:
        """While `relayed` runs, dial directly now and then; when it gets through, keep
        the direct link and end the relayed one."""
        while relayed.open:
            with trio.move_on_after(DIRECT_RETRY) as scope:
                self._retry_scope = scope
                await trio.sleep_forever()
            self._retry_scope = None
            reason = self.remote.reason
            direct = await self._start_direct(DIRECT_TIMEOUT_WITH_RELAY)
            self.remote.reason = reason
            if direct is not None:
                upgraded.append(direct)
                log.info("peer %s: a direct link works now", self.remote.uid)
                await relayed.aclose("a direct link works now")
                return

    def _failed(self, closed: Closed) -> None:
        remote = self.remote
        joining = bool(remote.trusted.join)
        if closed.code == "join" or (joining and closed.code == "refused"):
            why = closed.reason
            if closed.code == "refused":
                # The inviter's handshake lets unknown keys in only while one of its
                # invites is open: none is, so ours is unknown to it, used or expired.
                why = f"the join token is unknown, used or expired ({why})"
            remote.reason = f"join refused: {why}"
            remote.refusal = RocdError(remote.reason)
            remote.settled.set()
            self._leaving = True
            self._runtime.join_refused(remote.trusted, why)
        elif closed.by_remote or closed.code == "refused":
            remote.reason = f"refused: {closed.reason}"
        elif closed.code == "wrong-key":
            remote.reason = f"not at {remote.trusted.address}: {closed.reason}"
        else:
            remote.reason = f"no answer from {remote.trusted.address} ({closed.reason})"

    def _online(self, conn: Connection, welcome: Welcome, *, quiet: bool = False) -> None:
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
        rt.linked(remote)
        log.info("peer %s (%s) online at %s", welcome.name, welcome.uid, conn.address)
        info = remote.info()
        rt.publish(
            "peer.changed" if quiet else "peer.joined",
            welcome.uid,
            {
                "uid": welcome.uid,
                "name": welcome.name,
                "address": trusted.address,
                "fingerprint": remote.fingerprint,
                "role": trusted.role,
                "route": info.route,
                "peer": msgspec.to_builtins(info),
            },
        )

    def _offline(self, conn: Connection, *, quiet: bool = False) -> None:
        remote = self.remote
        closed = conn.closed_by
        remote.connection = None
        remote.last_contact = conn.link.last_heard
        remote.reason = closed.reason if closed is not None else "link closed"
        if closed is not None and closed.by_remote:
            remote.reason = f"the peer said bye: {closed.reason}"
        if quiet:
            return
        log.info("peer %s (%s) offline: %s", remote.name, remote.uid, remote.reason)
        self._runtime.publish(
            "peer.left",
            remote.uid,
            {
                "uid": remote.uid,
                "name": remote.name,
                "reason": remote.reason,
                "peer": msgspec.to_builtins(remote.info()),
            },
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
