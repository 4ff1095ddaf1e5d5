"""The Trio shell of a hub's media relay: four UDP sockets around one `HubRelay`.

Each socket has one task that waits until it is readable, then drains what arrived and
hands every datagram to the relay, which says where it goes; sends never wait (a full
buffer drops, as the network would). Ports come from a `PortPool`: a bounded range an
operator can open in a firewall, or ephemeral ports.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import trio

from ._media_hub import HubRelay, HubRole
from ._udp import Address, UdpEndpoint, open_udp_socket

__all__ = ["HubRelayLink", "PortPool"]

log = logging.getLogger("rocd.net.roc.hub")

#: The largest datagram relayed (a Roc receiver takes 2048 bytes; RTCP may be larger).
MAX_DATAGRAM = 4096


class PortPool:
    """Ports a hub binds relay sockets to: `first`..`last` (inclusive), or ephemeral
    ports when `first` is 0."""

    def __init__(self, first: int = 0, last: int = 0) -> None:
        if first and not 0 < first <= last <= 65535:
            raise ValueError(f"bad port range {first}-{last}")
        self.first, self.last = first, last
        self._next = first

    def bind(self, host: str, count: int) -> list[socket.socket]:
        """`count` bound non-blocking UDP sockets; OSError when the range has no room."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        out: list[socket.socket] = []
        try:
            if not self.first:
                for _ in range(count):
                    sock = open_udp_socket(family)
                    out.append(sock)
                    sock.bind((host, 0))
                return out
            span = self.last - self.first + 1
            for _ in range(span):
                if len(out) == count:
                    break
                port = self._next
                self._next = self.first + (self._next - self.first + 1) % span
                sock = open_udp_socket(family)
                try:
                    sock.bind((host, port))
                except OSError:
                    sock.close()
                    continue
                out.append(sock)
            if len(out) < count:
                raise OSError(f"no free UDP port left in {self.first}-{self.last}")
            return out
        except BaseException:
            for sock in out:
                sock.close()
            raise

    def bind_ports(self, host: str, ports: list[int]) -> list[socket.socket]:
        """Bound non-blocking UDP sockets at exactly `ports` (a relay a hub had before it
        restarted); OSError when one of them is taken (or outside the range)."""
        if self.first and not all(self.first <= p <= self.last for p in ports):
            raise OSError(f"ports {ports} are not all in {self.first}-{self.last}")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        out: list[socket.socket] = []
        try:
            for port in ports:
                sock = open_udp_socket(family)
                out.append(sock)
                sock.bind((host, port))
            return out
        except BaseException:
            for sock in out:
                sock.close()
            raise


class HubRelayLink:
    """One relay's sockets: S_source, S_repair, S_control (the sender's side) and Y (the
    receiver's side); `run` relays until cancelled, then closes them."""

    def __init__(
        self,
        relay: HubRelay,
        sockets: list[socket.socket],
        *,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        if len(sockets) != 4:
            raise ValueError("a relay has four sockets")
        self.relay = relay
        self._clock = clock
        self.udp = [UdpEndpoint(s, max_datagram=MAX_DATAGRAM) for s in sockets]

    @property
    def ports(self) -> tuple[tuple[int, int, int], int]:
        """((S_source, S_repair, S_control), Y)."""
        s, r, c, y = (u.local[1] for u in self.udp)
        return (s, r, c), y

    async def run(self) -> None:
        """Relay until cancelled; the sockets are closed on the way out."""
        try:
            async with trio.open_nursery() as nursery:
                for role in (HubRole.SOURCE, HubRole.REPAIR, HubRole.CONTROL):
                    nursery.start_soon(self._pump_sender_side, role)
                nursery.start_soon(self._pump_receiver_side)
        finally:
            self.close()

    def close(self) -> None:
        for udp in self.udp:
            udp.close()

    async def _pump_sender_side(self, role: HubRole) -> None:
        udp, out = self.udp[role], self.udp[3]
        relay = self.relay
        while True:
            for data, source in await _take(udp):
                target = relay.from_sender(role, data, source, self._clock())
                if target is not None:
                    out.send(data, target)

    async def _pump_receiver_side(self) -> None:
        udp, out = self.udp[3], self.udp[HubRole.CONTROL]
        relay = self.relay
        while True:
            for data, source in await _take(udp):
                target = relay.from_receiver(data, source, self._clock())
                if target is not None:
                    out.send(data, target)


async def _take(udp: UdpEndpoint) -> list[tuple[bytes, Address]]:
    """The datagrams queued on `udp` (waiting for the first; at most a batch)."""
    return await udp.receive()
