"""GET /health and GET /version: is the daemon alive, and what is it."""

from __future__ import annotations

import platform

import msgspec
import trio

from rocd import __version__
from rocd.actors import GetBusStats, Supervisor

from ._context import ApiContext
from ._routes import API

#: Version of the HTTP API's shapes; bumped on incompatible changes.
API_VERSION = "1"


class Health(msgspec.Struct):
    status: str  # "ok" | "degraded"
    uid: str
    uptime_s: float
    actors: dict[str, int]  # running actors per kind
    crashes: int  # actor crashes seen since start (restarted or not)
    event_subscribers: int


class Version(msgspec.Struct):
    rocd: str
    api: str
    protocol: str  # the Roc wire protocol spoken
    python: str


def _crashes(sup: Supervisor) -> int:
    total = sum(len(failures) for failures in sup.failures.values())
    return total + sum(_crashes(c) for c in sup.children() if isinstance(c, Supervisor))


@API.route(
    "GET",
    "/health",
    summary="Liveness and a summary of the daemon's state",
    tag="system",
    response=Health,
)
async def health(ctx: ApiContext) -> Health:
    bus = await ctx.events.ask(GetBusStats())
    return Health(
        status="ok" if ctx.events.alive and ctx.node.alive else "degraded",
        uid=ctx.node.uid,
        uptime_s=round(trio.current_time() - ctx.started, 3),
        actors=ctx.registry.kinds(),
        crashes=_crashes(ctx.supervisor),
        event_subscribers=bus.subscribers,
    )


@API.route(
    "GET",
    "/version",
    summary="Versions of rocd, its API and its wire protocol",
    tag="system",
    response=Version,
)
async def version(ctx: ApiContext) -> Version:
    return Version(__version__, API_VERSION, "roc-0.4", platform.python_version())
