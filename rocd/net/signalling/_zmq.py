"""pyzmq driven from Trio: one owner task per socket.

ZeroMQ sockets are not thread-safe and their FD is edge-triggered: it only says "the
socket's state changed", and only once, so whoever waits on it must first drain every
pending message and re-read `ZMQ_EVENTS`. Here exactly one task (`run`, the owner) ever
touches the socket:

- it receives everything pending (NOBLOCK until `zmq.Again`) into a bounded memory channel
  (`receive`); when that channel is full the owner waits, so a slow reader holds the
  socket's own high-water mark against the peer instead of growing memory;
- it sends what other tasks queued with `send_nowait` (a bounded deque: queueing never
  blocks, never touches the socket, and wakes the owner);
- then it re-reads `ZMQ_EVENTS` and, only when nothing is readable nor (with frames
  queued) writable, waits on the FD with no checkpoint between the check and the wait.
  A `send_nowait` wakes it by cancelling that wait.

A ROUTER socket must have `ROUTER_MANDATORY` (set by `router_socket`): a frame for a peer
that is gone or whose queue is full is then reported (`on_undeliverable`) instead of being
dropped silently; it never blocks the frames for other peers. When the owner ends
(cancelled), it calls `notify_closing` on the FD and closes the socket; frames ZeroMQ
still holds (a last Bye) get `linger_ms` to leave, while the context is terminated.
"""

from __future__ import annotations

import errno
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import trio
import zmq

from ._errors import SendQueueFull, SocketClosed
from ._keys import KeyPair
from ._messages import MAX_FRAME_BYTES

#: Messages received in one go before queued sends get a turn.
_RECEIVE_BATCH = 256

#: Milliseconds the last frames (Byes) get to leave once a link's socket is closed.
LINGER_MS = 200

#: The ZAP domain of rocd's listeners (their ZAP handler is the cluster's own).
ZAP_DOMAIN = b"rocd"

Undeliverable = Callable[[list[bytes], str], None]


class Incoming:
    """One multipart message received, with the connection properties asked for
    ("User-Id": the peer's key as ZAP admitted it, "Peer-Address": its IP address)."""

    __slots__ = ("frames", "properties")

    def __init__(self, frames: list[bytes], properties: dict[str, str]) -> None:
        self.frames = frames
        self.properties = properties


