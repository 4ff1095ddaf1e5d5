"""A hub's media relay: its datagrams (bytes in, bytes out), its forwarding rules, its
bounds (registered addresses only, a byte rate, a port range), and its Trio shell on
real UDP sockets."""

from __future__ import annotations

import socket

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from rocd.net.roc import (
    HubKind,
    HubRelay,
    HubRelayLink,
    HubRole,
    MalformedPacket,
    PortPool,
    encode_hub_message,
    is_hub_message,
    parse_hub_message,
)

TOKEN = bytes(range(16))
OTHER = bytes(range(1, 17))
SENDER = ("198.51.100.7", 40000)
RX = {
    HubRole.SOURCE: ("203.0.113.9", 50001),
    HubRole.REPAIR: ("203.0.113.9", 50002),
    HubRole.CONTROL: ("203.0.113.9", 50003),
}


def register(role: HubRole, token: bytes = TOKEN) -> bytes:
    return encode_hub_message(HubKind.REGISTER, role, token)


def test_a_hub_datagram_round_trips_and_is_never_rtcp() -> None:
    data = encode_hub_message(HubKind.PUNCH, HubRole.REPAIR, TOKEN)
    assert len(data) == 32
    assert data[:5] == b"rdh1\x02"
    assert not 0x80 <= data[0] <= 0xBF  # an RTCP packet's first byte (V=2)
    msg = parse_hub_message(data)
    assert (msg.kind, msg.role, msg.token) == (HubKind.PUNCH, HubRole.REPAIR, TOKEN)
    with pytest.raises(ValueError, match="16 bytes"):
        encode_hub_message(HubKind.PUNCH, HubRole.REPAIR, b"short")


@given(st.binary(max_size=64))
def test_any_bytes_parse_or_are_refused_cleanly(data: bytes) -> None:
    try:
        msg = parse_hub_message(data)
    except MalformedPacket:
        return
    assert is_hub_message(data)
    assert encode_hub_message(msg.kind, msg.role, msg.token) == data[:22].ljust(32, b"\0")


def test_bad_kind_or_role_is_malformed() -> None:
    data = bytearray(register(HubRole.SOURCE))
    data[5] = 9
    with pytest.raises(MalformedPacket):
        parse_hub_message(bytes(data))


def registered(rate: float = 1e9) -> HubRelay:
    relay = HubRelay(TOKEN, rate_bytes_s=rate, burst_bytes=rate, now=0.0)
    for role, address in RX.items():
        assert relay.from_receiver(register(role), address, 0.1) is None
    assert relay.from_sender(HubRole.CONTROL, register(HubRole.SENDER), SENDER, 0.2) is None
    return relay


def test_media_goes_to_the_registered_receiver_sockets_and_reports_back() -> None:
    relay = registered()
    assert relay.stats.registrations == 4
    for role in (HubRole.SOURCE, HubRole.REPAIR, HubRole.CONTROL):
        assert relay.from_sender(role, b"\x80\x0a media", SENDER, 1.0) == RX[role]
    # RTCP reports from the receiver's control socket go back to the sender.
    assert relay.from_receiver(b"\x81\xc9 report", RX[HubRole.CONTROL], 1.1) == SENDER
    assert relay.stats.to_receiver == 3
    assert relay.stats.to_sender == 1
    assert relay.last_heard == 1.1


def test_only_registered_addresses_are_relayed() -> None:
    relay = registered()
    stranger = ("192.0.2.66", 1234)
    assert relay.from_sender(HubRole.SOURCE, b"\x80 forged", stranger, 1.0) is None
    assert relay.from_receiver(b"\x81 forged", stranger, 1.0) is None
    # The receiver's media sockets do not send reports: only its control socket does.
    assert relay.from_receiver(b"\x81 forged", RX[HubRole.SOURCE], 1.0) is None
    assert relay.stats.unknown_source == 3
    # A registration with another token moves nothing.
    assert relay.from_sender(HubRole.CONTROL, register(HubRole.SENDER, OTHER), stranger, 2) is None
    assert relay.from_receiver(register(HubRole.SOURCE, OTHER), stranger, 2.0) is None
    assert relay.stats.bad_token == 2
    assert relay.sender == SENDER
    assert relay.receiver[HubRole.SOURCE] == RX[HubRole.SOURCE]
    # Nor does a sender's registration sent to a media port.
    assert relay.from_sender(HubRole.SOURCE, register(HubRole.SENDER), stranger, 2.0) is None
    assert relay.sender == SENDER


