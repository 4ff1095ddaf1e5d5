"""WS /events: a live feed of cluster events, filtered by kind and peer.

Each event is one text frame holding the Event as JSON. The server closes the socket with
1013 (try again later) and a reason when the client reads too slowly to keep up, and with
1001 (going away) when the daemon shuts down.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from quart import websocket

from rocd.actors import (
    MAX_SUBSCRIBER_BUFFER,
    Event,
    EventFilter,
    Subscribe,
    check_kind_filter,
    kind_filter_pattern,
)
from rocd.errors import InvalidRequest, NotFound

from ._context import ApiContext
from ._peers import resolve_peer
from ._routes import API

CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013


class EventQuery(msgspec.Struct, forbid_unknown_fields=True):
    #: Comma-separated kinds; an entry ending in "." is a family ("device." = all device events).
    #: (The pattern documents the valid values; the check names the wrong entry.)
    kind: Annotated[str, msgspec.Meta(extra_json_schema={"pattern": kind_filter_pattern()})] = ""
    #: Only events of this peer (uid, or `self`).
    peer: str | None = None
    #: Events that may queue for this client before it counts as too slow.
    buffer: Annotated[int, msgspec.Meta(ge=1, le=MAX_SUBSCRIBER_BUFFER)] = 256
    #: An API token, for clients that cannot set an Authorization header (browsers);
    #: checked like a bearer token, when the API requires one.
    token: str | None = None


def _invalid_query(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"invalid query: {field}: {message}",
        details=[{"in": "query", "field": field, "message": message}],
    )


def event_filter(ctx: ApiContext, query: EventQuery) -> EventFilter:
    """The filter a query asks for; 422 naming the parameter for an unknown kind or peer."""
    kinds = tuple(k.strip() for k in query.kind.split(",") if k.strip())
    for entry in kinds:
        problem = check_kind_filter(entry)
        if problem is not None:
            raise _invalid_query("kind", problem)
    peer = None
    if query.peer is not None:
        try:
            peer = resolve_peer(ctx, query.peer)
        except NotFound:
            raise NotFound(
                f"no peer {query.peer!r}",
                details=[{"in": "query", "field": "peer", "message": "no such peer"}],
            ) from None
    return EventFilter(kinds=kinds, peer=peer)


@API.route(
    "GET",
    "/events",
    summary="Subscribe to cluster events (WebSocket)",
    tag="events",
    query=EventQuery,
    response=Event,
    websocket=True,
    errors=(404, 422, 426, 503, 504),
    check=lambda ctx, query: event_filter(ctx, query),
    description=(
        "Upgrade to a WebSocket; each text message is one Event as JSON. Without the "
        "upgrade: 426. Before the upgrade: 422 for an unknown kind or family, 404 for an "
        "unknown peer."
    ),
)
async def events(ctx: ApiContext, query: EventQuery) -> None:
    subscription = await ctx.events.ask(Subscribe(event_filter(ctx, query), buffer=query.buffer))
    encoder = msgspec.json.Encoder()
    async with subscription:  # closing it unsubscribes at once, also on cancellation
        await websocket.accept()
        async for event in subscription:
            await websocket.send(encoder.encode(event).decode())
    reason = subscription.dropped_reason or "subscription ended"
    code = CLOSE_TRY_AGAIN_LATER if subscription.overrun else CLOSE_GOING_AWAY
    await websocket.close(code, reason)
