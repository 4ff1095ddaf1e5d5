"""The hub: media relays for streams whose ends cannot reach each other.

An instance with `[cluster] hub` on (a rendezvous, by default) relays the audio of
streams between peers that cannot reach each other directly (see `_stream_media`). A
stream's coordinator asks it for a relay (`AllocateRelay`) over the cluster link; the
answer (`HubLease`) names four UDP ports of a `HubRelayLink` and a token the stream's
ends register with. Bounds, so that a hub's relaying cannot be turned against it:

- at most `max_relays` relays at once (each one four ports, from `[cluster] hub_ports`
  when set: a range an operator opens in a firewall), `Busy` beyond;
- each relay forwards at most its byte rate (`hub_rate_kbps`), both ways together;
- only between the addresses that registered with the relay's token;
- a relay that hears nothing (no registration, no datagram) for `IDLE_S` seconds is
  closed (its stream was deleted without telling, or both ends are gone); a coordinator
  that deletes a stream gives its relay back at once (`ReleaseRelay`).

A hub with a store keeps each relay's token and ports there (namespace "hub_relay") and
opens them again when it starts: the ends of a stream through a hub that restarted keep
registering (every `KEEPALIVE_S`) and sending to the same ports, so the audio goes on
once the hub is back, with nothing set up again. A relay whose ports are taken by then is
forgotten (its stream stays degraded until it is set up again); one that nobody uses any
more is closed when idle, as any other.
"""

from __future__ import annotations

import logging
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import trio

from rocd.errors import Busy, RocdError, Unavailable
from rocd.net.roc import HubRelay, HubRelayLink, HubRelayStats, PortPool

from ._actor import Actor, ActorRef, Request
from ._store import DeleteSetting, ListSettings, PutSetting
from ._stream_media import HUB_KIND, AllocateRelay, HubLease, ReleaseRelay

log = logging.getLogger("rocd.streams")

#: Seconds without a registration or a datagram after which a relay is closed.
IDLE_S = 30.0
#: Seconds between two looks for idle relays.
SWEEP_S = 5.0


class RelayInfo(msgspec.Struct, frozen=True):
    stream: str
    ports: tuple[int, int, int, int]  # S_source, S_repair, S_control, Y
    idle_s: float
    stats: HubRelayStats


class ListRelays(Request[list[RelayInfo]], frozen=True):
    pass


class _Kept(msgspec.Struct, frozen=True):
    """A relay as the store keeps it (namespace "hub_relay", key: the stream)."""

    token: str
    ports: tuple[int, int, int, int]  # S_source, S_repair, S_control, Y


@dataclass(eq=False)
class _Relay:
    lease: HubLease
    link: HubRelayLink
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


