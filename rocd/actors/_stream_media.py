"""How a stream's audio gets from its sender's instance to its receiver's.

Three paths, chosen by the coordinator when the stream is set up (`MediaPlan`):

- local: both ends on one instance; the sender sends to 127.0.0.1.
- direct: the sender's instance dials the receiver's instance itself (its peer link is
  `direct`): the audio goes to the host it dials, at the ports the receiver bound. Each
  instance answers for its own view (`GetMediaPath`), so a stream set up from a third
  instance takes the path its sender sees, not the coordinator's.
- nat: the sender cannot reach the receiver's instance (the receiver is behind a NAT,
  or on a network only a rendezvous reaches). The coordinator leases a relay on a hub
  (`HubLease`: a rendezvous both ends link to directly) and the ends try a direct path
  first (hole punching): the receiver's sockets learn their public mappings from the
  hub's UDP probe echo, the sender sends there, and the receiver sends a few punch
  datagrams towards the sender first so that its NAT lets the answer in; a punch that
  reaches the sender tells it the receiver's mapping as well. A sender that hears no
  receiver report within `DIRECT_WAIT_S` moves to the hub relay, which always works
  (both ends register with it from their own sockets, with the lease's token).

`media_path` computes one instance's view from its `Peers`.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from rocd.errors import NotFound
from rocd.net.roc import Address, Interface

from ._actor import Request
from ._peer_handle import Peers

#: Seconds a sender on a `nat` path waits for a receiver report on the direct path
#: before it moves to the hub relay.
DIRECT_WAIT_S = 1.5

Route = Literal["local", "direct", "reverse", "relay", "indirect", "offline", "unknown"]


class MediaPath(msgspec.Struct, frozen=True, kw_only=True):
    """How one instance reaches another for media."""

    route: Route
    #: The host to send to (set when the route lets this instance reach that one: local
    #: or direct), as this instance dials it.
    host: str = ""
    #: Hubs this instance links to directly (uids; itself first when it runs one).
    hubs: list[str] = []


class GetMediaPath(Request[MediaPath], frozen=True, kw_only=True):
    """Asked of an instance's stream host: how it reaches instance `peer` for media."""

    peer: str


class HubLease(msgspec.Struct, frozen=True, kw_only=True):
    """A relay on a hub for one stream: where each side sends, and the token both sides
    register with (hex, 16 bytes; it crosses only encrypted cluster links)."""

    hub: str  # uid of the hub instance
    token: str
    #: Ports on the hub the sender sends source, repair and control datagrams to.
    sender_ports: tuple[int, int, int]
    #: The port on the hub the receiver's sockets register with (and send RTCP to).
    receiver_port: int
    #: The hub's UDP probe echo (None: it answers no probes).
    probe_port: int | None = None


HUB_KIND = "stream_hub"


class AllocateRelay(Request[HubLease], frozen=True, kw_only=True):
    """Asked of a hub: a relay for stream `stream` (the same one again if it has it)."""

    stream: str


class ReleaseRelay(Request[bool], frozen=True, kw_only=True):
    """Asked of a hub: the relay of `stream` is no longer needed (False: it had none)."""

    stream: str


