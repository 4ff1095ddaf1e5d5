"""The netfilter queue protocol (nfnetlink_queue), sans-IO: bytes in, bytes out.

An iptables rule `-j NFQUEUE --queue-num N` hands each matching packet to the process
bound to queue N, which answers with a verdict (accept or drop) naming the packet's id.
Verdicts may come in any order and at any time, so a process that holds a packet's
verdict delays it, and one that answers out of order reorders packets: this is how the
impairment model acts on real traffic between network namespaces, where the kernel has
no netem.

Wire format (netlink, host byte order for the netlink headers, network byte order inside
the netfilter payloads)::

    nlmsghdr  u32 len, u16 type, u16 flags, u32 seq, u32 pid
    nfgenmsg  u8 family, u8 version, be16 res_id (the queue number)
    nlattr*   u16 len, u16 type, payload padded to 4 bytes

Message types are (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_*. A packet message carries
NFQA_PACKET_HDR (be32 id, be16 hw protocol, u8 hook) and NFQA_PAYLOAD (the IP packet,
up to the copy range); a verdict NFQA_VERDICT_HDR (be32 verdict, be32 id).

`parse_messages` never raises on hostile input beyond `NfqueueError`, and bounds its work
by the buffer it is given.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

__all__ = [
    "NF_ACCEPT",
    "NF_DROP",
    "NfqueueError",
    "NfqueueMessage",
    "QueuedPacket",
    "bind_request",
    "params_request",
    "parse_messages",
    "verdict_request",
]

NETLINK_NETFILTER: Final = 12
NF_DROP: Final = 0
NF_ACCEPT: Final = 1

_SUBSYS_QUEUE: Final = 3
MSG_PACKET: Final = (_SUBSYS_QUEUE << 8) | 0
MSG_VERDICT: Final = (_SUBSYS_QUEUE << 8) | 1
MSG_CONFIG: Final = (_SUBSYS_QUEUE << 8) | 2
NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3

_NLM_F_REQUEST: Final = 0x1
_NLM_F_ACK: Final = 0x4

_CFG_CMD: Final = 1
_CFG_PARAMS: Final = 2
_CFG_QUEUE_MAXLEN: Final = 3
_CMD_BIND: Final = 1
_CMD_UNBIND: Final = 2
_COPY_PACKET: Final = 2

_ATTR_PACKET_HDR: Final = 1
_ATTR_VERDICT_HDR: Final = 2
_ATTR_PAYLOAD: Final = 10
_ATTR_TYPE_MASK: Final = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER

_NLMSGHDR: Final = struct.Struct("=IHHII")
_NFGENMSG: Final = struct.Struct("!BBH")
_NLATTR: Final = struct.Struct("=HH")
_AF_INET: Final = 2


class NfqueueError(ValueError):
    """A malformed netlink message, or an error the kernel answered with."""


class QueuedPacket(NamedTuple):
    """A packet waiting for its verdict."""

    queue: int
    packet_id: int
    payload: bytes  # the IP packet (as much of it as the copy range allows)


class NfqueueMessage(NamedTuple):
    """Anything else the kernel said: an acknowledgement (error 0) or an error (errno)."""

    seq: int
    error: int  # 0: ack; else a positive errno


def _attr(kind: int, payload: bytes) -> bytes:
    size = _NLATTR.size + len(payload)
    return _NLATTR.pack(size, kind) + payload + b"\0" * (-size % 4)


def _message(kind: int, flags: int, queue: int, attrs: bytes, seq: int, family: int = 0) -> bytes:
    if not 0 <= queue <= 0xFFFF:
        raise ValueError(f"queue number must be in [0, 65535], got {queue}")
    body = _NFGENMSG.pack(family, 0, queue) + attrs
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


def bind_request(queue: int, seq: int = 1, *, unbind: bool = False) -> bytes:
    """Bind this socket to `queue` (IPv4), acknowledged by the kernel."""
    command = _CMD_UNBIND if unbind else _CMD_BIND
    cmd = struct.pack("!BBH", command, 0, _AF_INET)
    return _message(MSG_CONFIG, _NLM_F_REQUEST | _NLM_F_ACK, queue, _attr(_CFG_CMD, cmd), seq)


def params_request(queue: int, seq: int = 2, *, copy_range: int = 0xFFFF, maxlen: int = 0) -> bytes:
    """Copy whole packets (up to `copy_range` bytes); `maxlen` > 0 caps the kernel's queue
    (packets beyond it are dropped by the kernel, as a full router queue would)."""
    attrs = _attr(_CFG_PARAMS, struct.pack("!IB", copy_range, _COPY_PACKET))
    if maxlen:
        attrs += _attr(_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen))
    return _message(MSG_CONFIG, _NLM_F_REQUEST | _NLM_F_ACK, queue, attrs, seq)


def verdict_request(queue: int, packet_id: int, verdict: int) -> bytes:
    """Accept or drop one queued packet (no acknowledgement)."""
    hdr = struct.pack("!II", verdict, packet_id & 0xFFFFFFFF)
    return _message(MSG_VERDICT, _NLM_F_REQUEST, queue, _attr(_ATTR_VERDICT_HDR, hdr), 0)


def parse_messages(data: bytes) -> list[QueuedPacket | NfqueueMessage]:
    """Every message in one datagram read from the netlink socket, in order."""
    out: list[QueuedPacket | NfqueueMessage] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _NLMSGHDR.size:
            raise NfqueueError(f"truncated netlink header at byte {offset}")
        size, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if size < _NLMSGHDR.size or offset + size > len(data):
            raise NfqueueError(f"netlink message of {size} bytes at byte {offset} is malformed")
        body = data[offset + _NLMSGHDR.size : offset + size]
        offset += (size + 3) & ~3
        if kind == NLMSG_ERROR:
            if len(body) < 4:
                raise NfqueueError("truncated netlink error message")
            (errno,) = struct.unpack_from("=i", body)
            out.append(NfqueueMessage(seq, -errno))
        elif kind == MSG_PACKET:
            out.append(_packet(body))
        # NLMSG_DONE, NOOP and anything else: nothing to act on.
    return out


def _packet(body: bytes) -> QueuedPacket:
    if len(body) < _NFGENMSG.size:
        raise NfqueueError("truncated nfgenmsg header")
    _family, _version, queue = _NFGENMSG.unpack_from(body)
    packet_id: int | None = None
    payload = b""
    at = _NFGENMSG.size
    while at + _NLATTR.size <= len(body):
        size, kind = _NLATTR.unpack_from(body, at)
        if size < _NLATTR.size or at + size > len(body):
            raise NfqueueError(f"attribute of {size} bytes at byte {at} is malformed")
        value = body[at + _NLATTR.size : at + size]
        kind &= _ATTR_TYPE_MASK
        if kind == _ATTR_PACKET_HDR:
            if len(value) < 4:
                raise NfqueueError("truncated packet header attribute")
            (packet_id,) = struct.unpack_from("!I", value)
        elif kind == _ATTR_PAYLOAD:
            payload = bytes(value)
        at += (size + 3) & ~3
    if packet_id is None:
        raise NfqueueError("a queued packet without its id")
    return QueuedPacket(queue, packet_id, payload)
