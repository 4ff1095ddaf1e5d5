"""Learning the address a UDP socket is seen from: probes to a rendezvous, and its echo.

Behind a NAT, the address a UDP socket is seen from outside is not its own. A rendezvous
answers a probe datagram with the source address and port it came from, so an instance
learns the public side of its mapping for that very socket (the media path can then try
a direct route by hole punching before falling back to a relay through a hub). A probe
may carry a token the rendezvous handed out over the signalling link: the rendezvous then
knows whose mapping it saw and tells the other peers (an unauthenticated datagram names
no one).

Wire format (all big-endian):

    probe:  "rdp1" | 0x01 | txid (12 bytes) | token (16 bytes, zeros: none) | padding to 64
    answer: "rdp1" | 0x02 | txid (12 bytes) | family (4 or 6) | port (2) | address (4/16)

Every datagram is hostile: a probe must be at least `PROBE_BYTES` long and the answer
(at most 36 bytes) is never larger than the probe, so the echo cannot amplify a spoofed
flood; each source address gets a small rate (`RateLimit`, in a capped table), so it
cannot be turned into a firehose either. The codec and the server's decision are pure
code (`ProbeServer.handle(data, addr, now)`); the Trio shells below own the sockets.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import trio

from ._errors import MalformedMessage

MAGIC: Final = b"rdp1"
PROBE: Final = 1
ANSWER: Final = 2
TXID_BYTES: Final = 12
TOKEN_BYTES: Final = 16
#: Length of every probe (an answer is at most 36 bytes: no amplification).
PROBE_BYTES: Final = 64
_HEAD = struct.Struct("!4sB12s")


@dataclass(frozen=True)
class Probe:
    txid: bytes
    token: bytes  # TOKEN_BYTES; all zeros when the probe names no one


@dataclass(frozen=True)
class Answer:
    txid: bytes
    host: str
    port: int


def encode_probe(txid: bytes, token: bytes = b"") -> bytes:
    if len(txid) != TXID_BYTES or len(token) not in (0, TOKEN_BYTES):
        raise ValueError("txid is 12 bytes, a token 16")
    body = _HEAD.pack(MAGIC, PROBE, txid) + (token or bytes(TOKEN_BYTES))
    return body.ljust(PROBE_BYTES, b"\0")


def parse_probe(data: bytes) -> Probe:
    if len(data) < PROBE_BYTES:
        raise MalformedMessage(f"a probe is {PROBE_BYTES} bytes, got {len(data)}")
    magic, kind, txid = _HEAD.unpack_from(data)
    if magic != MAGIC or kind != PROBE:
        raise MalformedMessage("not a rocd probe")
    start = _HEAD.size
    return Probe(txid, data[start : start + TOKEN_BYTES])


def encode_answer(txid: bytes, host: str, port: int) -> bytes:
    ip = ipaddress.ip_address(host)
    return _HEAD.pack(MAGIC, ANSWER, txid) + struct.pack("!BH", ip.version, port) + ip.packed


def parse_answer(data: bytes) -> Answer:
    if len(data) < _HEAD.size + 3:
        raise MalformedMessage("answer too short")
    magic, kind, txid = _HEAD.unpack_from(data)
    if magic != MAGIC or kind != ANSWER:
        raise MalformedMessage("not a rocd probe answer")
    family, port = struct.unpack_from("!BH", data, _HEAD.size)
    size = {4: 4, 6: 16}.get(family)
    start = _HEAD.size + 3
    if size is None or len(data) != start + size:
        raise MalformedMessage("bad address in a probe answer")
    host = str(ipaddress.ip_address(data[start : start + size]))
    return Answer(txid, host, port)


class RateLimit:
    """A token bucket per source address, in a table of at most `max_sources` (the
    least recently seen source is forgotten first)."""

    def __init__(self, rate: float = 10.0, burst: float = 10.0, max_sources: int = 1024):
        self.rate = rate  # probes per second
        self.burst = burst
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, source: str, now: float) -> bool:
        tokens, last = self._buckets.pop(source, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[source] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)
        return allowed


class ProbeServer:
    """The rendezvous's side, sans-IO: `handle` gives the answer to send back, or None.

    `seen(token, host, port)` hears of every probe that carried a token (the cluster
    knows which peer it handed that token to)."""

    def __init__(
        self,
        seen: Callable[[bytes, str, int], None] | None = None,
        limit: RateLimit | None = None,
    ) -> None:
        self._seen = seen
        self.limit = limit or RateLimit()
        self.answered = 0
        self.refused = 0

    def handle(self, data: bytes, host: str, port: int, now: float) -> bytes | None:
        try:
            probe = parse_probe(data)
        except MalformedMessage:
            self.refused += 1
            return None
        if not self.limit.allow(host, now):
            self.refused += 1
            return None
        if self._seen is not None and any(probe.token):
            self._seen(probe.token, host, port)
        self.answered += 1
        return encode_answer(probe.txid, host, port)


async def serve_probes(
    sock: trio.socket.SocketType,
    server: ProbeServer,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Answer probes on the bound UDP `sock` until cancelled (the caller closes it)."""
    task_status.started()
    while True:
        data, addr = await sock.recvfrom(2048)
        answer = server.handle(data, _host(addr[0]), addr[1], trio.current_time())
        if answer is not None:
            try:
                await sock.sendto(answer, addr)
            except OSError:
                server.refused += 1  # unreachable for now; the prober tries again


async def learn_udp_address(
    sock: trio.socket.SocketType,
    rendezvous: tuple[str, int],
    *,
    token: bytes = b"",
    interval: float = 1.0,
    tries: int = 3,
) -> tuple[str, int]:
    """The (host, port) the rendezvous sees `sock`'s datagrams come from.

    Sends up to `tries` probes, `interval` seconds apart, from `sock` (bound, and not
    read by anyone else meanwhile: datagrams that are not the answer are dropped).
    Raises TimeoutError when no answer comes; on cancellation nothing is left behind.
    """
    txid = os.urandom(TXID_BYTES)
    probe = encode_probe(txid, token)
    for _ in range(tries):
        await sock.sendto(probe, rendezvous)
        with trio.move_on_after(interval):
            while True:
                data, _addr = await sock.recvfrom(2048)
                try:
                    answer = parse_answer(data)
                except MalformedMessage:
                    continue
                if answer.txid == txid:
                    return answer.host, answer.port
    raise TimeoutError(f"no probe answer from {rendezvous[0]}:{rendezvous[1]}")


def _host(host: str) -> str:
    """An IPv4-mapped IPv6 address as plain IPv4."""
    if host.startswith("::ffff:"):
        return host.removeprefix("::ffff:")
    return host
