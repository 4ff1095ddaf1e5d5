"""A UDP impairment relay: the Trio shell around `ImpairmentModel`.

Sits between a sender and a receiver, one listen port per receiver port, e.g.::

    client --> 127.0.0.1:P1 --[forward model]--> receiver source port
           --> 127.0.0.1:P2 --[forward model]--> receiver repair port
           --> 127.0.0.1:P3 --[forward model]--> receiver control port
           <-- 127.0.0.1:P3 <--[reverse model]-- receiver control port (RTCP reports)

A Roc receiver ties repair packets (they have no SSRC) to a session by the UDP source
address, so everything one client sends, on every listen port, leaves the relay from ONE
upstream socket owned by that client. What a target sends back to that upstream socket goes
to the client from the listen socket of the route whose target replied.

The datagrams each model lets through are sent at their delivery time by one sender task
(a `DueQueue`); a datagram already due goes out at once when
nothing due earlier is queued. Sockets are plain non-blocking sockets driven with
`trio.lowlevel.wait_readable`, and every wake-up drains what is queued: one `await` per
burst rather than per datagram.
"""

import contextlib
import socket
from collections.abc import Sequence

import msgspec
import trio

from ._due import DueQueue, clock_ns
from ._impairment import ImpairmentConfig, ImpairmentCounters, ImpairmentModel
from ._udp import BATCH as _BATCH
from ._udp import Address, bind_udp, open_udp_socket, read_batch, resolve_udp

__all__ = ["RelayCounters", "RelayRoute", "UdpRelay"]


