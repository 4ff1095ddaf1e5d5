"""/peers/{peer}/devices: the audio devices of an instance and their settings.

A device id names its driver, then the driver's own name for the device
("pulse:sink:alsa_output.pci-0000_00_1f.3.analog-stereo", "file:source:take 1.wav"), so
it may hold any character: clients percent-encode it as one path segment (a "/" in an id
is taken too, as the last part of the path).

The same routes serve every instance of the cluster: for a remote peer, reads come from
its mirror here (marked `stale` with `age_s` while it is offline) and changes are
forwarded to it, coming back as its answer or a 503/504 naming it.
"""

from __future__ import annotations

from rocd.actors import (
    ActorRef,
    Device,
    DeviceList,
    DeviceUpdate,
    GetDevice,
    ListDevices,
    UpdateDevice,
)
from rocd.errors import NotFound, Unavailable

from ._context import ApiContext
from ._peers import handle_of, resolve_peer
from ._routes import API


def audio_service(ctx: ApiContext, peer: str) -> ActorRef:
    """The audio service of the peer a path names (404 for an unknown peer)."""
    uid = resolve_peer(ctx, peer)
    ref = ctx.registry.find("audio", uid)
    if ref is None:
        raise Unavailable("the audio service is not running")
    return ref


def actor_of(ctx: ApiContext, peer: str, kind: str, uid: str, what: str) -> ActorRef:
    """The actor of `kind` a path names on `peer`, or 404 naming it."""
    audio_service(ctx, peer)
    ref = ctx.registry.find(kind, uid)
    if ref is None:
        raise NotFound(f"no {what} {uid!r}", details=[{"in": "path", "field": "uid"}])
    return ref


@API.route(
    "GET",
    "/peers/{peer}/devices",
    summary="List a peer's audio devices, with the state of its drivers",
    tag="devices",
    response=DeviceList,
    errors=(404, 503),
)
async def list_devices(ctx: ApiContext, peer: str) -> DeviceList:
    handle = handle_of(ctx, peer)
    if handle.local:
        return await audio_service(ctx, peer).ask(ListDevices())
    return await handle.ask("audio", handle.uid, ListDevices())


@API.route(
    "GET",
    "/peers/{peer}/devices/{uid:path}",
    summary="One device (its id percent-encoded)",
    tag="devices",
    response=Device,
    errors=(404, 503),
)
async def get_device(ctx: ApiContext, peer: str, uid: str) -> Device:
    handle = handle_of(ctx, peer)
    if handle.local:
        return await actor_of(ctx, peer, "device", uid, "device").ask(GetDevice())
    return await handle.ask("device", uid, GetDevice())


@API.route(
    "PUT",
    "/peers/{peer}/devices/{uid:path}",
    summary="Change a device's settings (persisted, applied again when it comes back)",
    tag="devices",
    body=DeviceUpdate,
    response=Device,
    errors=(404, 422, 503, 504),
    description=(
        "Only the fields given change; null puts a setting back to the device's own. "
        "volume: 0..1.5 (1.0 nominal); rate, channels, latency_ms: the format rocd "
        "streams the device at."
    ),
)
async def put_device(ctx: ApiContext, peer: str, uid: str, body: DeviceUpdate) -> Device:
    handle = handle_of(ctx, peer)
    if handle.local:
        return await actor_of(ctx, peer, "device", uid, "device").ask(UpdateDevice(body))
    return await handle.ask("device", uid, UpdateDevice(body))
