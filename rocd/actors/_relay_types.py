"""What crosses between instances for relaying and rendezvous: UDP probe tickets, and a
request made on a third instance on the asker's behalf (`Forward`)."""

from __future__ import annotations

import msgspec

from ._actor import Request


class ProbeTicket(msgspec.Struct, frozen=True):
    """What a rendezvous hands out for a UDP probe that says who sent it."""

    token: str  # hex, 16 bytes; put in the probe (rocd.net.signalling.encode_probe)
    port: int  # the rendezvous's UDP probe port (on the host its listener is dialled at)
    expires_s: float  # seconds the token stays valid


class GetProbeTicket(Request[ProbeTicket], frozen=True):
    """Asked of a rendezvous over the link: a token for one's next UDP probes."""


class Forward(Request[msgspec.Raw], frozen=True):
    """Asked of a peer: make `request` (a registered request, encoded) on its peer
    `peer`, as itself, and answer with that peer's reply (encoded). The asking key's
    role here must allow `request`, and this instance's role there too (checked there)."""

    peer: str  # uid of the instance to ask (one of the receiver's trusted peers)
    kind: str
    uid: str
    request: str  # the request's registered name
    body: msgspec.Raw
    timeout_s: float


class RelayCounts(msgspec.Struct, frozen=True):
    forwarded: int  # frames passed on between two other instances (a rendezvous)
    delivered: int  # frames of this instance's own relayed links
    dropped: dict[str, int]  # by reason


class ClusterStatus(msgspec.Struct, frozen=True):
    uid: str
    address: str  # the cluster listener, as peers dial it
    key: str
    rendezvous: bool  # relays for trusted peers, answers UDP probes
    probe: str | None  # host:port of the UDP probe echo (a rendezvous)
    discovery: bool  # announcing and browsing on the LAN
    neighbours: list[str]  # uids of the instances directly linked (either way)
    relay: RelayCounts


class GetClusterStatus(Request[ClusterStatus], frozen=True):
    pass
