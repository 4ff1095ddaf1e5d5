"""The impairment model applied to real packets in the kernel: a Trio shell over a
netfilter queue (see `_nfqueue.py`).

Where the UDP relay (`_relay.py`) needs the sender pointed at its ports, this acts on
traffic as it is: an iptables rule queues the packets of a link (say, UDP from host A
to host B, in B's network namespace) and `QueueImpairment` gives each one its verdict
when `ImpairmentModel` says it comes out of the link: a loss is a drop, a delay a
verdict held back, reordering verdicts out of order. The same seed gives the same
losses as the relay. Duplication cannot be done with verdicts (a packet is accepted
once) and is refused.

One task reads the socket and drains every queued message per wake-up; one sends the
verdicts that fall due, from a heap. Packets the model drops get their verdict at once.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from typing import Final

import msgspec
import trio

from ._due import DueQueue, clock_ns
from ._impairment import ImpairmentConfig, ImpairmentCounters, ImpairmentModel
from ._nfqueue import (
    NETLINK_NETFILTER,
    NF_ACCEPT,
    NF_DROP,
    NfqueueMessage,
    QueuedPacket,
    bind_request,
    params_request,
    parse_messages,
    verdict_request,
)

__all__ = ["QueueCounters", "QueueImpairment"]

_SOL_NETLINK: Final = 270
_NETLINK_NO_ENOBUFS: Final = 5
_READ_SIZE: Final = 1 << 17


class QueueCounters(msgspec.Struct, kw_only=True):
    """What the queue did, in packets."""

    impairment: ImpairmentCounters
    accepted: int = 0
    dropped: int = 0
    pending: int = 0  # held, verdict not given yet
    malformed: int = 0  # netlink messages that did not parse
    verdict_errors: int = 0  # verdicts the socket refused


class QueueImpairment:
    """Impairs the packets an iptables NFQUEUE rule sends to queue `queue`.

    `maxlen` caps the kernel's queue of packets waiting for a verdict (0: the kernel's
    default of 1024); beyond it the kernel drops (or, with `--queue-bypass`, passes).
    """

    def __init__(self, queue: int, config: ImpairmentConfig, *, maxlen: int = 4096) -> None:
        if config.duplicate:
            raise ValueError("a netfilter queue cannot duplicate packets (duplicate must be 0)")
        if not 0 <= queue <= 0xFFFF:
            raise ValueError(f"queue number must be in [0, 65535], got {queue}")
        self.queue = queue
        self._model = ImpairmentModel(config)
        self._maxlen = maxlen
        self._held = DueQueue[int]()  # packet ids, at the time their verdict is due
        self._accepted = 0
        self._dropped = 0
        self._malformed = 0
        self._verdict_errors = 0
        self._sock: socket.socket | None = None

    @property
    def counters(self) -> QueueCounters:
        return QueueCounters(
            impairment=msgspec.structs.replace(self._model.counters),
            accepted=self._accepted,
            dropped=self._dropped,
            pending=len(self._held),
            malformed=self._malformed,
            verdict_errors=self._verdict_errors,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind the queue (OSError when the kernel refuses: not root, no nfnetlink_queue),
        report started, impair until cancelled. On cancellation the socket is closed: the
        kernel drops the packets still held (or passes them, with `--queue-bypass`)."""
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                sock.setsockopt(_SOL_NETLINK, _NETLINK_NO_ENOBUFS, 1)
            sock.bind((0, 0))
            self._sock = sock
            await self._configure(sock, bind_request(self.queue, 1))
            await self._configure(sock, params_request(self.queue, 2, maxlen=self._maxlen))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_loop, sock)
                nursery.start_soon(self._verdict_loop, sock)
                task_status.started()
        finally:
            self._sock = None
            trio.lowlevel.notify_closing(sock)
            sock.close()

    async def _configure(self, sock: socket.socket, request: bytes) -> None:
        sock.send(request)
        with trio.fail_after(5):
            while True:
                await trio.lowlevel.wait_readable(sock)
                for message in parse_messages(sock.recv(_READ_SIZE)):
                    if isinstance(message, NfqueueMessage):
                        if message.error:
                            name = errno.errorcode.get(message.error, str(message.error))
                            raise OSError(message.error, f"netfilter queue: {name}")
                        return

    async def _read_loop(self, sock: socket.socket) -> None:
        clock = trio.lowlevel.current_clock()
        while True:
            await trio.lowlevel.wait_readable(sock)
            while True:
                try:
                    data = sock.recv(_READ_SIZE)
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno == errno.ENOBUFS:  # the kernel dropped messages: go on
                        continue
                    raise
                try:
                    messages = parse_messages(data)
                except ValueError:
                    self._malformed += 1
                    continue
                now = clock_ns(clock)
                for message in messages:
                    if isinstance(message, QueuedPacket):
                        self._decide(sock, now, message)

    def _decide(self, sock: socket.socket, now_ns: int, packet: QueuedPacket) -> None:
        out = self._model.process(now_ns, packet.payload)
        if not out:
            self._verdict(sock, packet.packet_id, NF_DROP)
            return
        at, first = out[0][0], self._held.first_at()
        if at <= now_ns and (first is None or first > at):
            self._verdict(sock, packet.packet_id, NF_ACCEPT)
            return
        self._held.push(at, packet.packet_id)

    def _verdict(self, sock: socket.socket, packet_id: int, verdict: int) -> None:
        try:
            sock.send(verdict_request(self.queue, packet_id, verdict))
        except OSError:
            # A full socket buffer: the kernel holds the packet until the queue goes.
            self._verdict_errors += 1
            return
        if verdict == NF_ACCEPT:
            self._accepted += 1
        else:
            self._dropped += 1

    async def _verdict_loop(self, sock: socket.socket) -> None:
        held = self._held
        while True:
            await held.wait_due()
            now = clock_ns()
            while held.peek_due(now) is not None:
                self._verdict(sock, held.pop(), NF_ACCEPT)
