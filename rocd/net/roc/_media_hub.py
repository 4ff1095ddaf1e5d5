"""A media relay on a hub, and the datagrams that open paths through NATs (sans-IO).

When a stream's sender cannot reach its receiver (a NAT in front of it, or networks only
a rendezvous joins), its audio crosses a hub: an instance both ends reach. One relay per
stream, four UDP ports on the hub:

    sender ──source──▶ S_source ─┐
    sender ──repair──▶ S_repair ─┼─▶ Y ──▶ the receiver's source / repair / control socket
    sender ──control─▶ S_control ┘        (each at the address its registration came from)
    sender ◀─reports── S_control ◀── Y ◀── the receiver's control socket (RTCP reports)

Everything reaches the receiver from the one port Y, as a Roc sender sends everything
from one socket: a receiver ties repair packets to a session by the sender's address.
Each receiver socket registers with Y, and the sender's socket with S_control, by
sending a `register` datagram that carries the relay's token (16 random bytes, handed to
both ends over the encrypted cluster links). That both authenticates them and opens
their NATs towards the hub: the hub answers every socket from the port it registered
with. Registrations are repeated (`KEEPALIVE_S`) to keep NAT mappings open and to follow
a socket that moved (a NAT that changed its mapping, a daemon that restarted).

Before a hub is used, the ends try a direct path: the receiver's sockets send `punch`
datagrams to the sender's socket (so that the receiver's NAT lets the sender's packets
in) and the sender learns the receiver's public addresses from them. A punch carries the
stream's punch token, so no one off the path can redirect a sender with one.

Wire format (every field big-endian; 32 bytes, zero padded):

    "rdh1" | kind (1 register, 2 punch) | role (0 source, 1 repair, 2 control, 3 sender)
           | token (16 bytes) | zeros

The first byte is never that of an RTCP packet (0x80-0xBF), so a sender's socket tells a
punch from a report by its first byte. Every datagram the relay gets is hostile: it
forwards only between registered addresses, within a byte rate, and counts what it drops.
"""

from __future__ import annotations

import enum
import hmac
import struct
from typing import Final

import msgspec

from ._errors import MalformedPacket
from ._udp import Address

__all__ = [
    "HUB_DATAGRAM_BYTES",
    "HUB_MAGIC",
    "HubMessage",
    "HubRelay",
    "HubRelayStats",
    "HubRole",
    "encode_hub_message",
    "is_hub_message",
    "parse_hub_message",
]

HUB_MAGIC: Final = b"rdh1"
HUB_DATAGRAM_BYTES: Final = 32
TOKEN_BYTES: Final = 16
#: Seconds between two registrations of a socket (NAT mappings live 30 s or more).
KEEPALIVE_S: Final = 5.0
_HEAD = struct.Struct("!4sBB16s")


class HubKind(enum.IntEnum):
    REGISTER = 1
    PUNCH = 2


class HubRole(enum.IntEnum):
    SOURCE = 0
    REPAIR = 1
    CONTROL = 2
    SENDER = 3


class HubMessage(msgspec.Struct, frozen=True):
    kind: HubKind
    role: HubRole
    token: bytes


def encode_hub_message(kind: HubKind, role: HubRole, token: bytes) -> bytes:
    if len(token) != TOKEN_BYTES:
        raise ValueError(f"a token is {TOKEN_BYTES} bytes")
    return _HEAD.pack(HUB_MAGIC, kind, role, token).ljust(HUB_DATAGRAM_BYTES, b"\0")


def is_hub_message(data: bytes) -> bool:
    """A cheap first look (for a socket that mostly gets RTCP)."""
    return len(data) == HUB_DATAGRAM_BYTES and data[:4] == HUB_MAGIC


def parse_hub_message(data: bytes) -> HubMessage:
    if not is_hub_message(data):
        raise MalformedPacket("not a hub datagram")
    _magic, kind, role, token = _HEAD.unpack_from(data)
    try:
        return HubMessage(HubKind(kind), HubRole(role), token)
    except ValueError:
        raise MalformedPacket("bad hub datagram kind or role") from None


class HubRelayStats(msgspec.Struct, kw_only=True):
    """What one relay forwarded and refused (datagrams, and bytes forwarded)."""

    to_receiver: int = 0
    to_sender: int = 0
    bytes: int = 0
    registrations: int = 0
    unknown_source: int = 0  # not from a registered address
    bad_token: int = 0  # a registration with another token
    no_receiver: int = 0  # the receiver's socket for it has not registered yet
    over_rate: int = 0  # beyond the relay's byte rate


class HubRelay:
    """One stream's relay: where each datagram goes (an `Address`), or None to drop it.

    `from_sender(role, data, source, now)` is a datagram that came to S_<role>;
    `from_receiver(data, source, now)` one that came to Y. Times in seconds."""

    def __init__(
        self,
        token: bytes,
        *,
        rate_bytes_s: float,
        burst_bytes: float | None = None,
        now: float = 0.0,
    ) -> None:
        if len(token) != TOKEN_BYTES:
            raise ValueError(f"a token is {TOKEN_BYTES} bytes")
        self.token = token
        self.rate = rate_bytes_s
        self.burst = burst_bytes if burst_bytes is not None else rate_bytes_s / 4
        self._tokens = self.burst
        self._refilled = now
        self.receiver: dict[HubRole, Address] = {}
        self.sender: Address | None = None
        self.last_heard = now  # any registration or forwarded datagram
        self.stats = HubRelayStats()

    def _registration(self, data: bytes, roles: tuple[HubRole, ...]) -> HubRole | None:
        """The role a valid registration is for (None: not one; a bad token counts)."""
        if not is_hub_message(data):
            return None
        try:
            msg = parse_hub_message(data)
        except MalformedPacket:
            return None
        if msg.kind is not HubKind.REGISTER or msg.role not in roles:
            return None
        if not hmac.compare_digest(msg.token, self.token):
            self.stats.bad_token += 1
            return None
        return msg.role

    def _allow(self, size: int, now: float) -> bool:
        self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now
        if self._tokens < size:
            self.stats.over_rate += 1
            return False
        self._tokens -= size
        return True

    def from_sender(
        self, role: HubRole, data: bytes, source: Address, now: float
    ) -> Address | None:
        if (
            role is HubRole.CONTROL
            and data[:1] == b"r"
            and self._registration(data, (HubRole.SENDER,)) is not None
        ):
            self.sender = source
            self.last_heard = now
            self.stats.registrations += 1
            return None
        if source != self.sender:
            self.stats.unknown_source += 1
            return None
        target = self.receiver.get(role)
        if target is None:
            self.stats.no_receiver += 1
            return None
        if not self._allow(len(data), now):
            return None
        self.last_heard = now
        self.stats.to_receiver += 1
        self.stats.bytes += len(data)
        return target

    def from_receiver(self, data: bytes, source: Address, now: float) -> Address | None:
        if data[:1] == b"r":
            role = self._registration(data, (HubRole.SOURCE, HubRole.REPAIR, HubRole.CONTROL))
            if role is not None:
                self.receiver[role] = source
                self.last_heard = now
                self.stats.registrations += 1
                return None
        if source != self.receiver.get(HubRole.CONTROL) or self.sender is None:
            self.stats.unknown_source += 1
            return None
        if not self._allow(len(data), now):
            return None
        self.last_heard = now
        self.stats.to_sender += 1
        self.stats.bytes += len(data)
        return self.sender
