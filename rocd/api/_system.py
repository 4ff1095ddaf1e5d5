"""GET /health and GET /version: is the daemon alive, and what is it."""

from __future__ import annotations

import platform

import msgspec
import trio

from rocd import __version__
from rocd.actors import Actor, GetBusStats, GetDrivers, GetStoreStatus, StoreStatus, Supervisor
from rocd.audio import DriverStatus
from rocd.errors import RocdError
from rocd.loop_watch import LoopStats

from ._context import ApiContext
from ._routes import API

#: Version of the HTTP API's shapes; bumped on incompatible changes.
API_VERSION = "1"


class Health(msgspec.Struct):
    status: str  # "ok" | "degraded" (an actor or an audio driver is down)
    uid: str
    uptime_s: float
    actors: dict[str, int]  # running actors per kind
    crashes: int  # actor crashes seen since start (restarted or not)
    event_subscribers: int
    drivers: list[DriverStatus]  # audio drivers: up, or down with the reason
    #: Whether the state file takes writes (false: disk full or read-only; changes get 503).
    store: StoreStatus = StoreStatus(ok=True)
    #: The private sound server rocd runs when the machine has none (PULSE_SERVER syntax:
    #: point apps at it to use rocd's virtual devices); "" when rocd uses the user's.
    pulse_server: str = ""
    #: How late the daemon's event loop has run: stalls of 50 ms or more put every
    #: stream's audio at risk at once (null where not measured).
    loop: LoopStats | None = None


class Version(msgspec.Struct):
    rocd: str
    api: str
    protocol: str  # the Roc wire protocol spoken
    python: str


def _crashes(sup: Supervisor) -> int:
    total = sum(len(failures) for failures in sup.failures.values())
    for child in sup.children():
        if isinstance(child, Supervisor):
            total += _crashes(child)
        elif isinstance(child, Actor):
            total += sum(_crashes(s) for s in child.supervisors())
    return total


@API.route(
    "GET",
    "/health",
    summary="Liveness and a summary of the daemon's state",
    tag="system",
    response=Health,
    errors=(503, 504),
)
async def health(ctx: ApiContext) -> Health:
    bus = await ctx.events.ask(GetBusStats())
    drivers: list[DriverStatus] = []
    audio_ok = True
    if ctx.audio is not None:
        try:
            # Short: a restarting audio service must not hold up the health check.
            drivers = await ctx.audio.ask(GetDrivers(), within=1.0)
        except RocdError:
            audio_ok = False
    store = await _store_status(ctx)
    alive = ctx.events.alive and ctx.node.alive and audio_ok and store.ok
    return Health(
        status="ok" if alive and all(d.up for d in drivers) else "degraded",
        uid=ctx.node.uid,
        uptime_s=round(trio.current_time() - ctx.started, 3),
        actors=ctx.registry.kinds(),
        crashes=_crashes(ctx.supervisor),
        event_subscribers=bus.subscribers,
        drivers=drivers,
        store=store,
        pulse_server=ctx.pulse_server,
        loop=ctx.loop_stats() if ctx.loop_stats is not None else None,
    )


async def _store_status(ctx: ApiContext) -> StoreStatus:
    ref = ctx.registry.find("store", "state")
    if ref is None:
        return StoreStatus(ok=False, error="the store is not running")
    try:
        return await ref.ask(GetStoreStatus(), within=1.0)
    except RocdError as exc:
        return StoreStatus(ok=False, error=f"the store does not answer: {exc.message}")


@API.route(
    "GET",
    "/version",
    summary="Versions of rocd, its API and its wire protocol",
    tag="system",
    response=Version,
)
async def version(ctx: ApiContext) -> Version:
    return Version(__version__, API_VERSION, "roc-0.4", platform.python_version())