def test_nothing_goes_to_a_receiver_socket_that_has_not_registered() -> None:
    relay = HubRelay(TOKEN, rate_bytes_s=1e9, now=0.0)
    relay.from_sender(HubRole.CONTROL, register(HubRole.SENDER), SENDER, 0.0)
    assert relay.from_sender(HubRole.SOURCE, b"\x80 media", SENDER, 0.1) is None
    assert relay.stats.no_receiver == 1
    # A socket that moved (a NAT that remapped it) registers again and is followed.
    relay.from_receiver(register(HubRole.SOURCE), ("203.0.113.9", 60000), 0.2)
    assert relay.from_sender(HubRole.SOURCE, b"\x80 media", SENDER, 0.3) == ("203.0.113.9", 60000)


def test_the_byte_rate_is_a_bound() -> None:
    relay = HubRelay(TOKEN, rate_bytes_s=10_000, burst_bytes=2_000, now=0.0)
    for role, address in RX.items():
        relay.from_receiver(register(role), address, 0.0)
    relay.from_sender(HubRole.CONTROL, register(HubRole.SENDER), SENDER, 0.0)
    packet = bytes(1000)
    sent = sum(
        relay.from_sender(HubRole.SOURCE, packet, SENDER, i / 1000) is not None
        for i in range(1000)  # 1000 kB offered over one second
    )
    assert 11 <= sent <= 12  # 10 kB/s plus the 2 kB burst
    assert relay.stats.over_rate == 1000 - sent


def test_a_port_range_is_a_bound() -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    first = probe.getsockname()[1]
    probe.close()
    pool = PortPool(first, first + 5)
    got = pool.bind("127.0.0.1", 4)
    assert all(first <= s.getsockname()[1] <= first + 5 for s in got)
    with pytest.raises(OSError, match="no free UDP port left"):
        pool.bind("127.0.0.1", 4)  # only two are left
    for s in got:
        s.close()
    again = pool.bind("127.0.0.1", 4)  # freed ports are used again
    assert len(again) == 4
    for s in again:
        s.close()
    with pytest.raises(ValueError, match="bad port range"):
        PortPool(10, 5)


async def test_the_relay_link_forwards_on_real_sockets() -> None:
    def udp() -> trio.socket.SocketType:
        return trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)

    relay = HubRelay(TOKEN, rate_bytes_s=1e9, now=trio.current_time())
    link = HubRelayLink(relay, PortPool().bind("127.0.0.1", 4))
    (s_source, _s_repair, s_control), y = link.ports
    sender, rx_source, rx_control = udp(), udp(), udp()
    for sock in (sender, rx_source, rx_control):
        await sock.bind(("127.0.0.1", 0))
    hub = "127.0.0.1"
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(link.run)
            await rx_source.sendto(register(HubRole.SOURCE), (hub, y))
            await rx_control.sendto(register(HubRole.CONTROL), (hub, y))
            await sender.sendto(register(HubRole.SENDER), (hub, s_control))
            for _ in range(200):  # the datagrams cross the loopback
                if relay.stats.registrations == 3:
                    break
                await trio.sleep(0.01)
            assert relay.stats.registrations == 3
            await sender.sendto(b"\x80\x0a source", (hub, s_source))
            data, source = await rx_source.recvfrom(2048)
            # From the port it registered with: its NAT lets it in.
            assert (data, source[1]) == (b"\x80\x0a source", y)
            await sender.sendto(b"\x80\xc8 sr", (hub, s_control))
            data, source = await rx_control.recvfrom(2048)
            assert (data, source[1]) == (b"\x80\xc8 sr", y)
            await rx_control.sendto(b"\x81\xc9 rr", (hub, y))
            data, source = await sender.recvfrom(2048)
            assert (data, source[1]) == (b"\x81\xc9 rr", s_control)
            nursery.cancel_scope.cancel()
    assert link.udp[0].sock.fileno() == -1  # closed when it stopped
    for sock in (sender, rx_source, rx_control):
        sock.close()
