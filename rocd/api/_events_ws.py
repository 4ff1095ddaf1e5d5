"""WS /events: a live feed of cluster events, filtered by kind and peer.

Each event is one text frame holding the Event as JSON. The server closes the socket with
1013 (try again later) and a reason when the client reads too slowly to keep up, and with
1001 (going away) when the daemon shuts down.
"""

from __future__ import annotations

import msgspec
from quart import websocket

from rocd.actors import Event, EventFilter, Subscribe

from ._context import ApiContext
from ._routes import API

CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013


class EventQuery(msgspec.Struct, forbid_unknown_fields=True):
    #: Comma-separated kinds; an entry ending in "." is a prefix ("device." = all device events).
    kind: str = ""
    #: Only events of this peer (uid).
    peer: str | None = None
    #: Events that may queue for this client before it counts as too slow.
    buffer: int = 256
    #: An API token, for clients that cannot set an Authorization header (browsers);
    #: checked like a bearer token, when the API requires one.
    token: str | None = None


@API.route(
    "GET",
    "/events",
    summary="Subscribe to cluster events (WebSocket)",
    tag="events",
    query=EventQuery,
    response=Event,
    websocket=True,
    description="Upgrade to a WebSocket; each text message is one Event as JSON.",
)
async def events(ctx: ApiContext, query: EventQuery) -> None:
    kinds = tuple(k.strip() for k in query.kind.split(",") if k.strip())
    subscription = await ctx.events.ask(
        Subscribe(EventFilter(kinds=kinds, peer=query.peer), buffer=max(1, query.buffer))
    )
    await websocket.accept()
    encoder = msgspec.json.Encoder()
    async with subscription:
        async for event in subscription:
            await websocket.send(encoder.encode(event).decode())
    reason = subscription.dropped_reason or "subscription ended"
    code = CLOSE_TRY_AGAIN_LATER if subscription.overrun else CLOSE_GOING_AWAY
    await websocket.close(code, reason)
