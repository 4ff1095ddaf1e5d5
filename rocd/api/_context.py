"""What API handlers reach: actor refs and the registry, nothing that holds state itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rocd.actors import ActorRef, Peers, Registry, Supervisor
from rocd.loop_watch import LoopStats

from ._guard import GuardPolicy


@dataclass(frozen=True)
class ApiContext:
    registry: Registry
    node: ActorRef  # this instance (kind "node")
    events: ActorRef  # the event bus
    supervisor: Supervisor  # the root, for health (restarts, failures)
    started: float  # trio clock when the daemon started, seconds
    audio: ActorRef | None = None  # this instance's audio service (kind "audio")
    #: Every instance of the cluster by uid (this one as `self` too); None in bare tests.
    peers: Peers | None = None
    #: This instance's stream coordinator (kind "stream_coordinator") and stream host
    #: (kind "streams"); None in bare tests.
    streams: ActorRef | None = None
    stream_host: ActorRef | None = None
    cluster: ActorRef | None = None  # the cluster actor (None: clustering disabled)
    #: Whether requests need a bearer token (the API listens off loopback).
    token_required: bool = False
    #: Whether a token a request presents is checked where none is required (on
    #: loopback); False only with [api] auth = "none".
    token_checked: bool = True
    #: Address of the private sound server rocd runs (PULSE_SERVER syntax), "" if none.
    pulse_server: str = ""
    #: Cross-site checks: origins and host names accepted besides the daemon's own.
    guard: GuardPolicy = field(default_factory=GuardPolicy)
    #: How late the daemon's event loop has run (None in bare tests).
    loop_stats: Callable[[], LoopStats] | None = None
