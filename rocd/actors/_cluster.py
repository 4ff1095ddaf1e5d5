"""The cluster actor: this instance's identity among its peers, its trust, its links.

It owns, in its own nursery:

    cluster <uid>
    ├── ZAP handler   admits only trusted keys to the listener (CURVE handshake)
    ├── listener      the ROUTER peers dial; its sessions are served by ClusterServer
    ├── probe echo    (a rendezvous) answers UDP probes: where a peer's datagrams come from
    ├── discovery     (on a LAN) announces this instance over mDNS, lists the others
    └── peers         supervisor of the peer actors, one per trusted key with an address

and the trust book (trusted keys and roles, open invites, refused keys), loaded from the
store at start and written through on every change. Trust is given by pairing
(`AddPeer`: trust a key and dial it; the other side trusts back the same way), by the
configuration (`[cluster] peers`), or by a one-time invite (`CreateInvite` here, `Join`
there) which sets up trust both ways in one handshake. `RemovePeer` revokes it: the link
and every session of that key end with a Bye.

The key pair lives in the state directory (made at first start, mode 0600); the public
key and the listener's address are told to the node actor, so GET /peers/self shows them.

Links that cannot be dialled run relayed (rocd.net.signalling._switchboard): the cluster
owns the switchboard, whose carriers are the listener's direct sessions and the peer
actors' direct connections, and tells peer actors where a relayed link can run
(`_relay_path`: back over a connection the peer dialled here, or through a rendezvous
peer whose mirrored peer list has it online). With `[cluster] rendezvous = true` the
switchboard forwards between its carriers, and a UDP echo tells peers where their
datagrams come from; every instance probes the rendezvous it links to, so its own
`observed_udp` is known to it and, through the rendezvous's peer list, to the others.

`GET /peers` lists, besides this instance's trusted and refused peers, the instances
announced on the LAN (`discovered`) and those known only through a trusted peer's
mirrored peer list (`via`); `Peers` reaches the latter through that peer (`Forward`).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import trio
import zmq

from rocd import __version__
from rocd.config import ClusterConfig
from rocd.errors import Conflict, InvalidRequest, NotFound, RocdError
from rocd.net.signalling import (
    CAPABILITIES,
    LINGER_MS,
    Announcement,
    Hello,
    Invite,
    KeyPair,
    Listener,
    LocalInfo,
    MalformedMessage,
    MdnsDiscovery,
    Session,
    Switchboard,
    check_public_key,
    decode_invite,
    encode_invite,
    fingerprint,
    hash_secret,
    load_or_create_keypair,
    new_secret,
    serve_zap,
)

from ._actor import Actor, ActorRef
from ._audio_types import ListDevices, ListVads
from ._cluster_lan import ClusterLan
from ._cluster_routes import ClusterRoutes
from ._cluster_server import ClusterServer
from ._cluster_types import (
    INVITE_TTL_MAX,
    AddPeer,
    ClusterListenError,
    CreateInvite,
    InviteCreated,
    Join,
    ListPeers,
    RemovePeer,
    SayGoodbye,
    SetPeerRole,
    advertised,
    cluster_address,
)
from ._events import Event, GetBusStats
from ._mirror import GetSnapshot, Snapshot
from ._node import GetPeerInfo, PeerInfo, SetApiUrl, SetClusterIdentity
from ._peer import Leave, PeerActor, PeerRuntime, Retry, SetTrust, TryAddress
from ._peer_handle import Peers
from ._registry import Registry
from ._relay_types import ClusterStatus, GetClusterStatus, RelayCounts
from ._remote_peer import RemotePeer
from ._roles import check_role
from ._supervisor import Publish, Supervisor
from ._trust import (
    DeleteInvite,
    DeleteTrusted,
    ListInvites,
    ListTrusted,
    PendingInvite,
    PutInvite,
    PutTrusted,
    TrustBook,
    TrustedPeer,
)

log = logging.getLogger("rocd.cluster")


class _Adopt(msgspec.Struct, frozen=True):
    trusted: TrustedPeer
    invite_id: str


class _Learned(msgspec.Struct, frozen=True):
    trusted: TrustedPeer


class _JoinRefused(msgspec.Struct, frozen=True):
    trusted: TrustedPeer
    reason: str


class _Met(msgspec.Struct, frozen=True):
    key: str


class _Moved(msgspec.Struct, frozen=True):
    """A trusted peer says it listens at another address than the one we dial."""

    key: str
    address: str


class _Changed(msgspec.Struct, frozen=True):
    """Something in how a peer is listed changed here (its observed UDP address)."""

    uid: str


#: Seconds between two UDP probes of the rendezvous this instance links to.
PROBE_EVERY = 60.0
#: Instances discovered on the LAN that are remembered (the oldest is forgotten first).
MAX_DISCOVERED = 64


class Cluster(ClusterRoutes, ClusterLan, Actor):
    kind = "cluster"
    mailbox_capacity = 256

    def __init__(
        self,
        uid: str,
        config: ClusterConfig,
        *,
        state_dir: Path,
        store: ActorRef,
        node: ActorRef,
        bus: ActorRef,
        relay: Callable[[Event], None],
        registry: Registry,
        peers: Peers,
        publish: Publish,
        name: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(uid)
        self.config = config
        self._name_of = name
        self._state_dir = state_dir
        self._store = store
        self._node = node
        self._bus = bus
        self._relay = relay
        self._registry = registry
        self._peers = peers
        self._publish = publish
        self.book = TrustBook()
        self.keys = KeyPair("", "")
        self.address = ""
        self._ctx: zmq.Context[Any] | None = None
        self._listener: Listener | None = None
        self._server: ClusterServer | None = None
        self.peer_actors = Supervisor("peers", registry=registry, publish=publish)
        self.switchboard = Switchboard(uid, rendezvous=config.rendezvous)
        self.probe_endpoint: tuple[str, int] | None = None  # a rendezvous's UDP echo
        self._probing: set[str] = set()  # uids of the rendezvous being probed
        #: Instances announced on the LAN, by uid, with the Unix time last heard of.
        self.discovered: dict[str, tuple[Announcement, float]] = {}
        self.discovery: MdnsDiscovery | None = None
        self._name = ""
        self._api = ""
        self._started = 0.0

    def supervisors(self) -> list[Supervisor]:
        return [self.peer_actors]

    # -- life cycle ----------------------------------------------------------------------

    async def on_start(self) -> None:
        cfg = self.config
        self.keys = await trio.to_thread.run_sync(load_or_create_keypair, self._state_dir)
        me = await self._node.ask(GetPeerInfo())
        self._name, self._api, self._started = me.name, me.api, me.started
        self.book = TrustBook()
        for trusted in await self._store.ask(ListTrusted()):
            self.book.peers[trusted.key] = trusted
        for invite in await self._store.ask(ListInvites(time.time())):
            self.book.invites[invite.secret_hash] = invite
        for static in cfg.peers:
            key = _config_key(static.key)
            address = cluster_address(static.address)
            known = self.book.peers.get(key)
            self.book.peers[key] = TrustedPeer(
                key=key,
                role=static.role,
                address=address,
                uid=known.uid if known else "",
                name=known.name if known else "",
                source="config",
            )
        self._ctx = zmq.Context()
        self._server = ClusterServer(
            uid=self.uid,
            name=lambda: self._name,
            book=self.book,
            registry=self._registry,
            bus=self._bus,
            nursery=self.nursery,
            publish=self._publish,
            adopt=self._adopted,
            met=self._met,
        )
        self.switchboard = Switchboard(self.uid, rendezvous=cfg.rendezvous)
        self._server.switchboard = self.switchboard
        self._server.peers = self._peers
        self._server.observed_changed = lambda uid: self._tell_self(_Changed(uid))
        self._peers.indirect = self._indirect
        self._peers.listed = self._indirect_uids
        await self.nursery.start(serve_zap, self._ctx, self._server.decide)
        self._listener = Listener(
            self._ctx,
            self.keys,
            bind=f"tcp://{cfg.listen}",
            local=self.local,
            handler=self._server,
            dead_after=cfg.dead_after_s,
            on_misrouted=self._server.misrouted,
        )
        self._server.listener = self._listener
        self.switchboard.listener = self._listener
        try:
            endpoint = await self.nursery.start(self._listener.run)
        except zmq.ZMQError as exc:
            why = zmq.strerror(exc.errno) if exc.errno is not None else str(exc)
            raise ClusterListenError(
                exc.errno, f"cannot listen on {cfg.listen} for the cluster: {why}"
            ) from None
        self.address = advertised(cfg, endpoint)
        if cfg.rendezvous:
            await self._serve_probes(endpoint)
        if cfg.discovery:
            self._discover(endpoint)
        self._node.tell_nowait(
            SetClusterIdentity(self.keys.public, fingerprint(self.keys.public), self.address)
        )
        log.info("cluster listener on %s (key %s)", self.address, fingerprint(self.keys.public))
        self.peer_actors = Supervisor("peers", registry=self._registry, publish=self._publish)
        await self.nursery.start(self.peer_actors.run)
        for trusted in list(self.book.peers.values()):
            if trusted.address:
                await self._start_peer(trusted)
        if cfg.join:
            try:
                await self._join(cfg.join, again_ok=True)
            except RocdError as exc:
                log.error("cannot join with the token given: %s", exc)

    async def on_stop(self) -> None:
        self._peers.indirect = None
        self._peers.listed = None
        for child in self.peer_actors.children():
            if isinstance(child, PeerActor) and child.remote.uid:
                self._peers.remove(child.remote.uid)
        self.peer_actors.close("cluster stopped")
        if self._ctx is not None:
            # Every socket is closed by now; terminating waits (briefly, in a worker
            # thread) for the frames they still held, such as the last Byes.
            ctx, self._ctx = self._ctx, None
            await trio.to_thread.run_sync(ctx.destroy, LINGER_MS)

    def local(self) -> LocalInfo:
        """What this instance says about itself in its hellos and welcomes."""
        if self._name_of is not None:
            self._name = self._name_of()
        capabilities: tuple[str, ...] = (*CAPABILITIES, "relay")
        if self.config.rendezvous:
            capabilities = (*capabilities, "rendezvous")
        if self.config.hub_on:
            capabilities = (*capabilities, "hub")
        return LocalInfo(
            uid=self.uid,
            name=self._name,
            software=__version__,
            address=self.address,
            api=self._api,
            started=self._started,
            capabilities=capabilities,
            key=self.keys.public,
        )

    # -- messages ------------------------------------------------------------------------

    async def handle(self, msg: Any) -> Any:
        match msg:
            case GetSnapshot():
                return await self._snapshot()
            case ListPeers():
                return self._list()
            case GetClusterStatus():
                return self._status()
            case AddPeer():
                return await self._add(msg)
            case RemovePeer(peer=peer):
                await self._remove(self._find(peer))
                return None
            case SetPeerRole(peer=peer, role=role):
                return await self._set_role(self._find(peer), check_role(role))
            case CreateInvite():
                return await self._invite(msg)
            case Join(token=token, again_ok=again_ok):
                return await self._join(token, again_ok=again_ok)
            case SayGoodbye():
                await self._goodbye()
                return None
            case SetApiUrl(url=url):
                self._api = url
                return None
            case _Adopt(trusted=trusted, invite_id=invite_id):
                await self._store.ask(PutTrusted(trusted))
                await self._store.ask(DeleteInvite(invite_id))
                if trusted.address:
                    await self._start_peer(trusted)
                return None
            case _Learned(trusted=trusted):
                self.book.peers[trusted.key] = trusted
                if trusted.source != "config":
                    await self._store.ask(PutTrusted(trusted))
                return None
            case _JoinRefused(trusted=trusted, reason=reason):
                log.error("joining %s was refused: %s", trusted.address, reason)
                await self._forget(trusted)
                return None
            case _Moved(key=key, address=address):
                # A configured peer is dialled where the configuration says, always.
                moved, entry = self._actor_of(key), self.book.trusted(key)
                if moved is not None and entry is not None and entry.source != "config":
                    moved.ref.tell_nowait(TryAddress(address))
                return None
            case _Met(key=key):
                actor = self._actor_of(key)
                if actor is not None and actor.remote.route[0] != "direct":
                    actor.ref.tell_nowait(Retry())
                return None
            case _Changed(uid=uid):
                self._announce_change(uid)
                return None
        return await super().handle(msg)

    def _tell_self(self, msg: Any) -> None:
        try:
            self.ref.tell_nowait(msg)
        except RocdError as exc:
            log.warning("cluster: %s dropped: %s", type(msg).__name__, exc)

    def _adopted(self, trusted: TrustedPeer, invite: PendingInvite) -> None:
        self._tell_self(_Adopt(trusted, invite.id))

    def _moved(self, key: str, address: str) -> None:
        """A trusted peer is said to listen at `address` (see _peer.TryAddress)."""
        self._tell_self(_Moved(key, address))

    def _met(self, trusted: TrustedPeer, hello: Hello, session: Session) -> None:
        if not trusted.address and hello.address:
            learnt = msgspec.structs.replace(trusted, address=hello.address)
            self.book.peers[trusted.key] = learnt
            self._tell_self(_Adopt(learnt, ""))
        elif hello.address and hello.address != trusted.address:
            # Back on another port or host (a restart): dial it there, keep it if it works.
            self._moved(trusted.key, hello.address)
        self._tell_self(_Met(trusted.key))

    # -- peers ---------------------------------------------------------------------------

    def _runtime(self) -> PeerRuntime:
        assert self._ctx is not None
        return PeerRuntime(
            ctx=self._ctx,
            keys=self.keys,
            local=self.local,
            publish=self._publish,
            relay=self._relay,
            peers=self._peers,
            learned=lambda t: self._tell_self(_Learned(t)),
            join_refused=lambda t, why: self._tell_self(_JoinRefused(t, why)),
            switchboard=self.switchboard,
            relay_path=self._relay_path,
            linked=self._linked,
            heartbeat_interval=self.config.heartbeat_s,
            dead_after=self.config.dead_after_s,
        )

    async def _start_peer(self, trusted: TrustedPeer) -> PeerActor:
        actor = self._actor_of(trusted.key)
        if actor is not None:
            actor.ref.tell_nowait(SetTrust(trusted))
            return actor
        actor = PeerActor(trusted, self._runtime())
        await self.peer_actors.start_child(actor)
        return actor

    def _actor_of(self, key: str) -> PeerActor | None:
        for child in self.peer_actors.children():
            if isinstance(child, PeerActor) and child.remote.trusted.key == key:
                return child
        return None

    def _find(self, peer: str) -> TrustedPeer:
        for trusted in self.book.peers.values():
            if peer and peer in (trusted.uid, trusted.key, fingerprint(trusted.key)):
                return trusted
        raise NotFound(f"no peer {peer!r}", details=[{"in": "path", "field": "uid"}])

    def _list(self) -> list[PeerInfo]:
        """Trusted peers, refused keys, instances discovered on the LAN, then those
        known only through a trusted peer."""
        out = self._trusted_infos()
        for refused in self.book.refused.values():
            if refused.key in self.book.peers:
                continue
            out.append(
                PeerInfo(
                    uid="",
                    name="",
                    is_self=False,
                    state="refused",
                    version="",
                    api="",
                    started=0.0,
                    key=refused.key,
                    fingerprint=fingerprint(refused.key) if refused.key else "",
                    address=refused.address,
                    last_seen=refused.last_seen,
                    reason=f"{refused.reason} (refused {refused.count} times)",
                )
            )
        out.extend(self._discovered_infos())
        out.extend(self._indirect_infos({p.uid for p in out if p.uid} | {self.uid}))
        return out

    def _status(self) -> ClusterStatus:
        stats = self.switchboard.stats
        probe = self.probe_endpoint
        return ClusterStatus(
            uid=self.uid,
            address=self.address,
            key=self.keys.public,
            rendezvous=self.config.rendezvous,
            probe=f"{probe[0]}:{probe[1]}" if probe else None,
            discovery=self.discovery is not None,
            neighbours=sorted(self.switchboard.neighbours()),
            relay=RelayCounts(stats.forwarded, stats.delivered, dict(stats.dropped)),
        )

    def _trusted_infos(self) -> list[PeerInfo]:
        out: list[PeerInfo] = []
        for trusted in self.book.peers.values():
            actor = self._actor_of(trusted.key)
            remote = actor.remote if actor is not None else RemotePeer(trusted)
            out.append(self._seen(remote.info()))
        return out

    async def _add(self, msg: AddPeer) -> PeerInfo:
        if msg.uid and not msg.key:
            found = self.discovered.get(msg.uid)
            if found is None:
                raise NotFound(
                    f"no instance {msg.uid!r} discovered on the LAN; pair with its address and key",
                    details=[{"in": "body", "field": "uid"}],
                )
            msg = AddPeer(msg.address or found[0].address, found[0].key, msg.role)
        elif not msg.address:
            for announced, _ in self.discovered.values():
                if announced.key == msg.key.strip():
                    msg = AddPeer(announced.address, msg.key, msg.role)
                    break
        try:
            key = check_public_key(msg.key.strip())
        except ValueError as exc:
            raise InvalidRequest(
                f"invalid body: key: {exc}", details=[{"in": "body", "field": "key"}]
            ) from None
        if key == self.keys.public:
            raise Conflict(
                "key: that is this instance's own key (an instance does not pair with itself)",
                details=[{"in": "body", "field": "key"}],
            )
        address, role = cluster_address(msg.address), check_role(msg.role)
        known = self.book.peers.get(key)
        if known is not None and known.source == "config":
            raise Conflict(f"peer {fingerprint(key)} is set in the configuration file")
        trusted = TrustedPeer(
            key=key,
            role=role,
            address=address,
            uid=known.uid if known else "",
            name=known.name if known else "",
            added=known.added if known else time.time(),
        )
        await self._store.ask(PutTrusted(trusted))
        self.book.peers[key] = trusted
        self.book.refused.pop(key, None)
        self._server_role(key, role)
        actor = await self._start_peer(trusted)
        return actor.remote.info()

    def _server_role(self, key: str, role: str) -> None:
        if self._server is not None:
            self._server.set_role(key, role)

    async def _remove(self, trusted: TrustedPeer) -> None:
        if trusted.source == "config":
            raise Conflict(
                f"peer {fingerprint(trusted.key)} is set in the configuration file; remove it there"
            )
        actor = self._actor_of(trusted.key)
        if actor is not None:
            with contextlib.suppress(RocdError):
                await actor.ref.ask(Leave("trust revoked", "revoked"), within=1.0)
        if self._server is not None:
            self._server.revoke(trusted.key, "trust revoked")
        await self._forget(trusted)
        log.info("trust of %s (%s) revoked", trusted.name or "?", fingerprint(trusted.key))
        if trusted.uid:
            self._publish("peer.removed", trusted.uid, {"uid": trusted.uid})

    async def _forget(self, trusted: TrustedPeer) -> None:
        self.book.peers.pop(trusted.key, None)
        await self._store.ask(DeleteTrusted(trusted.key))
        actor = self._actor_of(trusted.key)
        if actor is not None:
            if actor.remote.uid:
                self._peers.remove(actor.remote.uid)
            await self.peer_actors.stop_child(PeerActor.kind, actor.uid, reason="trust revoked")

    async def _set_role(self, trusted: TrustedPeer, role: str) -> PeerInfo:
        updated = msgspec.structs.replace(trusted, role=role)
        if trusted.source != "config":
            await self._store.ask(PutTrusted(updated))
        self.book.peers[trusted.key] = updated
        self._server_role(trusted.key, role)
        actor = self._actor_of(trusted.key)
        if actor is None:
            return RemotePeer(updated).info()
        await actor.ref.tell(SetTrust(updated))
        return msgspec.structs.replace(actor.remote.info(), role=role)

    # -- invites ---------------------------------------------------------------------------

    async def _invite(self, msg: CreateInvite) -> InviteCreated:
        role = check_role(msg.role)
        if not 1.0 <= msg.ttl_s <= INVITE_TTL_MAX:
            raise InvalidRequest(
                f"invalid body: ttl_s: expected 1 to {INVITE_TTL_MAX:g} seconds",
                details=[{"in": "body", "field": "ttl_s"}],
            )
        secret, now = new_secret(), time.time()
        invite = PendingInvite(
            id=secrets.token_hex(4),
            secret_hash=hash_secret(secret),
            role=role,
            created=now,
            expires=now + msg.ttl_s,
        )
        await self._store.ask(PutInvite(invite))
        self.book.invites[invite.secret_hash] = invite
        token = encode_invite(Invite(self.address, self.keys.public, secret, self.uid, role))
        return InviteCreated(invite.id, token, role, invite.expires)

    async def _join(self, token: str, *, again_ok: bool = False) -> RemotePeer:
        try:
            invite = decode_invite(token)
        except MalformedMessage as exc:
            raise InvalidRequest(
                f"invalid body: token: {exc}", details=[{"in": "body", "field": "token"}]
            ) from None
        if invite.key == self.keys.public:
            raise InvalidRequest(
                "invalid body: token: this instance's own invite",
                details=[{"in": "body", "field": "token"}],
            )
        role = check_role(invite.role, field="token")
        known = self.book.peers.get(invite.key)
        if known is not None and not known.join:
            actor = self._actor_of(invite.key)
            if actor is None or not again_ok:
                raise Conflict(
                    f"already paired with the inviter ({fingerprint(invite.key)})",
                    details=[{"in": "body", "field": "token"}],
                )
            log.info("already joined %s", invite.address)
            return actor.remote
        trusted = TrustedPeer(
            key=invite.key,
            role=role,
            address=invite.address,
            uid=invite.uid,
            join=invite.secret,
            source="invite",
            added=time.time(),
        )
        await self._store.ask(PutTrusted(trusted))
        self.book.peers[invite.key] = trusted
        actor = await self._start_peer(trusted)
        return actor.remote

    # -- serving ---------------------------------------------------------------------------

    async def _snapshot(self) -> Snapshot:
        stats = await self._bus.ask(GetBusStats())
        me = await self._node.ask(GetPeerInfo())
        audio = self._registry.find("audio", self.uid)
        peers = self._trusted_infos()
        if audio is None:
            return Snapshot(stats.published, me, [], [], [], peers)
        listing = await audio.ask(ListDevices())
        vads = await audio.ask(ListVads())
        return Snapshot(stats.published, me, listing.drivers, listing.devices, vads, peers)

    async def _goodbye(self) -> None:
        async with trio.open_nursery() as nursery:
            for child in self.peer_actors.children():
                if isinstance(child, PeerActor) and child.remote.online:
                    nursery.start_soon(_leave, child.ref)
            if self._listener is not None:
                nursery.start_soon(self._listener.say_bye, "shutting down")


async def _leave(ref: ActorRef) -> None:
    with contextlib.suppress(RocdError):
        await ref.ask(Leave("shutting down"), within=0.5)


def _config_key(text: str) -> str:
    try:
        return check_public_key(text.strip())
    except ValueError as exc:
        raise InvalidRequest(f"[cluster] peers: key {text!r}: {exc}") from None
