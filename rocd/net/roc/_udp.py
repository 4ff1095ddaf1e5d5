"""UDP for the real-time path under Trio: non-blocking sockets, batched reads.

Measured here (PLATFORM.md): awaiting each datagram gives ~180k receives/s, draining all
queued datagrams per wake-up >350k/s. So a reader waits once, then takes everything the
kernel holds (up to a batch, to stay fair to other tasks). Sends never wait: a full
socket buffer drops the datagram and counts it, as a congested link would; the audio
path must never stall on the network.

Datagrams longer than `max_datagram` are dropped and counted (a Roc receiver drops them
too: 2048 bytes by default), rather than delivered truncated.

Sends of runs of equal-sized datagrams to one address (`send_many`) use UDP segmentation
offload, and receivers may ask for GRO (`gro`), so that such a run crosses the kernel as
one buffer: one system call each side instead of one per datagram (the bytes on the wire
are the same datagrams). On loopback, measured here: 2 datagrams sent and read 12.3 ->
7.9 us, 10 datagrams 54 -> 9 us. Segmentation offload is opt-in (`gso`): the run stays
one packet until a device cuts it, so on paths that never reach one (loopback, a veth
into a network namespace or container) whatever drops packets there (netfilter's
`statistic` match, the project's way to emulate kernel loss) drops a whole run at once:
the repair packets of a FEC block share one fate, and independent loss becomes bursts
that FEC cannot repair. GRO on a receive socket changes nothing a sender can see.

Links that run on a tick (`Ticker`) do not wait on their sockets at all: every tick they
`drain` what arrived since the last one. The kernel stamps each datagram on arrival
(SO_TIMESTAMPNS, ~1 us per datagram) so jitter and stalling are measured at the arrival
time, not at the tick; a task wake-up per datagram would cost ~20 us.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import msgspec
import trio

from ._types import Buffer

__all__ = [
    "Address",
    "ListenError",
    "UdpEndpoint",
    "UdpStats",
    "bind_udp",
    "open_udp_socket",
    "read_batch",
    "resolve_udp",
]

Address = tuple[str, int]

#: Datagrams handled per wake-up before letting other tasks run.
BATCH: Final = 256

#: Linux SO_TIMESTAMPNS (not exported by Python's socket module): arrival time of each
#: datagram, CLOCK_REALTIME, as a struct timespec in the ancillary data.
_SO_TIMESTAMPNS: Final = 35

#: Linux UDP segmentation offload (not exported by Python's socket module either): a
#: `sendmsg` control message with the segment size. The kernel takes at most 64 segments
#: (older kernels) and one IP datagram's worth of bytes per call.
_SOL_UDP: Final = 17
_UDP_SEGMENT: Final = 103
_GSO_SIZE = struct.Struct("@H")
_UDP_GRO: Final = 104  # receive side: runs of datagrams in one read, with their size
_GRO_SIZE = struct.Struct("@i")
_GSO_MAX_SEGMENTS: Final = 64
_GSO_MAX_BYTES: Final = 60_000
_GSO_UNSUPPORTED: Final = frozenset(
    {errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP, errno.EMSGSIZE}
)
_TIMESPEC = struct.Struct("@qq")


def open_udp_socket(family: int, buffer: int = 1 << 20) -> socket.socket:
    """A non-blocking UDP socket with larger kernel buffers (capped by net.core.*mem_max)."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, buffer)
    except BaseException:
        sock.close()
        raise
    return sock


def read_batch(sock: socket.socket, size: int, limit: int = BATCH) -> list[tuple[bytes, Any]]:
    """The datagrams queued on a non-blocking socket, at most `limit` of them."""
    batch = []
    for _ in range(limit):
        try:
            batch.append(sock.recvfrom(size))
        except BlockingIOError:
            break
        except OSError:
            continue  # an ICMP error surfaced on this socket: not a datagram
    return batch


class ListenError(OSError):
    """A UDP socket that could not be bound: the system's error (errno and strerror kept),
    with the address it was for, so that one line can say which of several it was."""

    def __init__(self, exc: OSError, address: Address) -> None:
        super().__init__(exc.errno, exc.strerror)
        self.address = address

    def __str__(self) -> str:
        host, port = self.address[:2]
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return f"cannot listen on {where}: {self.strerror}"


def bind_udp(sock: socket.socket, address: Address) -> None:
    """`sock.bind(address)`; ListenError (naming `address`) when the system refuses."""
    try:
        sock.bind(address)
    except OSError as exc:
        raise ListenError(exc, address) from None


async def resolve_udp(address: Address) -> tuple[int, Address]:
    """(family, numeric address) of a host name or literal; OSError if it does not resolve."""
    host, port = address
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host!r}: {exc.strerror}") from None
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    family, _type, _proto, _name, sockaddr = infos[0]
    return int(family), (str(sockaddr[0]), int(sockaddr[1]))