class StreamHub(Actor):
    kind = HUB_KIND

    def __init__(
        self,
        uid: str,
        *,
        pool: PortPool,
        max_relays: int = 32,
        rate_bytes_s: float = 1_000_000.0,
        probe_port: Callable[[], int | None] = lambda: None,
        bind_host: str = "0.0.0.0",
        idle_s: float = IDLE_S,
        store: ActorRef | None = None,
    ) -> None:
        super().__init__(uid)
        self.pool = pool
        self.max_relays = max_relays
        self.rate_bytes_s = rate_bytes_s
        self._probe_port = probe_port
        self.bind_host = bind_host
        self.idle_s = idle_s
        self._store = store
        self.relays: dict[str, _Relay] = {}

    async def on_start(self) -> None:
        self.relays = {}
        await self._reopen()
        self.nursery.start_soon(self._sweep)

    async def on_stop(self) -> None:
        for relay in self.relays.values():
            relay.link.close()
        self.relays = {}

    async def handle(self, msg: Any) -> Any:
        match msg:
            case AllocateRelay(stream=stream):
                return await self._allocate(stream)
            case ReleaseRelay(stream=stream):
                return await self._release(stream, "released")
            case ListRelays():
                now = trio.current_time()
                return [
                    RelayInfo(
                        stream,
                        (*r.lease.sender_ports, r.lease.receiver_port),
                        round(now - r.link.relay.last_heard, 3),
                        msgspec.structs.replace(r.link.relay.stats),
                    )
                    for stream, r in self.relays.items()
                ]
        return await super().handle(msg)

    async def _allocate(self, stream: str) -> HubLease:
        known = self.relays.get(stream)
        if known is not None:
            return known.lease
        if len(self.relays) >= self.max_relays:
            raise Busy(
                f"this hub relays {self.max_relays} streams already (hub_max_relays)",
                details=[{"peer": self.uid}],
            )
        try:
            sockets = self.pool.bind(self.bind_host, 4)
        except OSError as exc:
            raise Unavailable(f"no ports for a relay on this hub: {exc}") from None
        lease = self._open(stream, secrets.token_bytes(16), sockets)
        await self._keep(stream, _Kept(lease.token, (*lease.sender_ports, lease.receiver_port)))
        (s, r, c), y = lease.sender_ports, lease.receiver_port
        log.info("hub: relay for stream %s on ports %d-%d-%d / %d", stream, s, r, c, y)
        return lease

    def _open(self, stream: str, token: bytes, sockets: list[socket.socket]) -> HubLease:
        relay = HubRelay(token, rate_bytes_s=self.rate_bytes_s, now=trio.current_time())
        link = HubRelayLink(relay, sockets)
        (s, r, c), y = link.ports
        lease = HubLease(
            hub=self.uid,
            token=token.hex(),
            sender_ports=(s, r, c),
            receiver_port=y,
            probe_port=self._probe_port(),
        )
        entry = _Relay(lease, link)
        self.relays[stream] = entry
        self.nursery.start_soon(self._run, entry)
        return lease

    async def _reopen(self) -> None:
        """The relays the store kept from before a restart, at their ports again."""
        if self._store is None:
            return
        try:
            kept = await self._store.ask(ListSettings("hub_relay"))
        except RocdError as exc:
            log.warning("hub: relays of before the restart not read: %s", exc)
            return
        for stream, value in kept.items():
            try:
                relay = msgspec.convert(value, _Kept)
                token = bytes.fromhex(relay.token)
                sockets = self.pool.bind_ports(self.bind_host, list(relay.ports))
                self._open(stream, token, sockets)
            except (msgspec.ValidationError, ValueError, OSError) as exc:
                log.warning("hub: relay for stream %s not reopened: %s", stream, exc)
                await self._forget(stream)
                continue
            log.info("hub: relay for stream %s reopened on its ports %s", stream, relay.ports)

    async def _keep(self, stream: str, relay: _Kept) -> None:
        if self._store is None:
            return
        try:
            await self._store.ask(PutSetting("hub_relay", stream, msgspec.to_builtins(relay)))
        except RocdError as exc:  # relays all the same; a restart would lose it
            log.warning("hub: relay for stream %s not saved: %s", stream, exc)

    async def _forget(self, stream: str) -> None:
        if self._store is None:
            return
        try:
            await self._store.ask(DeleteSetting("hub_relay", stream))
        except RocdError as exc:
            log.warning("hub: relay for stream %s not removed from the store: %s", stream, exc)

    async def _run(self, entry: _Relay) -> None:
        with entry.scope:
            await entry.link.run()
        entry.link.close()

    async def _release(self, stream: str, why: str) -> bool:
        entry = self.relays.pop(stream, None)
        if entry is None:
            return False
        entry.scope.cancel(reason=why)
        entry.link.close()
        log.info("hub: relay for stream %s closed (%s)", stream, why)
        await self._forget(stream)
        return True

    async def _sweep(self) -> None:
        while True:
            await trio.sleep(SWEEP_S)
            now = trio.current_time()
            for stream, entry in list(self.relays.items()):
                if now - entry.link.relay.last_heard > self.idle_s:
                    await self._release(stream, f"idle for {self.idle_s:g} s")
