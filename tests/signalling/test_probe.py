"""UDP probes to a rendezvous (sans-IO codec, the echo's rules, the Trio shells on
127.0.0.1) and LAN announcements: hostile bytes in, one error type out."""

from __future__ import annotations

import contextlib
import os

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from rocd.net.signalling import (
    PROBE_BYTES,
    MalformedMessage,
    ProbeServer,
    RateLimit,
    announcement_properties,
    encode_answer,
    encode_probe,
    fingerprint,
    learn_udp_address,
    parse_announcement,
    parse_answer,
    parse_probe,
    serve_probes,
)

KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"


def test_probe_and_answer_round_trip() -> None:
    txid, token = os.urandom(12), os.urandom(16)
    probe = parse_probe(encode_probe(txid, token))
    assert (probe.txid, probe.token) == (txid, token)
    assert parse_probe(encode_probe(txid)).token == bytes(16)
    for host in ("10.82.1.1", "2001:db8::7"):
        answer = parse_answer(encode_answer(txid, host, 40123))
        assert (answer.txid, answer.host, answer.port) == (txid, host, 40123)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_fail_with_one_error(data: bytes) -> None:
    for parse in (parse_probe, parse_answer):
        with contextlib.suppress(MalformedMessage):
            parse(data)


@given(st.binary(max_size=200), st.sampled_from(["10.0.0.1", "::1"]))
def test_the_echo_never_answers_with_more_than_it_got(data: bytes, host: str) -> None:
    server = ProbeServer()
    answer = server.handle(data, host, 9, 0.0)
    assert answer is None or len(answer) <= len(data)
    assert answer is None or len(data) >= PROBE_BYTES


def test_the_echo_limits_each_source_and_remembers_few() -> None:
    seen: list[tuple[bytes, str, int]] = []
    server = ProbeServer(lambda *a: seen.append(a), RateLimit(rate=2.0, burst=3.0, max_sources=4))
    probe = encode_probe(bytes(12), b"t" * 16)
    answers = [server.handle(probe, "10.0.0.1", 5, 0.0) for _ in range(5)]
    assert [a is not None for a in answers] == [True, True, True, False, False]
    assert server.handle(probe, "10.0.0.1", 5, 0.5) is not None  # refilled at 2/s
    assert server.handle(probe, "10.0.0.2", 5, 0.5) is not None  # others are not held up
    assert seen[0] == (b"t" * 16, "10.0.0.1", 5)
    for i in range(10):
        server.limit.allow(f"10.1.0.{i}", 1.0)
    assert len(server.limit._buckets) == 4
    assert server.handle(b"rdp1" + bytes(10), "10.0.0.3", 5, 1.0) is None
    assert (server.answered, server.refused) == (5, 3)


async def test_a_socket_learns_the_address_the_echo_sees() -> None:
    with trio.fail_after(5):
        echo = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        client = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        with echo, client:
            await echo.bind(("127.0.0.1", 0))
            await client.bind(("127.0.0.1", 0))
            tokens: list[bytes] = []
            server = ProbeServer(lambda token, host, port: tokens.append(token))
            async with trio.open_nursery() as nursery:
                await nursery.start(serve_probes, echo, server)
                seen = await learn_udp_address(client, echo.getsockname(), token=b"x" * 16)
                nursery.cancel_scope.cancel()
            assert seen == client.getsockname()
            assert tokens == [b"x" * 16]
            silent = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
            with silent:
                await silent.bind(("127.0.0.1", 0))
                with pytest.raises(TimeoutError):
                    await learn_udp_address(client, silent.getsockname(), interval=0.05, tries=2)


def announced(**changes: str) -> dict[bytes, bytes | None]:
    props = announcement_properties(
        uid="0123456789ab", name="Kitchen", key=KEY, version="0.1.0", address="tcp://10.0.0.5:4611"
    )
    props.update(changes)
    return {k.encode(): v.encode() for k, v in props.items()}


def test_an_announcement_says_who_and_where() -> None:
    got = parse_announcement(announced(), ["10.0.0.5"], 4611)
    assert (got.uid, got.name, got.key, got.address) == (
        "0123456789ab",
        "Kitchen",
        KEY,
        "tcp://10.0.0.5:4611",
    )
    assert got.fingerprint == fingerprint(KEY)
    assert got.compatible
    # Listening on loopback or on every address: dial the service's own address.
    local = parse_announcement(announced(addr="tcp://0.0.0.0:4611"), ["127.0.0.1", "10.0.0.9"], 7)
    assert local.address == "tcp://10.0.0.9:7"
    assert not parse_announcement(announced(sig="2.0"), [], 0).compatible


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"fp": "0" * 16}, "fingerprint"),
        ({"key": "short"}, "key"),
        ({"uid": ""}, "uid"),
        ({"uid": "x" * 65}, "uid"),
        ({"name": "bad\nname"}, "printable"),
        ({"addr": "tcp://127.0.0.1:1"}, "address"),
    ],
)
def test_a_bad_announcement_is_refused(changes: dict[str, str], why: str) -> None:
    with pytest.raises(MalformedMessage, match=why):
        parse_announcement(announced(**changes), ["127.0.0.1"], 4611)


@given(
    st.dictionaries(
        st.sampled_from([b"uid", b"key", b"fp", b"addr", b"name", b"v", b"sig", b"x"]),
        st.one_of(st.none(), st.binary(max_size=300)),
    ),
    st.lists(st.sampled_from(["10.0.0.1", "127.0.0.1", "::1", "not an ip"]), max_size=3),
    st.integers(-5, 70000),
)
def test_any_announcement_parses_or_fails_with_one_error(
    props: dict[bytes, bytes | None], addresses: list[str], port: int
) -> None:
    with contextlib.suppress(MalformedMessage):
        parse_announcement(props, addresses, port)