class UdpStats(msgspec.Struct):
    received: int = 0
    oversize: int = 0  # dropped: longer than max_datagram
    sent: int = 0
    send_dropped: int = 0  # socket buffer full
    send_errors: int = 0  # e.g. ICMP port unreachable reported on the socket


class UdpEndpoint:
    """One bound UDP socket; `receive` waits then drains, `send` never waits."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        max_datagram: int = 2048,
        timestamps: bool = False,
        gro: bool = False,
        gso: bool = False,
    ) -> None:
        self.sock = sock
        self.max_datagram = max_datagram
        self.stats = UdpStats()
        self.local: Address = sock.getsockname()[:2]
        self.fd = sock.fileno()
        self._gso = gso and sock.family in (socket.AF_INET, socket.AF_INET6)
        self.timestamps = False
        if timestamps:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                self.timestamps = True
            except OSError:
                pass  # not Linux: arrival = drain time
        self.gro = False
        if gro:
            try:
                sock.setsockopt(_SOL_UDP, _UDP_GRO, 1)
                self.gro = True
            except OSError:
                pass  # not Linux >= 5.0: one datagram per read

    @classmethod
    async def bind(
        cls,
        address: Address,
        *,
        max_datagram: int = 2048,
        multicast_iface: str | None = None,
        reuse_address: bool = False,
        family: int | None = None,
        timestamps: bool = False,
        gro: bool = False,
        gso: bool = False,
    ) -> UdpEndpoint:
        """Bind `address` (port 0: any free port). A multicast group address is joined on
        `multicast_iface` ('0.0.0.0' = any) when given, with SO_REUSEADDR as Roc does.
        `gro`: let the kernel hand over runs of datagrams in one read (for `drain` only);
        `gso`: let `send_many` hand runs of datagrams to the kernel in one call."""
        fam, resolved = await resolve_udp(address)
        sock = open_udp_socket(family or fam)
        try:
            group = ipaddress.ip_address(resolved[0]).is_multicast
            if reuse_address or group:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            bind_udp(sock, resolved)
            if group and multicast_iface is not None:
                _join(sock, resolved[0], multicast_iface)
        except BaseException:
            sock.close()
            raise
        return cls(sock, max_datagram=max_datagram, timestamps=timestamps, gro=gro, gso=gso)

    def close(self) -> None:
        """Close the socket; a task waiting in `receive` gets trio.ClosedResourceError."""
        if self.sock.fileno() != -1:
            trio.lowlevel.notify_closing(self.sock)
            self.sock.close()

    async def receive(self) -> list[tuple[bytes, Address]]:
        """Wait for datagrams, then return every one queued (up to a batch)."""
        while True:
            await trio.lowlevel.wait_readable(self.sock)
            batch = read_batch(self.sock, self.max_datagram + 1)
            if not batch:
                continue
            out: list[tuple[bytes, Address]] = []
            for data, source in batch:
                if len(data) > self.max_datagram:
                    self.stats.oversize += 1
                    continue
                out.append((data, source[:2]))
            self.stats.received += len(out)
            if out:
                return out

    def drain(
        self, now_ns: int, wall_ns: int, limit: int = 4 * BATCH
    ) -> list[tuple[bytes, Address, int]]:
        """Every datagram queued now (up to `limit`), never waiting, with its arrival time
        on the caller's monotonic clock (`now_ns`, read together with `wall_ns`)."""
        out: list[tuple[bytes, Address, int]] = []

        def keep(data: bytes, source: Address, arrival: int) -> None:
            out.append((data, source, arrival))

        self.drain_to(keep, now_ns, wall_ns, limit)
        return out

    def drain_to(
        self,
        handler: Callable[[bytes, Address, int], object],
        now_ns: int,
        wall_ns: int,
        limit: int = 4 * BATCH,
    ) -> int:
        """`drain`, handing each datagram to `handler(data, source, arrival_ns)` as it is
        read (no list, no tuples: this runs for every packet); how many were handed."""
        max_datagram = self.max_datagram
        # With GRO a read may hold a run of datagrams: room for the largest run.
        size = 65536 if self.gro else max_datagram + 1
        sock = self.sock
        offset = now_ns - wall_ns  # wall clock -> caller's clock
        oldest = now_ns - 1_000_000_000  # a wall clock step must not move arrivals far
        unpack = _TIMESPEC.unpack_from
        count = 0
        if self.timestamps or self.gro:
            recvmsg = sock.recvmsg
            for _ in range(limit):
                try:
                    data, ancillary, _flags, source = recvmsg(size, 64)
                except BlockingIOError:
                    break
                except OSError:
                    continue  # an ICMP error surfaced on this socket: not a datagram
                arrival = now_ns
                segment = 0
                for level, kind, cdata in ancillary:
                    if kind == _SO_TIMESTAMPNS and level == socket.SOL_SOCKET:
                        sec, nsec = unpack(cdata)
                        arrival = sec * 1_000_000_000 + nsec + offset
                        if arrival > now_ns:
                            arrival = now_ns
                        elif arrival < oldest:
                            arrival = oldest
                    elif kind == _UDP_GRO and level == _SOL_UDP:
                        segment = _GRO_SIZE.unpack_from(cdata)[0]
                source = source[:2]
                if segment and len(data) > segment:
                    # A run of datagrams of `segment` bytes (the last one may be shorter).
                    if segment > max_datagram:
                        self.stats.oversize += -(-len(data) // segment)
                        continue
                    for k in range(0, len(data), segment):
                        handler(data[k : k + segment], source, arrival)
                        count += 1
                    continue
                if len(data) > max_datagram:
                    self.stats.oversize += 1
                    continue
                handler(data, source, arrival)
                count += 1
        else:
            recvfrom = sock.recvfrom
            for _ in range(limit):
                try:
                    data, source = recvfrom(size)
                except BlockingIOError:
                    break
                except OSError:
                    continue
                if len(data) > max_datagram:
                    self.stats.oversize += 1
                    continue
                handler(data, source[:2], now_ns)
                count += 1
        self.stats.received += count
        return count

    def send_many(self, datagrams: Iterable[tuple[Buffer, Address]]) -> int:
        """`send` each (data, address) in turn; how many the kernel took.

        Runs of equal-sized datagrams to one address (the source packets of a 10 ms chunk,
        the repair packets of a FEC block) go to the kernel in one `sendmsg` with UDP
        segmentation offload (UDP_SEGMENT, Linux >= 4.18): the kernel cuts the buffer
        back into the same datagrams, so the wire sees exactly what separate sends would
        give, for one system call instead of one per datagram (measured here: 2 datagrams
        7.6 -> 6.0 us, 10 datagrams 38 -> 11 us). Where the kernel refuses it, the
        endpoint falls back to one send per datagram for good. Only with `gso` (see the
        module docstring for why it is off by default).
        """
        items = datagrams if isinstance(datagrams, list) else list(datagrams)
        stats = self.stats
        sock = self.sock
        n = len(items)
        sent = i = 0
        while i < n:
            data, address = items[i]
            j = i + 1
            if self._gso:
                size = len(data)
                limit = min(n, i + _GSO_MAX_SEGMENTS, i + _GSO_MAX_BYTES // max(size, 1))
                while j < limit and len(items[j][0]) == size and items[j][1] == address:
                    j += 1
            if j - i > 1:
                try:
                    sock.sendmsg(
                        [d for d, _a in items[i:j]],
                        [(_SOL_UDP, _UDP_SEGMENT, _GSO_SIZE.pack(size))],
                        0,
                        address,
                    )
                except BlockingIOError:
                    stats.send_dropped += j - i
                except OSError as exc:
                    if exc.errno in _GSO_UNSUPPORTED:
                        self._gso = False
                    # Unsupported, or an error pending on the socket (an ICMP report of
                    # an earlier send): send this run one by one.
                    for d, a in items[i:j]:
                        sent += self._send_one(d, a)
                else:
                    sent += j - i
            else:
                sent += self._send_one(data, address)
            i = j
        stats.sent += sent
        return sent

    def send_routed(
        self, datagrams: Iterable[tuple[Buffer, int]], route: Sequence[Address | None]
    ) -> int:
        """`send_many` of datagrams that name their address by its index in `route`
        (None there: the datagram is not sent); how many the kernel took.

        For a sender that queues datagrams ahead of their time while where they go may
        change (`route` is read at the send)."""
        if self._gso:
            return self.send_many([(d, a) for d, i in datagrams if (a := route[i]) is not None])
        stats = self.stats
        sendto = self.sock.sendto
        sent = 0
        for data, index in datagrams:
            address = route[index]
            if address is None:
                continue
            try:
                sendto(data, address)
            except BlockingIOError:
                stats.send_dropped += 1
            except OSError:
                stats.send_errors += 1
            else:
                sent += 1
        stats.sent += sent
        return sent

    def _send_one(self, data: Buffer, address: Address) -> bool:
        """sendto, counting a drop or an error (not a success)."""
        try:
            self.sock.sendto(data, address)
        except BlockingIOError:
            self.stats.send_dropped += 1
            return False
        except OSError:
            self.stats.send_errors += 1
            return False
        return True

    def send(self, data: bytes, address: Address) -> bool:
        """Send now or drop (buffer full / error); True when the kernel took it."""
        if self._send_one(data, address):
            self.stats.sent += 1
            return True
        return False


def _join(sock: socket.socket, group: str, iface: str) -> None:
    if ":" in group:
        index = socket.if_nametoindex(iface) if iface not in ("", "::") else 0
        mreq6 = socket.inet_pton(socket.AF_INET6, group) + index.to_bytes(4, "little")
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq6)
    else:
        mreq = socket.inet_aton(group) + socket.inet_aton(iface or "0.0.0.0")
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
