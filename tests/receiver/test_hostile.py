"""Forged and foreign datagrams beside a real stream: what each one may cost a receiver.

One row per attack of the security model (README), on virtual time: counts and state,
never wall-clock timings. The forged packets come from the sender's own address (anyone
on the path can forge it) or from elsewhere; the stream must play exactly what was sent,
FEC included, and every refusal must be counted.
"""

from __future__ import annotations

import itertools
import random
import struct
from collections.abc import Callable

import numpy as np
import pytest

from rocd.net.roc import (
    Bye,
    FecScheme,
    ImpairmentConfig,
    Receiver,
    ReceiverConfig,
    ReceiverReport,
    ReceiverReporter,
    ReportBlock,
    Sdes,
    SdesChunk,
    SenderReport,
    SenderReporter,
    serialize_rtcp,
    unix_ns_to_ntp64,
)
from tests.receiver.sim import (
    MS,
    NS,
    SimSender,
    _Arrival,
    find_offset,
    noisy_sine,
    quantize,
    run,
    schedule,
)

LDPC = FecScheme.LDPC_STAIRCASE
SENDER = ("10.0.0.1", 5000)
SSRC = 0x1234_5678
SECONDS = 3.0
WALL0 = 1_700_000_000 * NS


def _forge(
    arrivals: list[_Arrival], forged: list[tuple[int, bool, bytes, tuple[str, int]]]
) -> list[_Arrival]:
    """`arrivals` with forged (time, is_repair, datagram, address) datagrams mixed in."""
    out = list(arrivals)
    order = len(out)
    for at, is_repair, datagram, address in forged:
        out.append(_Arrival(at, order, is_repair, datagram, address))
        order += 1
    out.sort()
    return out


def _stream(
    fec: FecScheme = LDPC, **kwargs: object
) -> tuple[np.ndarray, list[_Arrival], SimSender]:
    signal = noisy_sine(SECONDS, seed=3)
    sender = SimSender.from_signal(signal, fec=fec, address=SENDER, ssrc=SSRC, **kwargs)
    return signal, schedule([sender], ImpairmentConfig()), sender


def _played_exactly(receiver: Receiver, arrivals: list[_Arrival], signal: np.ndarray) -> None:
    """The receiver plays `signal` sample for sample (FEC-rebuilt packets included), up to
    its last whole FEC block (the partial one at the end has no repair packets)."""
    reads = int(SECONDS * 100) + 40
    out = run(receiver, arrivals, reads=reads)
    expected = quantize(signal)[: _whole(signal)]
    offset = find_offset(out, expected)
    played = out[offset : offset + len(expected)]
    assert len(played) == len(expected)
    np.testing.assert_array_equal(played, expected)


def _whole(signal: np.ndarray) -> int:
    """Samples in the whole FEC blocks of `signal` (18 packets of 221 samples)."""
    return len(signal) // (18 * 221) * 18 * 221


def _window_probe(newest: list[int]) -> Callable[[int, Receiver], None]:
    """A `run` probe that records the session's newest FEC block after every read."""

    def probe(_k: int, receiver: Receiver) -> None:
        session = receiver.session(SSRC)
        fec = None if session is None else session.fec_reader
        if fec is not None and fec.newest_block is not None:
            newest.append(fec.newest_block)

    return probe


def _receiver(fec: FecScheme = LDPC) -> Receiver:
    return Receiver(ReceiverConfig(fec=fec, drift_compensation=False))


# Two source packets of every block lost: FEC must keep rebuilding them.
LOST = frozenset({3, 11})


