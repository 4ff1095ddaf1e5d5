"""The send thread's loop in C, when it is built (optional): `NativeSendThread`.

Why: a paced sender sends a burst every 10 ms, and a thread that wakes up for each costs
most in what it runs per wake-up. Measured here, a thread that sleeps to each burst and
sends three datagrams: 1.0-1.2 % of a core in Python, 0.6-0.75 % in C; in `rocd send`
(one RS8M stream) the Python `SendThread` took 1.4-1.7 % of a core, as much as roc-send in
all. `_send_native.c` is that loop: a queue of datagrams with their due times (CLOCK_MONOTONIC)
and the index of their address in a route of three; `sq_run`, called through ctypes
from a worker thread (ctypes lets go of the interpreter's lock for the call), sleeps to
the first one due and sends all due then in one `sendmmsg`, until stopped. Trio pushes
the datagrams (a copy each) and the route, and never waits on it.

It is a plain shared library loaded with ctypes: `build()` compiles it next to this file
with the system's C compiler (scripts/setup.sh does). Without it `SendThread` sends.
"""

from __future__ import annotations

import ctypes
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from ._native import NativeLibrary
from ._send_thread import run_in_thread
from ._ticker import now_ns
from ._udp import Address, UdpStats

__all__ = ["NativeSendThread", "available", "build"]

_NATIVE = NativeLibrary("send_native", "-O2", "-pthread")

#: The largest datagram handed back by `take_queued` (a UDP payload's limit).
_MAX_DATAGRAM = 65535

_i64 = ctypes.c_int64
_i32 = ctypes.c_int32
_u32 = ctypes.c_uint32
_p = ctypes.c_void_p


def _load() -> ctypes.CDLL | None:
    lib = _NATIVE.load()
    if lib is None:
        return None
    lib.sq_new.restype = _p
    lib.sq_new.argtypes = []
    lib.sq_free.argtypes = [_p]
    lib.sq_push.restype = ctypes.c_int
    lib.sq_push.argtypes = [_p, _i64, _i32, ctypes.c_char_p, _u32]
    lib.sq_pop.restype = ctypes.c_int
    lib.sq_pop.argtypes = [_p, ctypes.POINTER(_i64), ctypes.POINTER(_i32), _p, _u32,
                           ctypes.POINTER(_u32)]  # fmt: skip
    lib.sq_set_route.argtypes = [_p, _i32, ctypes.c_char_p, _u32]
    lib.sq_queued.restype = _i64
    lib.sq_queued.argtypes = [_p]
    lib.sq_stats.argtypes = [_p, ctypes.POINTER(_i64)]
    lib.sq_stop.argtypes = [_p]
    lib.sq_reset.argtypes = [_p]
    lib.sq_run.argtypes = [_p, ctypes.c_int]
    return lib


_LIB = _load()


def available() -> bool:
    """Whether the compiled send loop is loaded."""
    return _LIB is not None


def build() -> Path:
    """Compile the library (see `NativeLibrary.build`)."""
    return _NATIVE.build()


def _sockaddr(family: int, address: Address) -> bytes:
    """The struct sockaddr of a numeric `address` (resolved already)."""
    host, port = address[0], address[1]
    if family == socket.AF_INET6:
        flowinfo = address[2] if len(address) > 2 else 0
        scope = address[3] if len(address) > 3 else 0
        return (
            socket.AF_INET6.to_bytes(2, "little")
            + port.to_bytes(2, "big")
            + int(flowinfo).to_bytes(4, "big")
            + socket.inet_pton(socket.AF_INET6, host)
            + int(scope).to_bytes(4, "little")
        )
    return (
        socket.AF_INET.to_bytes(2, "little")
        + port.to_bytes(2, "big")
        + socket.inet_pton(socket.AF_INET, host)
        + bytes(8)
    )


class NativeSendThread:
    """`SendThread` for batches of routed datagrams ((payload, route index), see
    `SendLink`), sent by the C loop from `sock` to the addresses of `set_route`."""

    def __init__(self, sock: socket.socket, stats: UdpStats) -> None:
        assert _LIB is not None, "the native send loop is not built"
        self._lib = _LIB
        self._sock = sock
        self._stats = stats
        self._q: int = _LIB.sq_new()
        if not self._q:
            raise MemoryError("no memory for a send queue")
        self._offset_ns = now_ns() - time.perf_counter_ns()  # Trio's clock - monotonic
        self._counted = [0, 0, 0]  # sent, dropped, errors already added to `stats`

    def __del__(self) -> None:
        q, self._q = getattr(self, "_q", 0), 0
        if q:
            self._lib.sq_free(q)

    def set_route(self, route: Sequence[Address | None]) -> None:
        """Where datagrams of route index i go from now on (None: not sent)."""
        family = self._sock.family
        for index, address in enumerate(route):
            raw = b"" if address is None else _sockaddr(family, address)
            self._lib.sq_set_route(self._q, index, raw, len(raw))

    def put(self, due_ns: int, batch: Sequence[tuple[bytes, int]]) -> None:
        """Queue `batch` to leave at `due_ns` (Trio's clock), after those queued before."""
        push, q = self._lib.sq_push, self._q
        due = due_ns - self._offset_ns
        for data, index in batch:
            if push(q, due, index, data, len(data)) != 0:
                raise MemoryError("no memory for a queued datagram")

    @property
    def queued(self) -> int:
        """Datagrams queued and not sent."""
        return int(self._lib.sq_queued(self._q))

    def count(self) -> None:
        """Add what the loop sent, dropped or failed since the last call to `stats`."""
        values = (_i64 * 5)()
        self._lib.sq_stats(self._q, values)
        stats, counted = self._stats, self._counted
        stats.sent += values[0] - counted[0]
        stats.send_dropped += values[1] - counted[1]
        stats.send_errors += values[2] - counted[2]
        self._counted = [values[0], values[1], values[2]]

    @property
    def late_ns(self) -> int:
        """The latest a burst left after its time."""
        values = (_i64 * 5)()
        self._lib.sq_stats(self._q, values)
        return int(values[4])

    def take_queued(self) -> list[tuple[int, list[tuple[bytes, int]]]]:
        """What was queued and not sent (call once `run` has returned), in batches of
        one due time."""
        out: list[tuple[int, list[tuple[bytes, int]]]] = []
        buf = ctypes.create_string_buffer(_MAX_DATAGRAM)
        due, index, size = _i64(), _i32(), _u32()
        while self._lib.sq_pop(self._q, due, index, buf, _MAX_DATAGRAM, size) == 0:
            at = due.value + self._offset_ns
            item = (buf.raw[: size.value], index.value)
            if out and out[-1][0] == at:
                out[-1][1].append(item)
            else:
                out.append((at, [item]))
        return out

    async def run(self) -> None:
        """Send from a worker thread until cancelled; then the loop stops at once (what is
        queued stays queued: `take_queued`) and is waited for."""
        lib, q, fd = self._lib, self._q, self._sock.fileno()
        lib.sq_reset(q)
        try:
            await run_in_thread(lambda: lib.sq_run(q, fd), lambda: lib.sq_stop(q))
        finally:
            self.count()
