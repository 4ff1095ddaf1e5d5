"""Trust and pairing: POST/DELETE /peers, roles, invites and joins; API tokens.

Pairing two instances takes one request on each (`POST /peers` with the other's address
and key, both shown by its GET /peers/self), or one invite: `POST /cluster/invites` on
one, then `POST /cluster/join` (or `rocd serve --join TOKEN`) on the other. All of these
need the admin role (see rocd.api._auth).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import trio
from quart import current_app

from rocd.actors import (
    INVITE_TTL_MAX,
    SELF,
    ActorRef,
    AddPeer,
    ApiToken,
    ClusterStatus,
    CreateInvite,
    CreateToken,
    DeleteToken,
    GetClusterStatus,
    InviteCreated,
    Join,
    ListTokens,
    NewToken,
    PeerInfo,
    RemovePeer,
    SetPeerRole,
)
from rocd.errors import AskTimeout, Conflict, Forbidden, InvalidRequest, NotFound, Unavailable

from ._auth import forget_tokens
from ._context import ApiContext
from ._routes import API, worded_pattern

RoleName = Literal["viewer", "operator", "admin"]

#: Seconds POST /cluster/join waits for the inviter's welcome.
JOIN_WAIT = 10.0


#: A cluster listener's address as clients write it: tcp://host:port or host:port (port
#: 1-65535; an IPv6 host in brackets); empty when the peer is named by `uid` instead.
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
ClusterAddress = Annotated[
    str,
    msgspec.Meta(
        pattern=worded_pattern(
            rf"^(\s*(tcp://)?([A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]):{_PORT}\s*)?$",
            "an address tcp://HOST:PORT (port 1-65535)",
        ),
        max_length=300,
    ),
]
#: A CURVE public key in Z85: 40 characters of its alphabet (empty: named by `uid`).
PublicKey = Annotated[
    str,
    msgspec.Meta(
        pattern=worded_pattern(
            r"^([0-9a-zA-Z.:+=^!/*?&<>()\[\]{}@%$#-]{40})?$",
            "a public key: 40 characters of Z85 (the key of its GET /peers/self)",
        )
    ),
]


class PeerCreate(msgspec.Struct, forbid_unknown_fields=True):
    #: The other instance's cluster listener (tcp://host:port); with `key`.
    address: ClusterAddress = ""
    key: PublicKey = ""  # its public key (Z85): the "key" of its GET /peers/self
    role: RoleName = "operator"  # what it may do here
    #: Instead of address and key: the uid of an instance discovered on the LAN (listed
    #: by GET /peers?state=discovered), whose announced address and key are used.
    uid: str = ""


class RoleUpdate(msgspec.Struct, forbid_unknown_fields=True):
    role: RoleName


class InviteCreate(msgspec.Struct, forbid_unknown_fields=True):
    role: RoleName = "operator"  # what each side may do on the other once joined
    ttl_s: Annotated[float, msgspec.Meta(ge=1.0, le=INVITE_TTL_MAX)] = (
        600.0  # seconds it may be used
    )


class JoinBody(msgspec.Struct, forbid_unknown_fields=True):
    #: From the inviting instance's POST /cluster/invites.
    token: Annotated[
        str,
        msgspec.Meta(
            pattern=worded_pattern(
                r"^\s*rocd1-[A-Za-z0-9_-]+\s*$",
                "a join token: rocd1- then letters, digits, - and _ (from POST /cluster/invites)",
            ),
            max_length=2048,
        ),
    ]


class TokenCreate(msgspec.Struct, forbid_unknown_fields=True):
    role: RoleName
    name: str = ""  # what it is for (shown in listings)


def cluster(ctx: ApiContext) -> ActorRef:
    if ctx.cluster is None:
        raise Unavailable("clustering is disabled here ([cluster] enabled = false)")
    return ctx.cluster


def store(ctx: ApiContext) -> ActorRef:
    ref = ctx.registry.find("store", "state")
    if ref is None:
        raise Unavailable("the state store is not running")
    return ref


def not_self(ctx: ApiContext, uid: str) -> None:
    if uid in (SELF, ctx.node.uid):
        raise Conflict(
            "this instance itself has no trust to change", details=[{"in": "path", "field": "uid"}]
        )


@API.route(
    "POST",
    "/peers",
    summary="Pair: trust another instance's key and dial it",
    tag="cluster",
    body=PeerCreate,
    response=PeerInfo,
    status=201,
    errors=(401, 403, 404, 409, 422, 503),
    link_field="fingerprint",
    description=(
        "The peer is listed at once, offline until its own side trusts this instance's "
        "key too (its own POST /peers, or its configuration); peer.joined follows. Until "
        "it is reached its uid is unknown: /peers/{uid} takes its key fingerprint. "
        'An instance discovered on the LAN is paired with {"uid": ...} alone (compare '
        "its fingerprint with its own GET /peers/self first: an announcement proves "
        "nothing, the CURVE handshake then proves the key)."
    ),
)
async def add_peer(ctx: ApiContext, body: PeerCreate) -> PeerInfo:
    if not body.uid and not (body.address and body.key):
        raise InvalidRequest(
            "invalid body: give address and key, or the uid of a discovered instance",
            details=[{"in": "body", "field": "key"}],
        )
    return await cluster(ctx).ask(AddPeer(body.address, body.key, body.role, body.uid))


@API.route(
    "GET",
    "/cluster",
    summary="This instance in the cluster: its listener, rendezvous, relayed traffic",
    tag="cluster",
    response=ClusterStatus,
    errors=(401, 503),
    description=(
        "`relay` counts the frames of relayed links: forwarded for others (a "
        "rendezvous), delivered to this instance's own, and dropped by reason "
        "(forged_src: a frame whose src is not the instance it came from)."
    ),
)
async def cluster_status(ctx: ApiContext) -> ClusterStatus:
    return await cluster(ctx).ask(GetClusterStatus())


@API.route(
    "DELETE",
    "/peers/{uid}",
    summary="Revoke a peer's trust and disconnect it (uid or key fingerprint)",
    tag="cluster",
    status=204,
    errors=(401, 403, 404, 409, 422),
)
async def remove_peer(ctx: ApiContext, uid: str) -> None:
    not_self(ctx, uid)
    await cluster(ctx).ask(RemovePeer(uid))


@API.route(
    "PUT",
    "/peers/{uid}/role",
    summary="Change what a peer may do here",
    tag="cluster",
    body=RoleUpdate,
    response=PeerInfo,
    errors=(401, 403, 404, 409, 422),
)
async def set_role(ctx: ApiContext, uid: str, body: RoleUpdate) -> PeerInfo:
    not_self(ctx, uid)
    return await cluster(ctx).ask(SetPeerRole(uid, body.role))


@API.route(
    "POST",
    "/cluster/invites",
    summary="Make a one-time join token for a new instance",
    tag="cluster",
    body=InviteCreate,
    response=InviteCreated,
    status=201,
    errors=(401, 403, 422, 503),
)
async def create_invite(ctx: ApiContext, body: InviteCreate) -> InviteCreated:
    return await cluster(ctx).ask(CreateInvite(body.role, body.ttl_s))


@API.route(
    "POST",
    "/cluster/join",
    summary="Join another instance with its one-time token (trust both ways)",
    tag="cluster",
    body=JoinBody,
    response=PeerInfo,
    status=201,
    errors=(401, 403, 409, 422, 503, 504),
    description=(
        f"Waits up to {JOIN_WAIT:g} s for the inviter's welcome: 201 with the inviter, "
        "403 if it refused the token, 504 if it did not answer (the instance goes on "
        "trying while the token is valid)."
    ),
)
async def join(ctx: ApiContext, body: JoinBody) -> PeerInfo:
    remote = await cluster(ctx).ask(Join(body.token))
    with trio.move_on_after(JOIN_WAIT):
        await remote.settled.wait()
    if remote.refusal is not None:
        raise Forbidden(str(remote.refusal))
    if not remote.online:
        raise AskTimeout(
            f"the inviter at {remote.trusted.address} did not answer within {JOIN_WAIT:g} s; "
            "still trying",
            details=[{"address": remote.trusted.address}],
        )
    return remote.info()


@API.route(
    "GET",
    "/tokens",
    summary="List the API tokens (never their secrets)",
    tag="tokens",
    response=list[ApiToken],
    errors=(401, 403),
)
async def list_tokens(ctx: ApiContext) -> list[ApiToken]:
    return await store(ctx).ask(ListTokens())


@API.route(
    "POST",
    "/tokens",
    summary="Make an API token with a role (shown this once)",
    tag="tokens",
    body=TokenCreate,
    response=NewToken,
    status=201,
    errors=(401, 403, 422),
)
async def create_token(ctx: ApiContext, body: TokenCreate) -> NewToken:
    return await store(ctx).ask(CreateToken(body.role, body.name))


@API.route(
    "DELETE",
    "/tokens/{id}",
    summary="Revoke an API token",
    tag="tokens",
    status=204,
    errors=(401, 403, 404),
)
async def delete_token(ctx: ApiContext, id: str) -> None:
    if not await store(ctx).ask(DeleteToken(id)):
        raise NotFound(f"no token {id!r}", details=[{"in": "path", "field": "id"}])
    forget_tokens(current_app)
