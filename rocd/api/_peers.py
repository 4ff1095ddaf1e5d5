"""/peers: the instances of the cluster (for now: this one, marked "self": true).

Every per-instance resource hangs under /peers/{uid}/... (devices, VADs), and `self` is an
alias for the local instance's uid, so clients can address their own daemon without
looking its uid up first.
"""

from __future__ import annotations

import msgspec

from rocd.actors import SELF, DisplayName, GetPeerInfo, PeerInfo, Rename
from rocd.errors import NotFound

from ._context import ApiContext
from ._routes import API


class PeerUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: DisplayName  # new display name, 1-64 printable characters


def resolve_peer(ctx: ApiContext, uid: str) -> str:
    """The uid a path names (`self` = this instance), or NotFound."""
    if ctx.peers is not None:
        return ctx.peers.resolve(uid)
    if uid in (SELF, ctx.node.uid):
        return ctx.node.uid
    raise NotFound(f"no peer with uid {uid!r}", details=[{"in": "path", "field": "uid"}])


@API.route(
    "GET",
    "/peers",
    summary="List the instances of the cluster",
    tag="peers",
    response=list[PeerInfo],
    errors=(503, 504),
)
async def list_peers(ctx: ApiContext) -> list[PeerInfo]:
    return [await ctx.node.ask(GetPeerInfo())]


@API.route(
    "GET",
    "/peers/{uid}",
    summary="One instance (`self` names this one)",
    tag="peers",
    response=PeerInfo,
    errors=(404, 503, 504),
)
async def get_peer(ctx: ApiContext, uid: str) -> PeerInfo:
    resolve_peer(ctx, uid)
    return await ctx.node.ask(GetPeerInfo())


@API.route(
    "PUT",
    "/peers/{uid}",
    summary="Change an instance's display name (persisted)",
    tag="peers",
    body=PeerUpdate,
    response=PeerInfo,
    errors=(404, 422, 503, 504),
)
async def put_peer(ctx: ApiContext, uid: str, body: PeerUpdate) -> PeerInfo:
    resolve_peer(ctx, uid)
    return await ctx.node.ask(Rename(body.name))