class ZmqSocket:
    """One pyzmq socket and its owner task; see the module docstring."""

    def __init__(
        self,
        sock: zmq.Socket[Any],
        *,
        receive_buffer: int = 256,
        send_queue: int = 4096,
        on_undeliverable: Undeliverable | None = None,
        properties: tuple[str, ...] = (),
        linger_ms: int = 0,
    ) -> None:
        self.sock = sock
        self._properties = properties
        self._router = sock.type == zmq.ROUTER
        self._queue: deque[list[bytes]] = deque()
        self._queue_cap = send_queue
        self._in_send, self._in_receive = trio.open_memory_channel[Incoming](receive_buffer)
        self._wait_scope: trio.CancelScope | None = None
        self._poked = False
        self._on_undeliverable = on_undeliverable
        self._linger_ms = linger_ms
        self._flushed = trio.Event()
        self.closed = False
        self.sent = 0
        self.received = 0
        self.undeliverable = 0

    @property
    def queued(self) -> int:
        """Frames waiting to be sent."""
        return len(self._queue)

    def send_nowait(self, frames: list[bytes]) -> None:
        """Queue a multipart message for the owner to send; never blocks.

        Raises SocketClosed once the owner has ended, SendQueueFull when `send_queue`
        messages are already waiting (the peer does not read: treat the link as broken).
        """
        if self.closed:
            raise SocketClosed("the socket is closed")
        if len(self._queue) >= self._queue_cap:
            raise SendQueueFull(f"{len(self._queue)} messages wait to be sent")
        self._queue.append(frames)
        self._poked = True
        if self._wait_scope is not None:
            self._wait_scope.cancel()

    async def wait_flushed(self) -> None:
        """Wait until every queued message has been handed to ZeroMQ (or the socket closed)."""
        while self._queue and not self.closed:
            if self._flushed.is_set():
                self._flushed = trio.Event()
            await self._flushed.wait()

    async def receive(self) -> Incoming:
        """The next multipart message; raises SocketClosed once the owner has ended."""
        try:
            return await self._in_receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise SocketClosed("the socket is closed") from None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The owner task: runs until cancelled, then closes the socket."""
        fd = self.sock.FD
        try:
            task_status.started()
            while True:
                self._poked = False
                await self._receive_pending()
                self._send_queued()
                events = cast(int, self.sock.getsockopt(zmq.EVENTS))
                if events & zmq.POLLIN or self._poked:
                    continue
                if self._queue and events & zmq.POLLOUT:
                    continue
                # No checkpoint since EVENTS was read: the edge cannot be missed.
                with trio.CancelScope() as scope:
                    self._wait_scope = scope
                    await trio.lowlevel.wait_readable(fd)
                self._wait_scope = None
        finally:
            self.closed = True
            self._flushed.set()
            self._wait_scope = None
            self._in_send.close()
            trio.lowlevel.notify_closing(fd)
            self.sock.close(linger=self._linger_ms)

    async def _receive_pending(self) -> None:
        for _ in range(_RECEIVE_BATCH):
            try:
                if self._properties:
                    parts = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
                    last = parts[-1]
                    props = {name: str(last.get(name)) for name in self._properties}
                    incoming = Incoming([part.bytes for part in parts], props)
                else:
                    incoming = Incoming(self.sock.recv_multipart(zmq.NOBLOCK), {})
            except zmq.Again:
                return
            self.received += 1
            await self._in_send.send(incoming)

    def _send_queued(self) -> None:
        while self._queue:
            frames = self._queue[0]
            try:
                self.sock.send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:
                if not self._router:
                    return  # not connected yet, or the peer's queue is full: wait
                self._drop(frames, "the peer's queue is full")
            except zmq.ZMQError as exc:
                if exc.errno != errno.EHOSTUNREACH:
                    raise
                self._drop(frames, "no such peer connected")
            else:
                self.sent += 1
            self._queue.popleft()
        self._flushed.set()

    def _drop(self, frames: list[bytes], why: str) -> None:
        self.undeliverable += 1
        if self._on_undeliverable is not None:
            self._on_undeliverable(frames, why)


def router_socket(ctx: zmq.Context[Any], keys: KeyPair) -> zmq.Socket[Any]:
    """A CURVE server ROUTER whose clients the ZAP handler of `ctx` admits (none without
    one: ZAP_ENFORCE_DOMAIN), reporting undeliverable frames (ROUTER_MANDATORY)."""
    sock: zmq.Socket[Any] = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES + 4096)
    sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
    sock.curve_server = True
    sock.curve_publickey = keys.public.encode()
    sock.curve_secretkey = keys.secret.encode()
    return sock


def dealer_socket(ctx: zmq.Context[Any], keys: KeyPair, server_key: str) -> zmq.Socket[Any]:
    """A CURVE client DEALER for the listener whose public key is `server_key`.

    IMMEDIATE: nothing is queued for a peer not connected (sends wait instead), so
    frames written while a peer is down never arrive late after it is back. ZeroMQ
    reconnects by itself after a lost connection (0.25 s, backing off to 2 s), but not
    after a refused handshake: the link's own backoff decides when to try again.
    """
    sock: zmq.Socket[Any] = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IMMEDIATE, 1)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES + 4096)
    sock.setsockopt(zmq.RECONNECT_IVL, 250)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
    sock.setsockopt(zmq.RECONNECT_STOP, zmq.RECONNECT_STOP_HANDSHAKE_FAILED)
    sock.curve_serverkey = server_key.encode()
    sock.curve_publickey = keys.public.encode()
    sock.curve_secretkey = keys.secret.encode()
    return sock
