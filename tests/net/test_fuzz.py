"""Untrusted bytes into every parser of the RTP/RTCP layer: only MalformedPacket may escape.

Inputs are random bytes and mutations (byte changes, truncation, extension) of valid
packets, so that the fuzzer gets past the first header check.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rocd.net.roc import (
    EncodingMap,
    MalformedPacket,
    RtpPacket,
    decode_l16,
    decode_l16_s16,
    parse_rtcp,
    serialize_rtcp,
)
from tests.net.strategies import rtcp_packet_strategy, rtp_packet_strategy

pytestmark = pytest.mark.fuzz

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
# Cheap inputs: many examples.
FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=_HEALTH)
# Valid packets are costly to generate: fewer seeds, each mutated MUTATIONS times.
FUZZ_SEEDS = settings(max_examples=400, deadline=None, suppress_health_check=_HEALTH)
MUTATIONS = 100


def mutations(valid: bytes, rng: random.Random, count: int = MUTATIONS) -> Iterator[bytes]:
    """`count` variants of `valid`: a few bytes overwritten, then cut or extended."""
    for _ in range(count):
        data = bytearray(valid)
        for _ in range(rng.randrange(4)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.5:
            del data[rng.randrange(len(data) + 1) :]
        data += rng.randbytes(rng.randrange(4))
        yield bytes(data)


# Few packets per compound and few blocks per packet: small inputs reach every branch and
# keep each example cheap; the mutations multiply the inputs per example.
small_rtp = rtp_packet_strategy(max_payload=32).map(RtpPacket.serialize)
small_compounds = st.lists(rtcp_packet_strategy(max_items=3), min_size=1, max_size=3).map(
    serialize_rtcp
)
rngs = st.randoms(use_true_random=True)  # a plain seeded Random: fast


def _only_malformed(parse: Callable[[], object]) -> None:
    with contextlib.suppress(MalformedPacket):
        parse()


def _check_rtp(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except MalformedPacket:
        return
    # Whatever parses re-serialises to a packet that parses the same.
    assert RtpPacket.parse(packet.serialize()) == packet


def _check_rtcp(data: bytes) -> None:
    try:
        packets = parse_rtcp(data)
    except MalformedPacket:
        return
    # Re-serialising is a fixed point (padding is dropped, raw bodies zero-filled once).
    again = serialize_rtcp(packets)
    assert serialize_rtcp(parse_rtcp(again)) == again


@FUZZ
@given(st.binary(max_size=40))
def test_rtp_parser_random_bytes(data: bytes) -> None:
    _check_rtp(data)


@FUZZ_SEEDS
@given(small_rtp, rngs)
def test_rtp_parser_mutations(valid: bytes, rng: random.Random) -> None:
    for data in mutations(valid, rng):
        _check_rtp(data)


@FUZZ
@given(st.binary(max_size=64))
def test_rtcp_parser_random_bytes(data: bytes) -> None:
    _check_rtcp(data)


@FUZZ_SEEDS
@given(small_compounds, rngs)
def test_rtcp_parser_mutations(valid: bytes, rng: random.Random) -> None:
    for data in mutations(valid, rng):
        _check_rtcp(data)


@FUZZ
@given(st.binary(max_size=64), st.integers(1, 8), st.integers(0, 130))
def test_payload_decoders(payload: bytes, channels: int, payload_type: int) -> None:
    _only_malformed(lambda: decode_l16(payload, channels))
    _only_malformed(lambda: decode_l16_s16(payload, channels))
    encodings = EncodingMap()
    _only_malformed(lambda: encodings[payload_type].payload_samples(len(payload)))
