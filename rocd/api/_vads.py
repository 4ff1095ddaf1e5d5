"""/peers/{peer}/vads: virtual speakers and microphones of an instance.

A VAD is also a device (its `device` field is the id under /devices). Creating one on a
driver that is down is accepted: the VAD is "pending" and made when the driver is back.
A remote peer's VADs are read from its mirror here and changed on it (as for devices).
"""

from __future__ import annotations

from rocd.actors import (
    CreateVad,
    DeleteVad,
    GetVad,
    ListVads,
    UpdateVad,
    Vad,
    VadCreate,
    VadUpdate,
)

from ._context import ApiContext
from ._devices import actor_of, audio_service
from ._peers import handle_of
from ._routes import API


@API.route(
    "GET",
    "/peers/{peer}/vads",
    summary="List a peer's virtual devices",
    tag="vads",
    response=list[Vad],
    errors=(404, 503),
)
async def list_vads(ctx: ApiContext, peer: str) -> list[Vad]:
    handle = handle_of(ctx, peer)
    if handle.local:
        return await audio_service(ctx, peer).ask(ListVads())
    return await handle.ask("audio", handle.uid, ListVads())


@API.route(
    "POST",
    "/peers/{peer}/vads",
    summary="Create a virtual speaker or microphone (persisted)",
    tag="vads",
    body=VadCreate,
    response=Vad,
    status=201,
    errors=(404, 422, 501, 503, 504),
)
async def create_vad(ctx: ApiContext, peer: str, body: VadCreate) -> Vad:
    handle = handle_of(ctx, peer)
    if handle.local:
        return await audio_service(ctx, peer).ask(CreateVad(body))
    return await handle.ask("audio", handle.uid, CreateVad(body))


@API.route(
    "GET",
    "/peers/{peer}/vads/{uid}",
    summary="One virtual device",
    tag="vads",
    response=Vad,
    errors=(404, 503),
)
async def get_vad(ctx: ApiContext, peer: str, uid: str) -> Vad:
    handle = handle_of(ctx, peer)
    if handle.local:
        return await actor_of(ctx, peer, "vad", uid, "VAD").ask(GetVad())
    return await handle.ask("vad", uid, GetVad())


@API.route(
    "PUT",
    "/peers/{peer}/vads/{uid}",
    summary="Rename or re-format a virtual device (it is made anew in its driver)",
    tag="vads",
    body=VadUpdate,
    response=Vad,
    errors=(404, 422, 503, 504),
)
async def put_vad(ctx: ApiContext, peer: str, uid: str, body: VadUpdate) -> Vad:
    handle = handle_of(ctx, peer)
    if handle.local:
        return await actor_of(ctx, peer, "vad", uid, "VAD").ask(UpdateVad(body))
    return await handle.ask("vad", uid, UpdateVad(body))


@API.route(
    "DELETE",
    "/peers/{peer}/vads/{uid}",
    summary="Delete a virtual device (removed from its driver)",
    tag="vads",
    status=204,
    errors=(404, 503, 504),
)
async def delete_vad(ctx: ApiContext, peer: str, uid: str) -> None:
    handle = handle_of(ctx, peer)
    if handle.local:
        actor_of(ctx, peer, "vad", uid, "VAD")
        await audio_service(ctx, peer).ask(DeleteVad(uid))
        return
    await handle.ask("audio", handle.uid, DeleteVad(uid))
