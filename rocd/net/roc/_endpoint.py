"""Roc endpoint URIs: `PROTO://HOST:PORT`, and the rules for a slot of three of them.

A Roc peer has three interfaces per slot (ROC_PROTOCOL.md §1.1): *source* (RTP packets,
with a FECFRAME footer when FEC is on), *repair* (FEC repair packets) and *control* (RTCP).
The URI scheme names both the interface and the FEC scheme:

    rtp://          source, no FEC          rtcp://   control
    rtp+rs8m://     source, RS8M footer     rs8m://   repair, RS8M
    rtp+ldpc://     source, LDPC footer     ldpc://   repair, LDPC-Staircase

The host is a name, a dotted IPv4 address or a bracketed IPv6 address; the port is
mandatory; paths, queries and user info are refused (§1.2). Names are kept as written and
resolved by the I/O layer. Port 0 ("any free port") only makes sense where we bind, i.e.
on a receiver; a sender's endpoints are destinations.

Slot rules (§1.1): source and repair schemes agree (`rtp+rs8m` goes with `rs8m`); a sender
with a FEC source scheme needs a repair endpoint; plain `rtp` forbids one; a receiver may
omit the repair endpoint (footers are parsed, nothing is repaired).
"""

from __future__ import annotations

import enum
import ipaddress
import re

import msgspec

from ._fecframe import FecScheme

__all__ = [
    "Endpoint",
    "EndpointError",
    "EndpointSet",
    "Interface",
    "Protocol",
    "receiver_endpoints",
    "sender_endpoints",
]


class EndpointError(ValueError):
    """An endpoint URI, or a combination of endpoints, that Roc would refuse."""


class Interface(enum.Enum):
    """Which of a slot's three interfaces a datagram or an endpoint belongs to."""

    SOURCE = "source"
    REPAIR = "repair"
    CONTROL = "control"


class Protocol(enum.Enum):
    """A Roc endpoint protocol; the value is its URI scheme."""

    RTP = "rtp"
    RTP_RS8M = "rtp+rs8m"
    RS8M = "rs8m"
    RTP_LDPC = "rtp+ldpc"
    LDPC = "ldpc"
    RTCP = "rtcp"

    @property
    def interface(self) -> Interface:
        return _INTERFACE[self]

    @property
    def fec_scheme(self) -> FecScheme | None:
        """The FEC scheme the protocol implies (None for `rtp` and `rtcp`)."""
        return _FEC[self]


_INTERFACE = {
    Protocol.RTP: Interface.SOURCE,
    Protocol.RTP_RS8M: Interface.SOURCE,
    Protocol.RTP_LDPC: Interface.SOURCE,
    Protocol.RS8M: Interface.REPAIR,
    Protocol.LDPC: Interface.REPAIR,
    Protocol.RTCP: Interface.CONTROL,
}
_FEC = {
    Protocol.RTP: None,
    Protocol.RTP_RS8M: FecScheme.RS8M,
    Protocol.RTP_LDPC: FecScheme.LDPC_STAIRCASE,
    Protocol.RS8M: FecScheme.RS8M,
    Protocol.LDPC: FecScheme.LDPC_STAIRCASE,
    Protocol.RTCP: None,
}
_SCHEMES = ", ".join(f"{p.value}://" for p in Protocol)

_URI = re.compile(r"(?P<scheme>[^:/?#]*)://(?P<rest>.*)", re.DOTALL)
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_DOTTED = re.compile(r"[0-9.]+")
_MAX_NAME = 253


def _check_host(host: str) -> None:
    """Raise EndpointError unless `host` (IPv6 without brackets) is usable."""
    if not host:
        raise EndpointError("the host is empty")
    if ":" in host:
        if "%" in host:
            raise EndpointError(f"IPv6 zone ids are not supported: {host!r}")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise EndpointError(f"invalid IPv6 address {host!r}") from None
        return
    if _DOTTED.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise EndpointError(f"invalid IPv4 address {host!r}") from None
        return
    if len(host) > _MAX_NAME or not all(_LABEL.fullmatch(x) for x in host.split(".")):
        raise EndpointError(
            f"invalid host name {host!r}: dot-separated labels of letters, digits, "
            "'-' and '_' (at most 63 characters each)"
        )