def test_forged_ldpc_repair_with_a_huge_block_costs_no_decode() -> None:
    """Row 1: `000500150002040000` (SBN 5, ESI 21, K=2, N=1024, a 1-byte symbol) from the
    sender's address, 30/s: dropped on geometry before anything is stored or decoded; the
    stream plays exactly and FEC keeps rebuilding its losses."""
    signal, arrivals, _ = _stream(drop_esis=LOST)
    forged = bytes.fromhex("000500150002040000")
    attack = [(i * NS // 30, True, forged, SENDER) for i in range(int(SECONDS * 30))]
    receiver = _receiver()
    _played_exactly(receiver, _forge(arrivals, attack), signal)
    (session,) = receiver.metrics()
    fec = session.fec
    assert fec is not None
    # Those before the stream's first packet find no session at that address.
    assert fec.inconsistent + receiver.counters.unknown_sender == len(attack)
    assert fec.inconsistent > 80
    assert (fec.block_k, fec.block_n) == (18, 28)
    blocks = len(signal) // 221 // 18
    assert session.recovered == 2 * blocks  # every loss rebuilt, before and after
    assert fec.decodes <= blocks + 1
    assert fec.decode_failures == fec.too_costly == fec.resets == 0
    assert receiver.counters.sessions_created == 1
    assert receiver.counters.sessions_ended == 0


def test_forged_repair_for_every_80th_block_is_counted_and_harmless() -> None:
    """Row 3: a forged LDPC repair packet for every 80th block number (820 of them), with
    the session's own K but N=1024, spread over the stream."""
    signal, arrivals, _ = _stream(drop_esis=LOST)
    forged = [
        struct.pack(">HHHH", sbn, 18 + 3, 18, 1024) + bytes(896) for sbn in range(0, 0x10000, 80)
    ]
    assert len(forged) == 820
    span = int(SECONDS * NS)
    attack = [(i * span // 820, True, d, SENDER) for i, d in enumerate(forged)]
    receiver = _receiver()
    _played_exactly(receiver, _forge(arrivals, attack), signal)
    (session,) = receiver.metrics()
    fec = session.fec
    assert fec is not None
    refused = fec.inconsistent + fec.outside_window + fec.late
    assert refused + receiver.counters.unknown_sender == 820
    assert session.recovered == 2 * (len(signal) // 221 // 18)
    assert fec.block_n == 28


@pytest.mark.parametrize("ahead", [3, 17, 60, 100])
def test_a_repair_packet_far_ahead_never_moves_the_window(ahead: int) -> None:
    """Row 5: one forged repair packet of the session's geometry whose block is 17-100
    ahead of the stream: counted, the window stays, nothing is silenced."""
    signal, arrivals, _ = _stream(drop_esis=LOST)
    receiver = _receiver()
    newest: list[int] = []
    probe = _window_probe(newest)

    # Sent at 1 s, for block (first SBN of the stream + blocks so far + ahead).
    blocks_at_1s = int(1.0 * 44100 / 221 / 18)
    sbn = (65530 + blocks_at_1s + ahead) & 0xFFFF
    forged = struct.pack(">HHHH", sbn, 20, 18, 28) + bytes(896)
    out = run(receiver, _forge(arrivals, [(NS, True, forged, SENDER)]), reads=340, probe=probe)
    expected = quantize(signal)[: _whole(signal)]
    offset = find_offset(out, expected)
    np.testing.assert_array_equal(out[offset : offset + len(expected)], expected)
    (session,) = receiver.metrics()
    assert session.fec is not None
    assert session.fec.outside_window == 1
    assert session.fec.resets == 0
    # The window only ever moved forward, one block at a time.
    assert all((b - a) & 0xFFFF <= 1 for a, b in itertools.pairwise(newest))
    assert len(set(newest)) > 20


def test_only_source_packets_that_pass_the_rtp_checks_move_the_window() -> None:
    """A forged source packet of the session's SSRC: with a sequence jump past Roc's
    filter it never reaches FEC; a copy of a real packet sent early with its block number
    60 blocks ahead passes the filter but disagrees with its sequence number, so FEC does
    not use it. The window never jumps; the stream plays exactly."""
    signal, arrivals, _ = _stream(drop_esis=frozenset({3}))
    sources = [a for a in arrivals if not a.is_repair]
    now, future = sources[150], sources[180]
    far = bytearray(now.datagram)
    seq = struct.unpack_from(">H", far, 2)[0]
    struct.pack_into(">H", far, 2, (seq + 500) & 0xFFFF)
    near = bytearray(future.datagram)
    sbn = struct.unpack_from(">H", near, len(near) - 6)[0]
    struct.pack_into(">H", near, len(near) - 6, (sbn + 60) & 0xFFFF)
    forged = [(now.at + 1, False, bytes(far), SENDER), (now.at + 2, False, bytes(near), SENDER)]
    receiver = _receiver()
    newest: list[int] = []
    probe = _window_probe(newest)

    out = run(receiver, _forge(arrivals, forged), reads=int(SECONDS * 100) + 40, probe=probe)
    expected = quantize(signal)[: _whole(signal)]
    offset = find_offset(out, expected)
    np.testing.assert_array_equal(out[offset : offset + len(expected)], expected)
    (session,) = receiver.metrics()
    assert session.filtered == 1  # the seq jump: Roc's RTP filter
    assert session.fec is not None
    assert session.fec.misaligned == 1
    assert session.fec.resets == 0
    assert all((b - a) & 0xFFFF <= 1 for a, b in itertools.pairwise(newest))


def _rtcp_sr(ssrc: int, *blocks: ReportBlock) -> bytes:
    return serialize_rtcp(
        [
            SenderReport(ssrc, unix_ns_to_ntp64(WALL0), 1000, 10, 8840, blocks),
            Sdes((SdesChunk.with_cname(ssrc, "a6396fb5-5555-4749-ae20-c31acc9a1690"),)),
        ]
    )


def _session_receiver() -> tuple[Receiver, ReceiverReporter, list[_Arrival], np.ndarray]:
    signal, arrivals, _ = _stream()
    receiver = _receiver()
    run(receiver, arrivals[:50], reads=5, keep=False)
    assert receiver.session(SSRC) is not None
    reporter = ReceiverReporter(rng=random.Random(1))
    return receiver, reporter, arrivals, signal


def test_bye_from_another_port_is_counted_and_ignored() -> None:
    """Row 2: an RR+BYE naming the session's SSRC from any other port than the sender's
    RTCP: counted (receiver and session), ignored; the sender's own BYE still works."""
    receiver, reporter, _, _ = _session_receiver()
    rtcp_addr = (SENDER[0], SENDER[1])  # roc-send: RTP and RTCP from one socket
    assert reporter.handle(_rtcp_sr(SSRC), rtcp_addr, 0, WALL0, sessions=receiver.session) == []
    assert reporter.sender_clock(SSRC) is not None
    bye = serialize_rtcp([ReceiverReport(0x5555), Bye((SSRC,))])
    for address in [(SENDER[0], 6000), ("10.0.0.66", SENDER[1]), ("10.0.0.66", 7)]:
        ended = reporter.handle(bye, address, 1, WALL0, sessions=receiver.session)
        assert ended == []
    # A forged SR from elsewhere does not move the clock mapping either.
    clock = reporter.sender_clock(SSRC)
    forged_sr = serialize_rtcp([SenderReport(SSRC, unix_ns_to_ntp64(WALL0 + NS), 9, 1, 1)])
    assert reporter.handle(forged_sr, (SENDER[0], 6001), 2, WALL0, sessions=receiver.session) == []
    assert reporter.sender_clock(SSRC) == clock
    stats = reporter.stats
    assert stats.foreign == 4
    assert stats.byes == 0
    session = receiver.session(SSRC)
    assert session is not None
    assert session.rtcp_foreign == 4
    assert receiver.metrics()[0].rtcp_foreign == 4
    # Reports go to the learned address only.
    reports, _ = reporter.poll(0, WALL0, receiver.reception(0))
    assert [r.address for r in reports] == [rtcp_addr]
    ended = reporter.handle(bye, rtcp_addr, 3, WALL0, sessions=receiver.session)
    assert [e.ssrc for e in ended] == [SSRC]
    assert reporter.stats.byes == 1


def test_rtcp_before_the_first_rtp_and_from_another_host_binds_nothing() -> None:
    receiver, reporter, _, _ = _session_receiver()
    # Another host first: not the session's host, so it cannot become the RTCP peer.
    assert (
        reporter.handle(_rtcp_sr(SSRC), ("10.0.0.9", 5000), 0, WALL0, sessions=receiver.session)
        == []
    )
    assert reporter.sender_clock(SSRC) is None
    # An SSRC without a session: counted, no state.
    assert reporter.handle(_rtcp_sr(0xBEEF), SENDER, 0, WALL0, sessions=receiver.session) == []
    assert reporter.stats.unknown_ssrc == 1
    assert reporter.stats.senders == 0
    assert reporter.handle(_rtcp_sr(SSRC), SENDER, 0, WALL0, sessions=receiver.session) == []
    assert reporter.stats.senders == 1


def test_a_flood_of_reports_from_fresh_ssrcs_leaves_the_tables_bounded() -> None:
    """Row 4: SR with 31 report blocks plus SDES from a fresh SSRC each time. Bound to
    sessions, none of it is kept; unbound (a reporter alone), the table stops at its cap
    and its entries expire."""
    receiver, reporter, _, _ = _session_receiver()
    blocks = tuple(ReportBlock(0x1000 + i) for i in range(31))
    n = 2000
    for i in range(n):
        data = _rtcp_sr(0x7000_0000 + i, *blocks)
        reporter.handle(
            data, ("10.0.0.66", 9000 + i % 100), i * MS, WALL0, sessions=receiver.session
        )
    assert reporter.stats.unknown_ssrc == n
    assert reporter.stats.senders == 0
    alone = ReceiverReporter(rng=random.Random(2), max_senders=16)
    for i in range(n):
        alone.handle(_rtcp_sr(0x7000_0000 + i, *blocks), ("10.0.0.66", 9000), i * MS, WALL0)
    assert alone.stats.senders == 16
    assert alone.stats.table_full == n - 16 - alone.stats.expired
    # Five seconds later the flooders are gone and a real sender finds room.
    alone.handle(_rtcp_sr(SSRC), SENDER, (n + 5000) * MS + 1, WALL0)
    assert alone.sender_clock(SSRC) is not None
    assert alone.stats.senders == 1


def test_a_flood_of_receiver_reports_leaves_a_senders_table_bounded() -> None:
    """The sender's side of row 4: receiver reports about our SSRC from fresh SSRCs stop
    at the cap, are counted, and expire."""
    reporter = SenderReporter(
        rng=random.Random(3), ssrc=SSRC, cname="c" * 36, rate=44100, max_receivers=8
    )
    for i in range(500):
        rr = serialize_rtcp([ReceiverReport(0x7000_0000 + i, (ReportBlock(SSRC),))])
        reporter.handle(rr, i * MS, WALL0)
    assert len(reporter.feedback()) == 8
    assert reporter.receivers_refused == 492
    # Five seconds after the flood, a real receiver is heard again.
    rr = serialize_rtcp([ReceiverReport(0x5555, (ReportBlock(SSRC),))])
    reporter.handle(rr, 6 * NS, WALL0)
    assert [f.ssrc for f in reporter.feedback()] == [0x5555]
