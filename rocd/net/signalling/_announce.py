"""What an instance announces on its LAN (DNS-SD over mDNS), as TXT record properties.

An instance registers one service of type `_rocd._tcp.local.` whose SRV record points at
its cluster listener and whose TXT record says who it is:

    uid   its uid                          v     its rocd version
    name  its display name                 sig   signalling version, "MAJOR.MINOR"
    key   its public key (Z85, 40 chars)   addr  where to dial it, tcp://host:port
    fp    the key's fingerprint

The key is there so that a user can pair with what they see in one step (after comparing
the fingerprint, which the announcing instance shows in its own GET /peers/self):
nothing announced is trusted by itself, and the CURVE handshake proves the key when the
instance is dialled. Every announcement is hostile input: `parse_announcement` checks
each field (sizes, the key, that the fingerprint is the key's, the address) and raises
MalformedMessage for anything else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

from ._errors import MalformedMessage
from ._keys import check_public_key, fingerprint
from ._messages import MAJOR, MINOR

SERVICE_TYPE: Final = "_rocd._tcp.local."
#: Longest value read from a TXT property (DNS-SD caps a property at 255 bytes).
_MAX_VALUE = 255


@dataclass(frozen=True)
class Announcement:
    uid: str
    name: str
    key: str
    fingerprint: str
    version: str  # rocd's
    signalling: str  # "MAJOR.MINOR"
    address: str  # tcp://host:port

    @property
    def compatible(self) -> bool:
        """Whether this rocd can talk to it (same signalling major)."""
        return self.signalling.partition(".")[0] == str(MAJOR)


def announcement_properties(
    *, uid: str, name: str, key: str, version: str, address: str
) -> dict[str, str]:
    """The TXT properties announcing an instance."""
    return {
        "uid": uid,
        "name": name[:64],
        "key": key,
        "fp": fingerprint(key),
        "v": version[:32],
        "sig": f"{MAJOR}.{MINOR}",
        "addr": address,
    }


def parse_announcement(
    properties: dict[bytes, bytes | None], addresses: list[str], port: int
) -> Announcement:
    """An announcement's TXT properties (and the service's A/AAAA addresses and SRV port,
    used when the announced address is not one others can dial)."""

    def text(name: str, *, limit: int = _MAX_VALUE, required: bool = True) -> str:
        raw = properties.get(name.encode())
        if raw is None or not raw:
            if required:
                raise MalformedMessage(f"announcement without {name!r}")
            return ""
        if len(raw) > limit:
            raise MalformedMessage(f"announcement: {name!r} longer than {limit} bytes")
        try:
            value = raw.decode()
        except UnicodeDecodeError:
            raise MalformedMessage(f"announcement: {name!r} is not UTF-8") from None
        if not value.isprintable():
            raise MalformedMessage(f"announcement: {name!r} is not printable")
        return value

    uid = text("uid", limit=64)
    try:
        key = check_public_key(text("key", limit=40))
    except ValueError as exc:
        raise MalformedMessage(f"announcement: key: {exc}") from None
    fp = text("fp", limit=16)
    if fp != fingerprint(key):
        raise MalformedMessage("announcement: the fingerprint is not the key's")
    address = dialable(text("addr", limit=128, required=False), addresses, port)
    return Announcement(
        uid=uid,
        name=text("name", limit=256, required=False) or uid,
        key=key,
        fingerprint=fp,
        version=text("v", limit=32, required=False),
        signalling=text("sig", limit=16, required=False),
        address=address,
    )


def dialable(announced: str, addresses: list[str], port: int) -> str:
    """The announced tcp://host:port, unless its host is a loopback or unspecified
    address (then the first other address the service record holds, with its port)."""
    host, sep, port_text = announced.removeprefix("tcp://").rpartition(":")
    good_port = port_text.isdigit() and 0 < int(port_text) < 65536
    if announced.startswith("tcp://") and sep and good_port and _usable(host):
        return announced
    for candidate in addresses:
        if _usable(candidate) and 0 < port < 65536:
            return (
                f"tcp://[{candidate}]:{port}" if ":" in candidate else f"tcp://{candidate}:{port}"
            )
    raise MalformedMessage("announcement without an address others can dial")


def _usable(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return bool(host) and host != "localhost"  # a host name: let the dialler resolve it
    return not (ip.is_loopback or ip.is_unspecified or ip.is_multicast)
