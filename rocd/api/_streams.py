"""/streams: audio from any source to any destination of the cluster, in one call.

Every operation goes to this instance's stream coordinator, which reaches the instances
holding the ends; so any instance answers for the whole cluster's streams.
"""

from __future__ import annotations

from rocd.actors import (
    ActorRef,
    CreateStream,
    DeleteStream,
    GetStream,
    GetStreamMetrics,
    ListStreams,
    Stream,
    StreamCreate,
    StreamMetrics,
    StreamPatch,
    UpdateStream,
)
from rocd.errors import Unavailable

from ._context import ApiContext
from ._routes import API

#: Seconds the API waits for a setup (the coordinator's own deadline is shorter).
SETUP_WAIT = 8.0


def coordinator(ctx: ApiContext) -> ActorRef:
    if ctx.streams is None:
        raise Unavailable("streams are not available on this instance")
    return ctx.streams


@API.route(
    "POST",
    "/streams",
    summary="Create a stream from a source to a destination (all or nothing)",
    tag="streams",
    body=StreamCreate,
    response=Stream,
    status=201,
    errors=(404, 409, 422, 503, 504),
    description=(
        "Each end is {peer, device}, {peer, vad} (a speaker VAD as a source: what apps "
        "play into it) or {external: {source, repair, control}} (a Roc endpoint: where "
        "a roc-recv listens, or where this instance listens for a roc-send; port 0 picks "
        "a free one, shown in `ends`). Both ends are set up or neither: the error is the "
        "one of the side that failed."
    ),
)
async def create_stream(ctx: ApiContext, body: StreamCreate) -> Stream:
    return await coordinator(ctx).ask(CreateStream(body), within=SETUP_WAIT)


@API.route(
    "GET",
    "/streams",
    summary="List the cluster's streams",
    tag="streams",
    response=list[Stream],
    errors=(503,),
)
async def list_streams(ctx: ApiContext) -> list[Stream]:
    return await coordinator(ctx).ask(ListStreams())


@API.route(
    "GET",
    "/streams/{uid}",
    summary="One stream, its ends and its state",
    tag="streams",
    response=Stream,
    errors=(404, 503),
)
async def get_stream(ctx: ApiContext, uid: str) -> Stream:
    return await coordinator(ctx).ask(GetStream(uid))


@API.route(
    "PATCH",
    "/streams/{uid}",
    summary="Change a stream live: volume, latency bounds (no gap in the audio)",
    tag="streams",
    body=StreamPatch,
    response=Stream,
    errors=(404, 422, 503),
)
async def patch_stream(ctx: ApiContext, uid: str, body: StreamPatch) -> Stream:
    return await coordinator(ctx).ask(UpdateStream(uid, body))


@API.route(
    "DELETE",
    "/streams/{uid}",
    summary="Stop and remove a stream on every instance holding one of its ends",
    tag="streams",
    status=204,
    errors=(404, 503),
)
async def delete_stream(ctx: ApiContext, uid: str) -> None:
    await coordinator(ctx).ask(DeleteStream(uid))


@API.route(
    "GET",
    "/streams/{uid}/metrics",
    summary="A stream's metrics: latency, jitter, loss, repair, drift, underruns, bitrate",
    tag="streams",
    response=StreamMetrics,
    errors=(404, 503),
)
async def stream_metrics(ctx: ApiContext, uid: str) -> StreamMetrics:
    return await coordinator(ctx).ask(GetStreamMetrics(uid))
