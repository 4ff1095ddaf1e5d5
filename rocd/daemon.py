"""The daemon: builds the supervision tree, serves the API, and stops with a grace period.

Tree (every actor under the root supervisor, one-for-one):

    root supervisor
    ├── store     the state file (SQLite), off the Trio thread
    ├── events    the event bus (WebSocket subscribers hang off it)
    ├── node      this instance: identity, display name
    ├── audio     drivers, devices, VADs
    ├── streams   the stream ends this instance holds, the devices they use
    ├── stream_coordinator   sets streams up across the cluster, answers for them
    ├── cluster   trust, the ZeroMQ listener, one peer actor per trusted remote
    └── stream_hub   (`[cluster] hub`) media relays for peers that cannot reach each other
    + the HTTP server (hypercorn, Trio worker) in the same nursery

Shutdown (`request_stop`, e.g. on SIGINT/SIGTERM): peers are told goodbye (so they mark
this instance offline at once), the HTTP server stops accepting, the event bus ends every
subscription (WebSocket clients get 1001 "going away"), open requests
get a short grace, then every actor is cancelled and runs its `on_stop` with its own grace.
The whole sequence is bounded by `STOP_GRACE` + the actors' grace, well under 2 s.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import hypercorn.config
import hypercorn.trio
import trio

from rocd import __version__
from rocd.actors import (
    ActorRef,
    AudioService,
    Cluster,
    DriverSpec,
    EventBus,
    Faults,
    GetIdentity,
    LocalPeer,
    Node,
    Peers,
    Registry,
    SayGoodbye,
    SetApiUrl,
    Store,
    StreamCoordinator,
    StreamHost,
    StreamHub,
    Supervisor,
    lock_state_dir,
)
from rocd.api import ApiContext, CloseEarlyAnswers, GuardPolicy, create_app, token_required
from rocd.audio import (
    AudioDriver,
    FileDriver,
    PortAudioDriver,
    PrivatePulseServer,
    ToneDriver,
    clean_stale_servers,
    open_pulse_driver,
    private_pulse_root,
    probe_pulse,
)
from rocd.config import Config, parse_port_range
from rocd.errors import RocdError
from rocd.loop_watch import LoopWatch
from rocd.net.roc import PortPool

log = logging.getLogger("rocd.daemon")

#: Seconds open HTTP requests get to finish once the daemon is stopping.
STOP_GRACE = 0.5
STATE_FILE = "state.db"


@dataclass(frozen=True)
class DaemonInfo:
    """What a started daemon reports: who it is and where it listens."""

    uid: str
    name: str
    api_url: str
    state_file: Path


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.registry = Registry()
        self._stop = trio.Event()
        self._http_stop = trio.Event()
        self._hurry = False
        self._grace: trio.CancelScope | None = None
        self._bus: EventBus | None = None
        #: The private sound server, when the daemon runs one.
        self.pulse_server: PrivatePulseServer | None = None
        #: The directory of the cluster's instances (the cluster adds remote peers to it).
        self.peers: Peers | None = None
        #: The stream ends this instance holds (and the devices they use).
        self.stream_host: StreamHost | None = None
        #: How late the event loop runs (stalls that put every stream at risk).
        self.loop_watch = LoopWatch()

    def request_stop(self) -> None:
        """Begin a graceful shutdown (idempotent; safe from any task)."""
        self._stop.set()

    def hurry_stop(self) -> None:
        """Stop, and cut the grace of open HTTP requests short (a second signal). What
        keeps data (actors' `on_stop`: the state file, recordings) still runs in full."""
        self._hurry = True
        self.request_stop()
        if self._grace is not None:
            self._grace.cancel(reason="hurried")

    def publish(self, kind: str, subject: str, data: dict[str, Any]) -> None:
        if self._bus is not None:
            self._bus.publish(kind, subject, data)

    async def run(
        self, *, task_status: trio.TaskStatus[DaemonInfo] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until `request_stop`; reports `DaemonInfo` once the API answers.

        A failure to start (state file unusable, API port taken) is raised from here
        before `started`. On cancellation everything stops at once (actors still get
        their `on_stop` grace).
        """
        state_file = self.config.state_path / STATE_FILE
        root = Supervisor("root", registry=self.registry, publish=self.publish)
        lock = await trio.to_thread.run_sync(lock_state_dir, self.config.state_path)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.loop_watch.run)
                await nursery.start(root.run)
                store = Store(state_file, publish=self.publish)
                await root.start_child(store)
                uid = await store.ref.ask(GetIdentity())
                self._bus = EventBus(uid)
                await root.start_child(self._bus)
                if store.error:  # found before the bus was there to tell
                    self.publish("store.error", store.uid, {"error": store.error})
                node = Node(
                    uid,
                    store=store.ref,
                    publish=self.publish,
                    default_name=socket.gethostname() or "rocd",
                    name_override=self.config.name,
                )
                await root.start_child(node)
                drivers = await self._audio_drivers(nursery)
                audio = AudioService(
                    uid, drivers, store=store.ref, publish=self.publish, registry=self.registry
                )
                await root.start_child(audio)
                peers = Peers(LocalPeer(uid, self.registry))
                cluster: Cluster | None = None
                if self.config.cluster.enabled:
                    cluster = Cluster(
                        uid,
                        self.config.cluster,
                        state_dir=self.config.state_path,
                        store=store.ref,
                        node=node.ref,
                        bus=self._bus.ref,
                        relay=self._bus.relay,
                        registry=self.registry,
                        peers=peers,
                        publish=self.publish,
                        name=lambda: node.name,
                    )
                    await root.start_child(cluster)
                    if self.config.cluster.hub_on:
                        await root.start_child(self._hub(uid, cluster, store.ref))
                self.peers = peers
                host = self.stream_host = StreamHost(
                    uid,
                    store=store.ref,
                    publish=self.publish,
                    registry=self.registry,
                    peers=peers,
                    faults=Faults.from_env(),
                )
                await root.start_child(host)
                coordinator = StreamCoordinator(uid, peers=peers, publish=self.publish)
                await root.start_child(coordinator)
                ctx = ApiContext(
                    self.registry,
                    node.ref,
                    self._bus.ref,
                    root,
                    trio.current_time(),
                    audio=audio.ref,
                    peers=peers,
                    streams=coordinator.ref,
                    stream_host=host.ref,
                    cluster=cluster.ref if cluster is not None else None,
                    token_required=token_required(self.config.api),
                    token_checked=self.config.api.auth != "none",
                    pulse_server=self.pulse_server.address if self.pulse_server else "",
                    loop_stats=self.loop_watch.stats,
                    guard=GuardPolicy.from_lists(
                        self.config.api.allowed_origins, self.config.api.allowed_hosts
                    ),
                )
                http_done = trio.Event()
                binds = await nursery.start(self._serve_http, ctx, http_done)
                api_url = binds[0]
                node.ref.tell_nowait(SetApiUrl(api_url))
                if cluster is not None:
                    cluster.ref.tell_nowait(SetApiUrl(api_url))
                info = DaemonInfo(uid, node.name, api_url, state_file)
                log.info(
                    "rocd %s: %s (%s) serving %s, state in %s",
                    *(__version__, info.name, uid, api_url, state_file),
                )
                self.publish("daemon.started", uid, {"api": api_url, "version": __version__})
                task_status.started(info)
                await self._stop.wait()
                log.info("stopping")
                if cluster is not None:
                    with contextlib.suppress(RocdError):
                        await cluster.ref.ask(SayGoodbye(), within=STOP_GRACE)
                self._http_stop.set()
                await root.stop_child(EventBus.kind, self._bus.uid, reason="daemon shutting down")
                with trio.move_on_after(0 if self._hurry else STOP_GRACE) as self._grace:
                    await http_done.wait()
                nursery.cancel_scope.cancel(reason="daemon stopped")
        finally:
            self._bus = None
            root.close("daemon stopped")
            lock.release()
        log.info("stopped")

    def _hub(self, uid: str, cluster: Cluster, store: ActorRef) -> StreamHub:
        """The media hub (relays for streams whose ends cannot reach each other)."""
        cfg = self.config.cluster
        first, last = parse_port_range(cfg.hub_ports)

        def probe_port() -> int | None:
            endpoint = cluster.probe_endpoint
            return endpoint[1] if endpoint is not None else None

        return StreamHub(
            uid,
            pool=PortPool(first, last),
            max_relays=cfg.hub_max_relays,
            rate_bytes_s=cfg.hub_rate_kbps * 1000 / 8,
            probe_port=probe_port,
            store=store,
        )

    async def _audio_drivers(self, nursery: trio.Nursery) -> list[DriverSpec]:
        """The drivers the config asks for (starting a private sound server if needed)."""
        cfg = self.config.audio
        specs = []
        if cfg.pulse != "off":
            for left in await trio.to_thread.run_sync(clean_stale_servers):
                log.info("removed %s, the private sound server of a daemon that is gone", left)
            env = {"PULSE_SERVER": cfg.pulse_server} if cfg.pulse_server else {}
            if cfg.pulse == "auto":
                why = await probe_pulse(env)
                if why is not None and shutil.which("pulseaudio"):
                    log.info("no sound server answers (%s): running a private one", why)
                    root = private_pulse_root(self.config.state_path)
                    self.pulse_server = PrivatePulseServer(root)
                    await nursery.start(self.pulse_server.run)
                    env = self.pulse_server.env
                    log.info(
                        "private sound server: PULSE_SERVER=%s (apps reach rocd's virtual "
                        "devices there)",
                        self.pulse_server.address,
                    )
                elif why is not None:
                    log.warning("no sound server answers (%s) and pulseaudio is missing", why)
            specs.append(DriverSpec("pulse", partial(open_pulse_driver, env)))
        files = self.config.files_path
        specs.append(DriverSpec("file", partial(_opened, partial(_file_driver, files)), poll=5.0))
        specs.append(DriverSpec("tone", partial(_opened, ToneDriver)))
        if cfg.portaudio:
            specs.append(DriverSpec("portaudio", partial(_opened, PortAudioDriver, scan=True)))
        return specs

    async def _serve_http(
        self, ctx: ApiContext, done: trio.Event, *, task_status: trio.TaskStatus[list[str]]
    ) -> None:
        cfg = hypercorn.config.Config()
        host, port = self.config.api.host, self.config.api.port
        cfg.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
        cfg.accesslog = None
        cfg.errorlog = logging.getLogger("rocd.http")
        cfg.graceful_timeout = STOP_GRACE
        try:
            await hypercorn.trio.serve(
                CloseEarlyAnswers(create_app(ctx)),
                cfg,
                shutdown_trigger=self._http_stop.wait,
                task_status=task_status,
            )
        finally:
            done.set()


def _file_driver(root: Path) -> FileDriver:
    root.mkdir(parents=True, exist_ok=True)
    return FileDriver(root)


@asynccontextmanager
async def _opened(
    make: Callable[[], AudioDriver], *, scan: bool = False
) -> AsyncIterator[AudioDriver]:
    """A driver that needs no closing, made in a worker thread (it may touch the disk or
    start PortAudio); `scan`: list its devices once before use."""
    driver = await trio.to_thread.run_sync(make)
    if scan:
        await driver.list_devices()
    yield driver