class MediaPlan(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The path a stream's audio takes (see the module docstring)."""

    mode: Literal["local", "direct", "nat"] = "direct"
    hub: HubLease | None = None
    #: `nat`: the token of the stream's punch datagrams (hex, 16 bytes).
    token: str = ""


Targets = dict[Interface, Address]


class PathChooser:
    """Where a sender on a `nat` path sends now (pure; times in seconds).

    It starts on the direct path when it knows the receiver's public addresses, and
    otherwise waits for the receiver's punches (which tell them) or for `wait` seconds.
    A direct path that brings no receiver report within `wait` seconds is given up for
    the hub's relay, for good (no flapping between the two)."""

    def __init__(
        self, direct: Targets | None, hub: Targets | None, now: float, wait: float = DIRECT_WAIT_S
    ) -> None:
        self.direct: Targets = dict(direct or {})
        self.hub = hub
        self.wait = wait
        self.path = "punched" if self.direct else "waiting"
        self._since = now
        self._reports = 0
        self.confirmed = False

    @property
    def targets(self) -> Targets:
        if self.path == "hub" and self.hub is not None:
            return dict(self.hub)
        return dict(self.direct)

    def punched(self, interface: Interface, source: Address, now: float) -> bool:
        """A punch came from the receiver's `interface` socket at `source`; True when the
        targets changed."""
        if self.path == "hub" or self.direct.get(interface) == source:
            return False
        self.direct[interface] = source
        if self.path == "waiting":
            self.path, self._since = "punched", now
        return True

    def settle(self, punched: bool, now: float) -> None:
        """Before the first packet: without a punch from the receiver (no proof of a
        direct path) the hub's relay is taken when there is one."""
        if not punched and self.hub is not None:
            self.path = "hub"
        self._since = now

    def tick(self, reports: int, now: float) -> bool:
        """`reports`: receiver reports taken so far; True when the targets changed."""
        if reports > self._reports:
            self._reports = reports
            self.confirmed = True
        if self.confirmed or self.path == "hub" or self.hub is None:
            return False
        if now - self._since >= self.wait:
            self.path = "hub"
            return True
        return False


def media_path(peers: Peers, to: str, *, hub_here: bool = False) -> MediaPath:
    """How this instance (the local one of `peers`) reaches instance `to` for media."""
    hubs = _hubs(peers, hub_here)
    try:
        handle = peers.get(to)
    except NotFound:
        return MediaPath(route="unknown", hubs=hubs)
    if handle.local:
        return MediaPath(route="local", host="127.0.0.1", hubs=hubs)
    if not _online(handle):
        return MediaPath(route="offline", hubs=hubs)
    route = getattr(handle, "route", (None, ""))[0]
    if route is None:
        return MediaPath(route="indirect", hubs=hubs)
    host = getattr(handle, "media_host", None)
    if route == "direct" and isinstance(host, str) and host:
        return MediaPath(route="direct", host=host, hubs=hubs)
    return MediaPath(route=route, hubs=hubs)


def media_host(peers: Peers, uid: str) -> str | None:
    """The host this instance sends media to for instance `uid` (127.0.0.1 for itself),
    when it dials that instance directly; else None."""
    path = media_path(peers, uid)
    return path.host or None


def _online(handle: object) -> bool:
    online = getattr(handle, "online", None)
    if isinstance(online, bool):
        return online
    info = getattr(handle, "info", None)
    return getattr(info, "state", "online") == "online"


def _hubs(peers: Peers, hub_here: bool) -> list[str]:
    out = [peers.local.uid] if hub_here else []
    for handle in peers.remotes():
        welcome = getattr(handle, "welcome", None)
        route = getattr(handle, "route", (None, ""))[0]
        if (
            _online(handle)
            and route == "direct"
            and welcome is not None
            and "hub" in welcome.capabilities
        ):
            out.append(handle.uid)
    return out


def peer_started(peers: Peers, uid: str) -> float | None:
    """When instance `uid` started (Unix time) as its link last said; None when unknown
    (or this instance). A new value means it restarted."""
    try:
        handle = peers.get(uid)
    except NotFound:
        return None
    if handle.local:
        return None
    welcome = getattr(handle, "welcome", None)
    started = getattr(welcome, "started", None)
    if started is None:
        started = getattr(getattr(handle, "info", None), "started", None)
    return float(started) if isinstance(started, (int, float)) and started else None


def offline_reason(peers: Peers, uid: str) -> str:
    """Why instance `uid` cannot be asked now ("" when it can: online, or this one)."""
    try:
        handle = peers.get(uid)
    except NotFound:
        return f"peer {uid} is not known here"
    if handle.local or _online(handle):
        return ""
    why = getattr(handle, "reason", "") or "unreachable"
    return f"peer {uid} is offline: {why}"


def _register_on_the_wire() -> None:
    from ._wire import WIRE

    WIRE.register(GetMediaPath, "viewer")
    WIRE.register(AllocateRelay, "operator")
    WIRE.register(ReleaseRelay, "operator")


_register_on_the_wire()
