"""A remote instance as this one sees it: the `PeerHandle` of a peer actor.

The API asks it like the local instance. Reads it can answer from the mirror are
answered there (marked stale with their age while the peer is offline); any other
request registered in `WIRE` crosses the link with a deadline, and comes back as the
remote's reply or the remote's error, re-raised here as the same RocdError. An offline
peer answers with 503, a silent one with 504, both naming the peer. The peer actor that
owns it sets its connection and its state; everyone else only reads it.
"""

from __future__ import annotations

import logging
import time
from typing import Any, TypeVar, cast

import msgspec
import trio

from rocd.errors import AskTimeout, NotFound, RocdError, Unavailable, error_from_code
from rocd.net.signalling import (
    ActorAddress,
    AskRefused,
    AskTimedOut,
    Connection,
    LinkDown,
    MalformedMessage,
    Welcome,
    decode_value,
    encode_value,
    fingerprint,
)

from ._actor import DEFAULT_ASK_TIMEOUT, Request
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
from ._mirror import Mirror
from ._node import GetPeerInfo, PeerInfo
from ._trust import TrustedPeer
from ._wire import WIRE

log = logging.getLogger("rocd.cluster")

R = TypeVar("R")


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
    def media_host(self) -> str | None:
        """Where this instance sends a stream's audio to that peer: the host it dials."""
        address = self.trusted.address
        if not address.startswith("tcp://"):
            return None
        return address[len("tcp://") :].rsplit(":", 1)[0].strip("[]")

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
        route, relay = self.route
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
            route=route,
            relay=relay,
            observed_udp=peer.observed_udp if peer else "",
        )

    @property
    def route(self) -> tuple[str | None, str]:
        """(route, relay uid): how the link runs now; (None, "") when offline."""
        conn = self.connection if self.online else None
        if conn is None:
            return None, ""
        if conn.carrier is None:
            return "direct", ""
        if conn.carrier.uid == self.uid:
            return "reverse", ""
        return "relay", conn.carrier.uid

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