class Endpoint(msgspec.Struct, frozen=True):
    """One Roc endpoint; `str()` gives its URI. IPv6 hosts are stored without brackets."""

    protocol: Protocol
    host: str
    port: int

    def __post_init__(self) -> None:
        _check_host(self.host)
        if not 0 <= self.port <= 0xFFFF:
            raise EndpointError(f"port {self.port} is outside 0..65535")

    @classmethod
    def parse(cls, uri: str, *, bind: bool = False) -> Endpoint:
        """The endpoint of `uri`; EndpointError naming the problem if it is not one.

        `bind` is True where the endpoint is an address to bind (a receiver's), which
        allows port 0; a destination needs a real port.
        """
        uri = uri.strip()
        match = _URI.fullmatch(uri)
        if match is None:
            raise EndpointError(f"{uri!r} is not an endpoint URI (PROTO://HOST:PORT)")
        scheme = match["scheme"].lower()
        if scheme == "rtsp":
            raise EndpointError("rtsp:// endpoints are not supported (nor are they by Roc 0.4)")
        try:
            protocol = Protocol(scheme)
        except ValueError:
            raise EndpointError(
                f"unknown protocol {match['scheme']!r} in {uri!r}; expected one of {_SCHEMES}"
            ) from None
        rest = match["rest"]
        for char, what in (("/", "a path"), ("?", "a query"), ("#", "a fragment")):
            if char in rest:
                raise EndpointError(f"{scheme}:// endpoints take no {what.split()[1]}: {uri!r}")
        if "@" in rest:
            raise EndpointError(f"{scheme}:// endpoints take no user info: {uri!r}")
        if rest.startswith("["):
            close = rest.find("]")
            if close < 0:
                raise EndpointError(f"unclosed '[' in the IPv6 host of {uri!r}")
            host, after = rest[1:close], rest[close + 1 :]
            if not host or ":" not in host:
                raise EndpointError(f"invalid IPv6 address {host!r} in {uri!r}")
            if not after.startswith(":"):
                raise EndpointError(f"a port is required: {scheme}://[{host}]:PORT")
            port_text = after[1:]
        else:
            host, sep, port_text = rest.rpartition(":")
            if not sep:
                raise EndpointError(f"a port is required: {scheme}://{rest or 'HOST'}:PORT")
            if ":" in host:
                raise EndpointError(f"IPv6 addresses need brackets: {scheme}://[{host}]:PORT")
        if not port_text.isascii() or not port_text.isdigit():
            raise EndpointError(f"invalid port {port_text!r} in {uri!r}")
        port = int(port_text)
        if port > 0xFFFF:
            raise EndpointError(f"port {port} is outside 0..65535 in {uri!r}")
        if port == 0 and not bind:
            raise EndpointError(f"port 0 is only allowed where we bind (a receiver): {uri!r}")
        return cls(protocol, host, port)

    @property
    def interface(self) -> Interface:
        return self.protocol.interface

    @property
    def fec_scheme(self) -> FecScheme | None:
        return self.protocol.fec_scheme

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) as the socket layer takes it (IPv6 without brackets)."""
        return (self.host, self.port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.protocol.value}://{host}:{self.port}"


class EndpointSet(msgspec.Struct, frozen=True):
    """The endpoints of one slot: source, and optionally repair and control."""

    source: Endpoint
    repair: Endpoint | None = None
    control: Endpoint | None = None

    def __str__(self) -> str:
        return " ".join(str(e) for e in (self.source, self.repair, self.control) if e)

    @property
    def fec_scheme(self) -> FecScheme | None:
        """The slot's FEC scheme (from the source endpoint; None for plain `rtp`)."""
        return self.source.fec_scheme

    def endpoint(self, interface: Interface) -> Endpoint | None:
        """The endpoint of `interface`, None when the slot has none."""
        if interface is Interface.SOURCE:
            return self.source
        return self.repair if interface is Interface.REPAIR else self.control


def _as_endpoint(value: str | Endpoint, interface: Interface, *, bind: bool) -> Endpoint:
    endpoint = Endpoint.parse(value, bind=bind) if isinstance(value, str) else value
    if endpoint.interface is not interface:
        raise EndpointError(
            f"{endpoint} is a {endpoint.interface.value} endpoint, "
            f"given as the {interface.value} endpoint"
        )
    if endpoint.port == 0 and not bind:
        raise EndpointError(f"port 0 is only allowed where we bind (a receiver): {endpoint}")
    return endpoint


def _slot(
    source: str | Endpoint,
    repair: str | Endpoint | None,
    control: str | Endpoint | None,
    *,
    sender: bool,
) -> EndpointSet:
    src = _as_endpoint(source, Interface.SOURCE, bind=not sender)
    rpr = None if repair is None else _as_endpoint(repair, Interface.REPAIR, bind=not sender)
    ctl = None if control is None else _as_endpoint(control, Interface.CONTROL, bind=not sender)
    scheme = src.fec_scheme
    if rpr is not None:
        if scheme is None:
            raise EndpointError(
                f"{src} carries no FEC, so it takes no repair endpoint (got {rpr}); "
                "use rtp+rs8m:// or rtp+ldpc:// for FEC"
            )
        if rpr.fec_scheme is not scheme:
            raise EndpointError(
                f"source {src} and repair {rpr} use different FEC schemes; "
                f"pair {src.protocol.value}:// with {scheme.value}://"
            )
    elif scheme is not None and sender:
        raise EndpointError(
            f"source {src} uses FEC, so a sender needs a {scheme.value}:// repair endpoint"
        )
    return EndpointSet(src, rpr, ctl)


def sender_endpoints(
    source: str | Endpoint,
    repair: str | Endpoint | None = None,
    control: str | Endpoint | None = None,
) -> EndpointSet:
    """A sender's slot (destinations); EndpointError when Roc's slot rules are broken."""
    return _slot(source, repair, control, sender=True)


def receiver_endpoints(
    source: str | Endpoint,
    repair: str | Endpoint | None = None,
    control: str | Endpoint | None = None,
) -> EndpointSet:
    """A receiver's slot (addresses to bind, port 0 allowed); EndpointError on bad slots."""
    return _slot(source, repair, control, sender=False)
