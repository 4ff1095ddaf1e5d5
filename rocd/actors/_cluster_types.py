"""What the cluster actor is asked (pairing, invites, joins, roles), and the addresses it
deals in: a peer's `tcp://host:port`, and what this instance tells peers to dial."""

from __future__ import annotations

import contextlib
import socket

import msgspec

from rocd.config import ClusterConfig
from rocd.errors import InvalidRequest

from ._actor import Request
from ._node import PeerInfo
from ._remote_peer import RemotePeer

#: Seconds an invite lives unless told otherwise, and the bounds of what may be asked.
INVITE_TTL = 600.0
INVITE_TTL_MAX = 7 * 24 * 3600.0


class ClusterListenError(OSError):
    """The cluster listener cannot listen where the configuration says."""


class ListPeers(Request[list[PeerInfo]], frozen=True):
    """Every other instance this one knows: trusted peers, then keys it refused."""


class AddPeer(Request[PeerInfo], frozen=True):
    address: str  # tcp://host:port or host:port
    key: str  # Z85
    role: str = "operator"


class RemovePeer(Request[None], frozen=True):
    peer: str  # uid, key fingerprint or key


class SetPeerRole(Request[PeerInfo], frozen=True):
    peer: str
    role: str


class InviteCreated(msgspec.Struct, frozen=True):
    id: str
    token: str  # give it to the newcomer: `rocd serve --join TOKEN` or POST /cluster/join
    role: str  # what each side may do on the other once joined
    expires: float  # Unix time


class CreateInvite(Request[InviteCreated], frozen=True):
    role: str = "operator"
    ttl_s: float = INVITE_TTL


class Join(Request[RemotePeer], frozen=True):
    """Trust the inviter and dial it with the invite's secret; the reply is the peer's
    handle, whose `settled` event says when the inviter welcomed or refused us.
    Conflict if the inviter is trusted already (unless `again_ok`: a restart with the
    same `--join`)."""

    token: str
    again_ok: bool = False


class SayGoodbye(Request[None], frozen=True):
    """Tell every peer this instance is going away (before a shutdown)."""


def cluster_address(text: str, *, field: str = "address") -> str:
    """'host:port' or 'tcp://host:port' as tcp://host:port, or InvalidRequest."""
    rest = text.strip().removeprefix("tcp://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
        raise InvalidRequest(
            f"invalid body: {field}: expected tcp://HOST:PORT, got {text!r}",
            details=[{"in": "body", "field": field, "message": "expected tcp://HOST:PORT"}],
        )
    return f"tcp://{host}:{int(port)}"


def primary_address() -> str:
    """The address this machine reaches others from (no packet is sent)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        return str(s.getsockname()[0])
    return "127.0.0.1"


def advertised(config: ClusterConfig, endpoint: str) -> str:
    """What peers should dial: the configured address, else the bound one (this
    machine's primary address when bound to every address)."""
    host, _, port = endpoint.removeprefix("tcp://").rpartition(":")
    host = host.strip("[]")
    if config.advertise:
        want_host, sep, want_port = config.advertise.removeprefix("tcp://").rpartition(":")
        host, port = (want_host, want_port) if sep else (config.advertise, port)
    elif host in ("0.0.0.0", "::", "*", ""):
        host = primary_address()
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"
