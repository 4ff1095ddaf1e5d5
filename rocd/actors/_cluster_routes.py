"""How the cluster actor reaches and lists instances beyond its direct links: relayed
links (where one can run: `_relay_path`), UDP probes of a rendezvous, the instances
known only through a peer (`_indirect`), and the addresses a rendezvous saw peers at.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import msgspec
import trio

from rocd.config import ClusterConfig
from rocd.errors import RocdError
from rocd.net.signalling import (
    KeyPair,
    ProbeServer,
    SessionCarrier,
    Switchboard,
    learn_udp_address,
    serve_probes,
)

from ._actor import ActorRef
from ._cluster_server import ClusterServer
from ._cluster_types import ClusterListenError
from ._indirect_peer import IndirectPeer
from ._node import PeerInfo, SetObservedUdp
from ._peer import PeerActor, RelayPath
from ._peer_handle import PeerHandle
from ._relay_types import GetProbeTicket
from ._remote_peer import RemotePeer
from ._supervisor import Publish, Supervisor
from ._trust import TrustBook

log = logging.getLogger("rocd.cluster")

#: Seconds between two UDP probes of the rendezvous this instance links to.
PROBE_EVERY = 60.0


class ClusterRoutes:
    """The cluster actor's relaying and indirect-peer part (a mixin of `Cluster`)."""

    uid: str
    config: ClusterConfig
    keys: KeyPair
    book: TrustBook
    switchboard: Switchboard
    peer_actors: Supervisor
    probe_endpoint: tuple[str, int] | None
    _server: ClusterServer | None
    _node: ActorRef
    _publish: Publish
    _probing: set[str]

    if TYPE_CHECKING:  # given by Actor and Cluster

        @property
        def nursery(self) -> trio.Nursery: ...

        def _trusted_infos(self) -> list[PeerInfo]: ...

    def _seen(self, info: PeerInfo) -> PeerInfo:
        """`info` with the addresses this instance, or a rendezvous, saw it come from."""
        server = self._server
        observed = server.observed.get(info.uid, "") if server else ""
        udp = server.observed_udp.get(info.uid, "") if server else ""
        if not udp:
            udp = info.observed_udp or self._udp_from_rendezvous(info.uid)
        if (observed, udp) == (info.observed, info.observed_udp):
            return info
        return msgspec.structs.replace(info, observed=observed or info.observed, observed_udp=udp)

    def _udp_from_rendezvous(self, uid: str) -> str:
        for actor in self._linked_actors():
            entry = actor.remote.mirror.peers.get(uid)
            if entry is not None and entry.observed_udp:
                return entry.observed_udp
        return ""

    def _linked_actors(self) -> list[PeerActor]:
        return [
            child
            for child in self.peer_actors.children()
            if isinstance(child, PeerActor) and child.remote.online
        ]

    def _indirect_infos(self, known: set[str]) -> list[PeerInfo]:
        """Instances our peers list that we do not trust ourselves (first peer wins,
        an online entry over an offline one)."""
        found: dict[str, PeerInfo] = {}
        for actor in self._linked_actors():
            for uid, entry in actor.remote.mirror.peers.items():
                if uid in known or entry.key == self.keys.public or entry.key in self.book.peers:
                    continue
                if uid in found and not (found[uid].state != "online" == entry.state):
                    continue
                found[uid] = IndirectPeer.listed(entry, actor.remote.uid)
        return list(found.values())

    def _indirect_uids(self) -> list[str]:
        """The uids of the instances known only through a trusted peer (for `Peers`)."""
        known = {t.uid for t in self.book.peers.values() if t.uid} | {self.uid}
        return [info.uid for info in self._indirect_infos(known)]

    def _indirect(self, uid: str) -> PeerHandle | None:
        """The handle of an instance known only through a trusted peer (for `Peers`)."""
        if not uid or uid == self.uid or any(t.uid == uid for t in self.book.peers.values()):
            return None
        best: IndirectPeer | None = None
        for actor in self._linked_actors():
            entry = actor.remote.mirror.peers.get(uid)
            if entry is None or entry.key == self.keys.public or entry.key in self.book.peers:
                continue
            if best is None or (entry.state == "online" and best.info.state != "online"):
                best = IndirectPeer(IndirectPeer.listed(entry, actor.remote.uid), actor.remote)
        return best

    def _announce_change(self, uid: str) -> None:
        for info in self._trusted_infos():
            if info.uid == uid:
                self._publish("peer.changed", uid, {"uid": uid, "peer": msgspec.to_builtins(info)})

    # -- relayed links -------------------------------------------------------------------

    def _relay_path(self, remote: RemotePeer) -> RelayPath | None:
        """Where a relayed link to `remote` can run now, if anywhere: back over the
        connection it dialled to us, or through a rendezvous that has it online."""
        key = remote.trusted.key
        for carrier in self.switchboard.carriers_of_key(key):
            if isinstance(carrier, SessionCarrier):
                return carrier, carrier.uid
        uid = remote.uid or self._uid_of(key)
        if not uid:
            return None
        for actor in self._linked_actors():
            through = actor.carrier
            entry = actor.remote.mirror.peers.get(uid)
            if (
                through is not None
                and through.rendezvous
                and entry is not None
                and entry.state == "online"
                and entry.key == key
                and entry.route in ("direct", "reverse")
            ):
                return through, uid
        return None

    def _uid_of(self, key: str) -> str:
        """A peer's uid, when only our peers' lists know it yet."""
        for actor in self._linked_actors():
            for uid, entry in actor.remote.mirror.peers.items():
                if entry.key == key:
                    return uid
        return ""

    def _linked(self, remote: RemotePeer) -> None:
        """A link opened: if it leads to a rendezvous, learn our UDP address from it."""
        welcome = remote.welcome
        if (
            welcome is None
            or "rendezvous" not in welcome.capabilities
            or remote.route[0] != "direct"
            or remote.uid in self._probing
        ):
            return
        self._probing.add(remote.uid)
        self.nursery.start_soon(self._probe_rendezvous, remote)

    async def _probe_rendezvous(self, remote: RemotePeer) -> None:
        """While the link to rendezvous `remote` is up: ask it for a ticket, send UDP
        probes with it, and keep the address it saw (now and then, as NATs forget)."""
        host = remote.trusted.address.removeprefix("tcp://").rpartition(":")[0].strip("[]")
        try:
            while remote.online and host:
                try:
                    ticket = await remote.forward("cluster", remote.uid, GetProbeTicket())
                    address = await _probe(host, ticket.port, bytes.fromhex(ticket.token))
                except (RocdError, OSError, ValueError) as exc:
                    log.info("no UDP probe answer from %s: %s", remote.uid, exc)
                else:
                    self._node.tell_nowait(SetObservedUdp(address))
                await trio.sleep(PROBE_EVERY)
        finally:
            self._probing.discard(remote.uid)

    async def _serve_probes(self, endpoint: str) -> None:
        """A rendezvous: answer UDP probes on its listener's host and port number (or
        `probe_port`)."""
        host, _, port = endpoint.removeprefix("tcp://").rpartition(":")
        host = host.strip("[]")
        port_number = self.config.probe_port or int(port)
        family = trio.socket.AF_INET6 if ":" in host else trio.socket.AF_INET
        sock = trio.socket.socket(family, trio.socket.SOCK_DGRAM)
        try:
            await sock.bind((host, port_number))
        except OSError as exc:
            sock.close()
            raise ClusterListenError(
                exc.errno, f"cannot answer UDP probes on {host}:{port_number}: {exc.strerror}"
            ) from None
        assert self._server is not None
        self._server.probe_port = sock.getsockname()[1]
        self.probe_endpoint = (host, self._server.probe_port)
        server = ProbeServer(self._server.probe_seen)
        self.nursery.start_soon(_serve_and_close, sock, server)
        log.info("rendezvous: UDP probe echo on %s:%d", host, self._server.probe_port)


async def _serve_and_close(sock: trio.socket.SocketType, server: ProbeServer) -> None:
    with sock:
        await serve_probes(sock, server)


async def _probe(host: str, port: int, token: bytes) -> str:
    """host:port our UDP datagrams are seen from by the rendezvous at host:port."""
    family = trio.socket.AF_INET6 if ":" in host else trio.socket.AF_INET
    with trio.socket.socket(family, trio.socket.SOCK_DGRAM) as sock:
        await sock.bind(("::" if family == trio.socket.AF_INET6 else "0.0.0.0", 0))
        seen_host, seen_port = await learn_udp_address(sock, (host, port), token=token)
    return f"[{seen_host}]:{seen_port}" if ":" in seen_host else f"{seen_host}:{seen_port}"