class RelayRoute(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One listen address (port 0: any free port) and the target it forwards to."""

    listen: Address
    target: Address

    def __post_init__(self) -> None:
        for name in ("listen", "target"):
            _host, port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ValueError(f"RelayRoute.{name} port must be in [0, 65535], got {port}")
        if self.target[1] == 0:
            raise ValueError("RelayRoute.target port must not be 0")


class RelayCounters(msgspec.Struct, kw_only=True):
    """A snapshot of one direction of the relay, in datagrams."""

    impairment: ImpairmentCounters
    """What the direction's model did (received, dropped, duplicated, ...)."""
    sent: int = 0
    """Datagrams actually written to a socket."""
    send_errors: int = 0
    """Writes that failed (the socket was closed or the OS refused)."""
    unroutable: int = 0
    """Reverse only: datagrams from an address that is no route's target."""
    pending: int = 0
    """Scheduled, not sent yet."""


class _Direction:
    __slots__ = ("model", "pending", "send_errors", "sent", "unroutable")

    def __init__(self, config: ImpairmentConfig | None) -> None:
        self.model = ImpairmentModel(config or ImpairmentConfig())
        self.sent = 0
        self.send_errors = 0
        self.unroutable = 0
        self.pending = 0

    def snapshot(self) -> RelayCounters:
        return RelayCounters(
            impairment=msgspec.structs.replace(self.model.counters),
            sent=self.sent,
            send_errors=self.send_errors,
            unroutable=self.unroutable,
            pending=self.pending,
        )


class _Client:
    __slots__ = ("address", "last_seen_ns", "sock")

    def __init__(self, address: Address, sock: socket.socket, now_ns: int) -> None:
        self.address = address
        self.sock = sock
        self.last_seen_ns = now_ns


# (deliver_at_ns, tie-break sequence, direction, socket, datagram, destination)
_Item = tuple[_Direction, socket.socket, bytes, Address]


class UdpRelay:
    """A UDP relay applying a forward (client -> target) and a reverse impairment model.

    `max_clients` bounds the upstream sockets: a new client beyond it replaces the one
    silent for longest. `upstream_host` is the address upstream sockets bind to (default:
    the wildcard of the targets' family). Datagrams longer than `max_datagram` bytes are
    truncated by the OS, as on any UDP socket with that buffer.
    """

    def __init__(
        self,
        routes: Sequence[RelayRoute],
        *,
        forward: ImpairmentConfig | None = None,
        reverse: ImpairmentConfig | None = None,
        max_clients: int = 64,
        upstream_host: str | None = None,
        max_datagram: int = 65535,
        socket_buffer: int = 1 << 20,
    ) -> None:
        if not routes:
            raise ValueError("UdpRelay needs at least one route")
        if max_clients < 1:
            raise ValueError(f"UdpRelay max_clients must be >= 1, got {max_clients}")
        self.routes = tuple(routes)
        self._forward = _Direction(forward)
        self._reverse = _Direction(reverse)
        self._max_clients = max_clients
        self._upstream_host = upstream_host
        self._max_datagram = max_datagram
        self._socket_buffer = socket_buffer
        self._listen: list[socket.socket] = []
        self._targets: list[Address] = []
        self._route_of_target: dict[Address, int] = {}
        self._family: int = socket.AF_INET
        self._clients: dict[Address, _Client] = {}
        self._held = DueQueue[_Item]()  # datagrams, at the time they come out of the link
        self._nursery: trio.Nursery | None = None
        self._started = False

    @property
    def forward_counters(self) -> RelayCounters:
        """Client -> target direction."""
        return self._forward.snapshot()

    @property
    def reverse_counters(self) -> RelayCounters:
        """Target -> client direction."""
        return self._reverse.snapshot()

    @property
    def clients(self) -> dict[Address, Address]:
        """Each client address and the address of its upstream socket."""
        return {a: c.sock.getsockname()[:2] for a, c in self._clients.items()}

    async def run(
        self, *, task_status: trio.TaskStatus[list[Address]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Bind the listen sockets, report their addresses, relay until cancelled.

        Use as `addresses = await nursery.start(relay.run)`; addresses are in route order.
        On cancellation every socket (listen and upstream) is closed and the datagrams
        still scheduled are discarded.
        """
        if self._started:
            raise RuntimeError("UdpRelay.run can be called once")
        self._started = True
        try:
            bound = await self._bind_listen()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for index in range(len(self._listen)):
                    nursery.start_soon(self._pump_listen, index)
                nursery.start_soon(self._send_loop)
                task_status.started(bound)
        finally:
            self._nursery = None
            for client in self._clients.values():
                client.sock.close()
            self._clients.clear()
            for sock in self._listen:
                sock.close()
            self._forward.pending = self._reverse.pending = 0
            self._held.clear()

    async def _bind_listen(self) -> list[Address]:
        families = set()
        for index, route in enumerate(self.routes):
            family, target = await resolve_udp(route.target)
            families.add(family)
            self._targets.append(target)
            self._route_of_target.setdefault(target, index)
        if len(families) != 1:
            raise ValueError("UdpRelay targets must all be IPv4 or all IPv6")
        self._family = families.pop()
        bound: list[Address] = []
        for route in self.routes:
            family, listen = await resolve_udp(route.listen)
            sock = self._socket(family)
            self._listen.append(sock)
            bind_udp(sock, listen)
            bound.append(sock.getsockname()[:2])
        return bound

    def _socket(self, family: int) -> socket.socket:
        return open_udp_socket(family, self._socket_buffer)

    def _client(self, address: Address, now_ns: int) -> _Client:
        client = self._clients.get(address)
        if client is not None:
            client.last_seen_ns = now_ns
            return client
        if len(self._clients) >= self._max_clients:
            oldest = min(self._clients.values(), key=lambda c: c.last_seen_ns)
            del self._clients[oldest.address]
            trio.lowlevel.notify_closing(oldest.sock)  # wakes its pump with ClosedResourceError
            oldest.sock.close()
        sock = self._socket(self._family)
        try:
            wildcard = "::" if self._family == socket.AF_INET6 else "0.0.0.0"
            sock.bind((self._upstream_host or wildcard, 0))
        except BaseException:
            sock.close()
            raise
        client = _Client(address, sock, now_ns)
        self._clients[address] = client
        assert self._nursery is not None
        self._nursery.start_soon(self._pump_upstream, client)
        return client

    async def _pump_listen(self, index: int) -> None:
        sock = self._listen[index]
        target = self._targets[index]
        clock = trio.lowlevel.current_clock()
        while True:
            await trio.lowlevel.wait_readable(sock)
            for data, source in read_batch(sock, self._max_datagram):
                now = clock_ns(clock)
                client = self._client(source[:2], now)
                self._dispatch(self._forward, now, data, client.sock, target)

    async def _pump_upstream(self, client: _Client) -> None:
        sock = client.sock
        direction = self._reverse
        clock = trio.lowlevel.current_clock()
        try:
            while True:
                await trio.lowlevel.wait_readable(sock)
                for data, source in read_batch(sock, self._max_datagram):
                    index = self._route_of_target.get(source[:2])
                    if index is None:
                        direction.unroutable += 1
                        continue
                    self._dispatch(
                        direction, clock_ns(clock), data, self._listen[index], client.address
                    )
        except trio.ClosedResourceError:
            return  # evicted: its socket was closed under us

    def _dispatch(
        self,
        direction: _Direction,
        now: int,
        data: bytes,
        sock: socket.socket,
        destination: Address,
    ) -> None:
        held = self._held
        for at, datagram in direction.model.process(now, data):
            # Already due and nothing due earlier queued: send it now (the common case of
            # a transparent link), unless the socket's buffer is full.
            first = held.first_at()
            if at <= now and (first is None or first > at):
                try:
                    sock.sendto(datagram, destination)
                except BlockingIOError:
                    pass
                except OSError:
                    direction.send_errors += 1
                    continue
                else:
                    direction.sent += 1
                    continue
            held.push(at, (direction, sock, datagram, destination))
            direction.pending += 1

    async def _send_loop(self) -> None:
        while True:
            await self._held.wait_due()
            blocked = self._send_due()
            if blocked is not None and blocked.fileno() != -1:
                # Evicted meanwhile: the retry counts the error.
                with contextlib.suppress(trio.ClosedResourceError):
                    await trio.lowlevel.wait_writable(blocked)

    def _send_due(self) -> socket.socket | None:
        """Send up to a batch of due datagrams; the socket whose buffer is full, if any
        (its datagram stays first in line)."""
        held, now = self._held, clock_ns()
        for _ in range(_BATCH):
            item = held.peek_due(now)
            if item is None:
                break
            direction, sock, datagram, destination = item
            try:
                sock.sendto(datagram, destination)
            except BlockingIOError:
                return sock
            except OSError:
                direction.send_errors += 1
            else:
                direction.sent += 1
            held.pop()
            direction.pending -= 1
        return None
