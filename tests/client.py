"""Driving a real in-process daemon from tests: its HTTP API and its event WebSocket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import trio
from trio_websocket import WebSocketConnection
from trio_websocket import open_websocket_url as _open_websocket_url

from rocd.config import ApiConfig, AudioConfig, ClusterConfig, Config
from rocd.daemon import Daemon, DaemonInfo

NO_SOUND_SERVER = AudioConfig(pulse="off")
#: The cluster listener on a free loopback port (never the default 0.0.0.0:4611 in tests).
LOOPBACK_CLUSTER = ClusterConfig(listen="127.0.0.1:0")


@dataclass
class RunningDaemon:
    daemon: Daemon
    info: DaemonInfo
    http: httpx.AsyncClient

    @property
    def url(self) -> str:
        return self.info.api_url

    @property
    def ws_url(self) -> str:
        return self.info.api_url.replace("http://", "ws://", 1)


@asynccontextmanager
async def running_daemon(
    state_dir: Path, audio: AudioConfig = NO_SOUND_SERVER
) -> AsyncIterator[RunningDaemon]:
    """A daemon serving on a free port; leaving stops it and waits until it has stopped."""
    daemon = Daemon(
        Config(
            state_dir=str(state_dir), api=ApiConfig(port=0), audio=audio, cluster=LOOPBACK_CLUSTER
        )
    )
    async with trio.open_nursery() as nursery:
        with trio.fail_after(15):
            info = await nursery.start(daemon.run)
        async with httpx.AsyncClient(base_url=info.api_url, timeout=10) as http:
            yield RunningDaemon(daemon, info, http)
        daemon.request_stop()


def device_path(device_id: str, peer: str = "self") -> str:
    """/peers/{peer}/devices/{id}, the id percent-encoded as one path segment."""
    return f"/peers/{peer}/devices/{quote(device_id, safe='')}"


@asynccontextmanager
async def open_websocket_url(url: str, **kw: Any) -> AsyncIterator[WebSocketConnection]:
    """trio-websocket's client, closing its TCP stream itself when the server closed first.

    When the server initiates the close, trio-websocket's client neither closes its
    socket on the server's FIN nor in `aclose` (the close reason is already set), so the
    socket is left to the garbage collector (a ResourceWarning here).
    """
    async with _open_websocket_url(url, **kw) as ws:
        try:
            yield ws
        finally:
            await ws._stream.aclose()


async def subscribers(rocd: RunningDaemon) -> int:
    count: int = (await rocd.http.get("/health")).json()["event_subscribers"]
    return count


async def wait_subscribed(rocd: RunningDaemon, count: int) -> None:
    """The WebSocket handshake is done before the subscription exists: wait for it."""
    while await subscribers(rocd) < count:  # noqa: ASYNC110
        await trio.sleep(0.01)  # polling the daemon from outside, as a client would


class EventFeed:
    """One WS /events subscription; events are taken by matching, in order of arrival."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.backlog: list[dict[str, Any]] = []  # arrived, not taken yet

    async def next(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first event not taken yet for which `match` is true (waiting for it)."""
        for i, event in enumerate(self.backlog):
            if match(event):
                return self.backlog.pop(i)
        while True:
            new: dict[str, Any] = json.loads(await self.ws.get_message())
            if match(new):
                return new
            self.backlog.append(new)

    async def kind(self, kind: str, subject: str | None = None) -> dict[str, Any]:
        return await self.next(
            lambda e: e["kind"] == kind and (subject is None or e["subject"] == subject)
        )


@asynccontextmanager
async def events(rocd: RunningDaemon, kinds: str = "") -> AsyncIterator[EventFeed]:
    """Subscribe to the daemon's events (comma-separated kinds); live on entry."""
    before = await subscribers(rocd)
    async with open_websocket_url(f"{rocd.ws_url}/events?kind={kinds}") as ws:
        await wait_subscribed(rocd, before + 1)
        yield EventFeed(ws)
