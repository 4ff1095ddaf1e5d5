"""What a stream's ends do on a `nat` path (see `_stream_media`), on their own sockets.

- `probe_mapping`: the public side of one socket's NAT mapping, from the hub's UDP probe
  echo (before the link reads the socket: the answer would be taken for media).
- `receiver_loop`: a receiver's sockets punch towards the sender's candidate addresses
  (a burst when committed, so that the receiver's NAT lets the sender's packets in), and
  register with the hub's relay, again every `KEEPALIVE_S` seconds.
- `sender_loop`: the sender's socket registers with the hub's relay likewise.

Datagrams of these loops are small (32 bytes) and few (a punch burst of `PUNCHES` per
socket and candidate, then one registration per socket every few seconds).
"""

from __future__ import annotations

import hashlib
import logging
import socket

import trio

from rocd.net.roc import (
    Address,
    HubKind,
    HubRole,
    Interface,
    UdpEndpoint,
    encode_hub_message,
    parse_hub_message,
    resolve_udp,
)
from rocd.net.roc._media_hub import KEEPALIVE_S
from rocd.net.signalling import learn_udp_address

log = logging.getLogger("rocd.streams")

#: Punch datagrams per socket and candidate, and seconds between two.
PUNCHES = 12
PUNCH_EVERY_S = 0.1
#: Seconds a socket's probe of the hub may take.
PROBE_TIMEOUT_S = 1.2
#: Seconds a sender waits for the rest of a receiver's punches after the first.
PUNCH_GRACE_S = 0.15

ROLE_OF: dict[Interface, HubRole] = {
    Interface.SOURCE: HubRole.SOURCE,
    Interface.REPAIR: HubRole.REPAIR,
    Interface.CONTROL: HubRole.CONTROL,
}
INTERFACE_OF = {role: interface for interface, role in ROLE_OF.items()}


def punch_token(plan_token: str) -> bytes:
    """The 16 bytes a stream's punches carry (from its plan's token)."""
    return hashlib.sha256(bytes.fromhex(plan_token) + b"punch").digest()[:16]


def address_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def resolve(text: str) -> Address | None:
    """ "host:port" as a numeric address (None when it does not resolve)."""
    host, _, port = text.rpartition(":")
    try:
        _family, address = await resolve_udp((host.strip("[]"), int(port)))
    except (OSError, ValueError):
        return None
    return address


async def probe_mapping(udp: UdpEndpoint, hub: Address) -> str | None:
    """ "host:port" the hub sees `udp`'s datagrams come from (None: no answer in time)."""
    dup = trio.socket.fromfd(udp.fd, udp.sock.family, socket.SOCK_DGRAM)
    try:
        with trio.move_on_after(PROBE_TIMEOUT_S):
            host, port = await learn_udp_address(dup, hub, interval=0.4, tries=3)
            return address_text(host, port)
    except OSError as exc:
        log.info("no probe answer from the hub %s:%d: %s", *hub, exc)
    finally:
        dup.close()
    return None


async def receiver_loop(
    sockets: dict[Interface, UdpEndpoint],
    *,
    punch_to: list[Address],
    punch: bytes,
    hub: Address | None,
    hub_token: bytes | None,
) -> None:
    """Punch, then register with the hub now and then, until cancelled."""
    registrations = {
        interface: encode_hub_message(HubKind.REGISTER, ROLE_OF[interface], hub_token)
        for interface in sockets
        if hub_token is not None
    }
    punches = {
        interface: encode_hub_message(HubKind.PUNCH, ROLE_OF[interface], punch)
        for interface in sockets
    }
    for round_ in range(PUNCHES):
        for interface, udp in sockets.items():
            for target in punch_to:
                udp.send(punches[interface], target)
            if hub is not None and interface in registrations and round_ < 3:
                udp.send(registrations[interface], hub)
        await trio.sleep(PUNCH_EVERY_S)
    if hub is None or not registrations:
        return
    while True:
        await trio.sleep(KEEPALIVE_S)
        for interface, udp in sockets.items():
            udp.send(registrations[interface], hub)


async def sender_loop(udp: UdpEndpoint, hub_control: Address, hub_token: bytes) -> None:
    """Register the sender's socket with the hub's relay, again and again."""
    registration = encode_hub_message(HubKind.REGISTER, HubRole.SENDER, hub_token)
    for _ in range(3):
        udp.send(registration, hub_control)
        await trio.sleep(0.05)
    while True:
        await trio.sleep(KEEPALIVE_S)
        udp.send(registration, hub_control)


def punch_from(data: bytes, token: bytes) -> Interface | None:
    """The receiver interface a punch datagram comes from, if it carries `token`."""
    try:
        msg = parse_hub_message(data)
    except ValueError:
        return None
    if msg.kind is not HubKind.PUNCH or msg.token != token:
        return None
    return INTERFACE_OF.get(msg.role)


async def wait_punches(
    udp: UdpEndpoint, token: bytes, wanted: set[Interface], within: float
) -> dict[Interface, Address]:
    """The receiver sockets whose punches reach `udp` within `within` seconds (and at
    most `PUNCH_GRACE_S` after the first one), by interface, at the address they came
    from. Anything else that arrives meanwhile is dropped (nothing is due yet)."""
    seen: dict[Interface, Address] = {}
    dup = trio.socket.fromfd(udp.fd, udp.sock.family, socket.SOCK_DGRAM)
    try:
        with trio.move_on_after(within) as scope:
            while len(seen) < len(wanted):
                data, source = await dup.recvfrom(2048)
                interface = punch_from(data, token)
                if interface in wanted and interface is not None:
                    if not seen:
                        scope.deadline = min(scope.deadline, trio.current_time() + PUNCH_GRACE_S)
                    seen.setdefault(interface, (str(source[0]), int(source[1])))
    except OSError as exc:
        log.info("waiting for punches: %s", exc)
    finally:
        dup.close()
    return seen
