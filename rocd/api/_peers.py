"""/peers: the instances of the cluster, this one marked "self": true.

Every per-instance resource hangs under /peers/{uid}/... (devices, VADs), and `self` is an
alias for the local instance's uid, so clients can address their own daemon without
looking its uid up first. A remote instance is answered through its peer actor: reads
from its mirror, changes forwarded to it (see rocd.actors.RemotePeer).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from rocd.actors import SELF, GetPeerInfo, ListPeers, LocalPeer, PeerHandle, PeerInfo, Rename
from rocd.errors import NotFound

from ._context import ApiContext
from ._routes import API


class PeerUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: str  # new display name, 1-64 printable characters


class PeersQuery(msgspec.Struct, forbid_unknown_fields=True):
    #: Only the instances in this state.
    state: Literal["online", "offline", "refused", "discovered"] | None = None


def resolve_peer(ctx: ApiContext, uid: str) -> str:
    """The uid a path names (`self` = this instance), or NotFound."""
    return handle_of(ctx, uid).uid


def handle_of(ctx: ApiContext, uid: str) -> PeerHandle:
    """The instance a path names (`self` = this one), or NotFound."""
    if ctx.peers is not None:
        return ctx.peers.get(uid)
    if uid in (SELF, ctx.node.uid):
        return LocalPeer(ctx.node.uid, ctx.registry)
    raise NotFound(f"no peer with uid {uid!r}", details=[{"in": "path", "field": "uid"}])


async def cluster_peers(ctx: ApiContext) -> list[PeerInfo]:
    """The other instances the cluster knows (trusted, then refused keys)."""
    if ctx.cluster is None:
        return []
    return await ctx.cluster.ask(ListPeers())


@API.route(
    "GET",
    "/peers",
    summary="List the instances of the cluster (this one first)",
    tag="peers",
    query=PeersQuery,
    response=list[PeerInfo],
    description=(
        "Every instance this one knows: itself (self: true), the peers it trusts "
        "(online or offline, with address, role, key fingerprint, round trip and when "
        "last seen) and the keys it refused lately (state refused)."
    ),
)
async def list_peers(ctx: ApiContext, query: PeersQuery) -> list[PeerInfo]:
    peers = [await ctx.node.ask(GetPeerInfo()), *await cluster_peers(ctx)]
    if query.state is not None:
        peers = [p for p in peers if p.state == query.state]
    return peers


@API.route(
    "GET",
    "/peers/{uid}",
    summary="One instance (`self` names this one; a peer not reached yet: its fingerprint)",
    tag="peers",
    response=PeerInfo,
    errors=(404,),
)
async def get_peer(ctx: ApiContext, uid: str) -> PeerInfo:
    try:
        handle = handle_of(ctx, uid)
    except NotFound:
        for info in await cluster_peers(ctx):
            if uid and uid in (info.uid, info.fingerprint):
                return info
        raise
    if handle.local:
        return await ctx.node.ask(GetPeerInfo())
    return await handle.ask("node", handle.uid, GetPeerInfo())


@API.route(
    "PUT",
    "/peers/{uid}",
    summary="Change an instance's display name (persisted there)",
    tag="peers",
    body=PeerUpdate,
    response=PeerInfo,
    errors=(404, 422, 503, 504),
)
async def put_peer(ctx: ApiContext, uid: str, body: PeerUpdate) -> PeerInfo:
    handle = handle_of(ctx, uid)
    if handle.local:
        return await ctx.node.ask(Rename(body.name))
    await handle.ask("node", handle.uid, Rename(body.name))
    return await handle.ask("node", handle.uid, GetPeerInfo())
