"""The ZAP handler: who may complete a CURVE handshake with this instance's listener.

ZeroMQ asks the handler of its context (ZAP, RFC 27: a socket bound at
inproc://zeromq.zap.01) about every client that completes the CURVE handshake with a
listener, giving the client's public key (proven: the client holds its secret key) and
IP address. The answer decides at once, inside the handshake: a refused client never
gets a connection, so it cannot send a single frame. `decide` is the cluster's trust
check, a plain synchronous function (ZeroMQ holds the connection until it answers).

An admitted client's public key becomes the connection's "User-Id" (Z85), which the
listener reads off every message it receives to know who sent it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio
import zmq
from zmq.utils import z85

from ._errors import MalformedMessage
from ._zmq import ZmqSocket

log = logging.getLogger("rocd.cluster")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
_ZAP_VERSION = b"1.0"


@dataclass(frozen=True)
class ZapRequest:
    domain: str
    address: str  # the client's IP address
    mechanism: str  # "CURVE" for rocd's listeners
    key: str  # the client's public key, Z85 ("" for other mechanisms)


@dataclass(frozen=True)
class ZapAnswer:
    allowed: bool
    reason: str = ""


Decide = Callable[[ZapRequest], ZapAnswer]


def parse_zap(frames: list[bytes]) -> tuple[list[bytes], bytes, ZapRequest]:
    """(routing envelope, request id, request) of a ZAP request read by a ROUTER."""
    try:
        split = frames.index(b"")
    except ValueError:
        raise MalformedMessage("ZAP request without an envelope delimiter") from None
    envelope, body = frames[: split + 1], frames[split + 1 :]
    if len(body) < 6 or body[0] != _ZAP_VERSION:
        raise MalformedMessage("not a ZAP 1.0 request")
    request_id, domain, address, _identity, mechanism, *credentials = body[1:]
    key = ""
    if mechanism == b"CURVE":
        if len(credentials) != 1 or len(credentials[0]) != 32:
            raise MalformedMessage("CURVE ZAP request without a 32-byte key")
        key = z85.encode(credentials[0]).decode()
    request = ZapRequest(
        domain.decode(errors="replace"),
        address.decode(errors="replace"),
        mechanism.decode(errors="replace"),
        key,
    )
    return envelope, request_id, request


def zap_reply(envelope: list[bytes], request_id: bytes, answer: ZapAnswer, key: str) -> list[bytes]:
    """The reply frames: 200 with the key as User-Id, or 400 with the reason."""
    if answer.allowed:
        status, text, user = b"200", b"OK", key.encode()
    else:
        status, text, user = b"400", answer.reason.encode()[:200], b""
    return [*envelope, _ZAP_VERSION, request_id, status, text, user, b""]


async def serve_zap(
    ctx: zmq.Context[Any], decide: Decide, *, task_status: trio.TaskStatus[None]
) -> None:
    """Answer the ZAP requests of `ctx` until cancelled. Start it before any listener
    binds: listeners refuse every client while no handler answers (ZAP_ENFORCE_DOMAIN)."""
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.bind(ZAP_ENDPOINT)
    except BaseException:
        sock.close(linger=0)
        raise
    owner = ZmqSocket(sock)
    async with trio.open_nursery() as nursery:
        await nursery.start(owner.run)
        task_status.started()
        while True:
            incoming = await owner.receive()
            try:
                envelope, request_id, request = parse_zap(incoming.frames)
            except MalformedMessage as exc:
                log.warning("ZAP: %s", exc)
                continue
            owner.send_nowait(zap_reply(envelope, request_id, decide(request), request.key))
