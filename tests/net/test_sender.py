"""The sender pipeline: rate conversion, channel mapping, packet sizes, wrap, padding, FEC."""

import random

import numpy as np
import numpy.typing as npt
import pytest

from rocd.net.roc import (
    L16_MONO,
    Bye,
    ChannelMapper,
    Datagram,
    FecScheme,
    Interface,
    RateConverter,
    ReceiverReport,
    ReportBlock,
    Resampler,
    ResamplerQuality,
    RtpPacket,
    Sdes,
    SdesChunk,
    Sender,
    SenderConfig,
    SenderIdentity,
    SenderReport,
    decode_l16,
    parse_rtcp,
    parse_source_datagram,
    serialize_rtcp,
)

WALL0 = 1_700_000_000_000_000_000


def _tone(rate: int, seconds: float, freq: float = 1000.0) -> npt.NDArray[np.float32]:
    n = int(rate * seconds)
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.float32)[:, None]


def _feed(sender: Sender, frames: npt.NDArray[np.float32], seed: int) -> list[Datagram]:
    """Write `frames` in chunks of odd, random sizes, then flush."""
    rng = random.Random(seed)
    out: list[Datagram] = []
    pos = 0
    while pos < len(frames):
        size = rng.choice([1, 17, 333, 480, 1001, 2999])
        out += sender.write(frames[pos : pos + size], WALL0 + pos * 20833)
        pos += size
    return out + sender.flush()


def _rtp(out: list[Datagram], scheme: FecScheme | None) -> list[RtpPacket]:
    source = [d.payload for d in out if d.interface is Interface.SOURCE]
    if scheme is not None:
        source = [parse_source_datagram(scheme, d)[0] for d in source]
    return [RtpPacket.parse(d) for d in source]


def _snr_db(signal: npt.NDArray[np.float64], reference: npt.NDArray[np.float64]) -> float:
    noise = signal - reference
    return float(10 * np.log10(np.mean(reference**2) / np.mean(noise**2)))


def test_48k_mono_to_44k1_stereo_is_the_tone_across_odd_chunks() -> None:
    sender = Sender(
        SenderConfig(fec=FecScheme.RS8M),
        input_rate=48000,
        input_channels=1,
        rng=random.Random(3),
    )
    out = _feed(sender, _tone(48000, 1.0), seed=1)
    packets = _rtp(out, FecScheme.RS8M)
    assert {len(d.payload) for d in out if d.interface is Interface.SOURCE} == {902}
    assert {len(d.payload) for d in out if d.interface is Interface.REPAIR} == {902}
    assert {p.size for p in packets} == {896}
    assert {p.payload_type for p in packets} == {10}
    # 44100 frames out, in whole packets: 199 x 221, the last 121 frames dropped.
    assert len(packets) == 199
    decoded = np.concatenate([decode_l16(p.payload, 2) for p in packets]).astype(np.float64)
    assert np.array_equal(decoded[:, 0], decoded[:, 1])  # mono copied to both channels
    # The output is time-aligned with the input: frame j is the tone at j / 44100 s.
    reference = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(len(decoded)) / 44100)
    # The filter's start-up edge aside, the tone is clean: no click at any chunk border.
    assert _snr_db(decoded[100:, 0], reference[100:]) > 80
    assert np.abs(decoded[100:, 0] - reference[100:]).max() < 1e-4


@pytest.mark.parametrize(
    "quality", [ResamplerQuality.FASTEST, ResamplerQuality.SOXR_LQ, ResamplerQuality.SOXR_HQ]
)
def test_rate_converter_flush_gives_the_one_shot_length(quality: ResamplerQuality) -> None:
    conv = RateConverter(48000, 44100, 2, quality)
    x = np.repeat(_tone(48000, 0.1), 2, axis=1)
    out = [conv.process(x[i : i + 333]) for i in range(0, len(x), 333)]
    out.append(conv.flush())
    total = np.concatenate(out)
    assert total.shape == (4410, 2)
    assert total.dtype == np.float32
    assert conv.flush().shape == (0, 2)  # nothing left
    assert conv.process(np.zeros((0, 2), np.float32)).shape == (0, 2)


@pytest.mark.parametrize(
    "quality", [ResamplerQuality.FASTEST, ResamplerQuality.SOXR_LQ, ResamplerQuality.SOXR_HQ]
)
def test_rate_converter_output_is_time_aligned(quality: ResamplerQuality) -> None:
    conv = RateConverter(48000, 44100, 1, quality)
    x = _tone(48000, 0.5)
    out = np.concatenate([conv.process(x[i : i + 480]) for i in range(0, len(x), 480)])
    reference = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(len(out)) / 44100)
    assert np.abs(out[100:, 0] - reference[100:]).max() < 1e-4


def test_the_drift_resampler_refuses_a_fixed_ratio_converter() -> None:
    with pytest.raises(ValueError, match="fixed ratio"):
        Resampler(lambda n: np.zeros((n, 2), np.float32), 2, 1.0, quality=ResamplerQuality.SOXR_HQ)


def test_channel_mapper() -> None:
    stereo = np.array([[0.5, -0.25], [1.0, 0.0]], np.float32)
    assert np.array_equal(ChannelMapper(2, 1).map(stereo), [[0.125], [0.5]])
    assert np.array_equal(ChannelMapper(1, 2).map(stereo[:, :1]), [[0.5, 0.5], [1.0, 1.0]])
    assert ChannelMapper(2, 2).map(stereo) is stereo
    with pytest.raises(ValueError, match="no channel mapping from 2 to 6"):
        ChannelMapper(2, 6)


def test_stereo_input_to_mono_encoding_is_downmixed() -> None:
    frames = np.stack([_tone(44100, 0.1)[:, 0], -_tone(44100, 0.1)[:, 0] * 0.5], axis=1)
    sender = Sender(
        SenderConfig(encoding=L16_MONO, fec=None),
        input_rate=44100,
        input_channels=2,
        rng=random.Random(0),
    )
    packets = _rtp(_feed(sender, frames, seed=2), None)
    assert {p.payload_type for p in packets} == {11}
    assert {p.size for p in packets} == {12 + 442}
    decoded = np.concatenate([decode_l16(p.payload, 1) for p in packets])[:, 0]
    expected = np.trunc(frames.mean(axis=1) * 32768)[: len(decoded)] / 32768
    assert np.array_equal(decoded, expected.astype(np.float32))


def test_sequence_numbers_and_timestamps_wrap() -> None:
    identity = SenderIdentity(
        ssrc=7, first_seq=65530, first_timestamp=0xFFFF_FFFF - 1000, first_sbn=65535, cname="c"
    )
    sender = Sender(
        SenderConfig(fec=FecScheme.LDPC_STAIRCASE, fec_source_packets=5, fec_repair_packets=7),
        input_rate=44100,
        input_channels=2,
        rng=random.Random(0),
        identity=identity,
    )
    out = _feed(sender, np.zeros((221 * 12, 2), np.float32), seed=3)
    packets = _rtp(out, FecScheme.LDPC_STAIRCASE)
    assert [p.seq for p in packets] == [*range(65530, 65536), *range(6)]
    assert [p.timestamp for p in packets] == [
        (0xFFFF_FFFF - 1000 + 221 * i) & 0xFFFF_FFFF for i in range(12)
    ]
    assert {p.ssrc for p in packets} == {7}
    sources = [d.payload for d in out if d.interface is Interface.SOURCE]
    sbns = [parse_source_datagram(FecScheme.LDPC_STAIRCASE, d)[1].sbn for d in sources]
    assert sbns == [65535] * 5 + [0] * 5 + [1] * 2  # the block number wraps at 16 bits
    assert sum(d.interface is Interface.REPAIR for d in out) == 14  # two full blocks
    assert sender.metrics().sbn == 2  # the unfinished block was closed by flush


def test_partial_last_packet_dropped_by_default() -> None:
    sender = Sender(input_rate=44100, input_channels=2, rng=random.Random(0))
    out = sender.write(np.zeros((221 + 100, 2), np.float32), WALL0)
    assert len(out) == 1
    assert sender.flush() == []
    assert sender.metrics().source_packets == 1


def test_partial_last_packet_padded_with_rtp_padding() -> None:
    # Mono: 100 of 221 frames leave 242 bytes, which fit the 8-bit RTP pad count.
    sender = Sender(
        SenderConfig(encoding=L16_MONO, pad_last_packet=True),
        input_rate=44100,
        input_channels=1,
        rng=random.Random(0),
    )
    frames = np.full((221 + 100, 1), 0.25, np.float32)
    out = sender.write(frames, WALL0) + sender.flush()
    packets = _rtp(out, FecScheme.RS8M)
    assert [p.size for p in packets] == [454, 454]  # constant: the FEC symbol size
    last = packets[1]
    assert last.padding == 242
    assert last.payload == np.full(100, 8192, ">i2").tobytes()
    assert last.timestamp == (packets[0].timestamp + 221) & 0xFFFF_FFFF
    raw = parse_source_datagram(FecScheme.RS8M, out[-1].payload)[0]
    assert raw[0] == 0xA0  # P bit
    assert raw[-1] == 242  # the pad count ends the packet
    # Octet count (SR) counts audio bytes only.
    report = parse_rtcp(sender.poll_rtcp(0, WALL0)[0].payload)[0]
    assert isinstance(report, SenderReport)
    assert (report.packet_count, report.octet_count) == (2, 442 + 200)


def test_plain_rtp_sends_bare_packets() -> None:
    sender = Sender(
        SenderConfig(fec=None), input_rate=44100, input_channels=2, rng=random.Random(0)
    )
    out = sender.write(np.zeros((221 * 40, 2), np.float32), WALL0)
    assert len(out) == 40
    assert {d.interface for d in out} == {Interface.SOURCE}
    assert {len(d.payload) for d in out} == {896}
    metrics = sender.metrics()
    assert (metrics.fec, metrics.sbn, metrics.repair_packets) == (None, None, 0)


def test_metrics_count_datagrams() -> None:
    rng = random.Random(5)
    sender = Sender(input_rate=44100, input_channels=2, rng=rng)
    identity = sender.identity
    out = sender.write(np.zeros((221 * 40, 2), np.float32), WALL0)
    out += sender.poll_rtcp(0, WALL0)
    m = sender.metrics()
    assert (m.ssrc, m.cname) == (identity.ssrc, identity.cname)
    assert 1 <= m.ssrc <= 0xFFFF_FFFF
    assert (m.source_packets, m.source_bytes) == (40, 40 * 902)
    assert (m.repair_packets, m.repair_bytes) == (20, 20 * 902)
    assert (m.rtcp_packets, m.rtcp_bytes) == (1, 76)
    assert m.sbn == (identity.first_sbn + 2) % 65536
    assert m.fec == "rs8m"
    assert len(out) == 61


def test_seeded_senders_are_reproducible() -> None:
    def run(seed: int) -> list[Datagram]:
        sender = Sender(input_rate=44100, input_channels=2, rng=random.Random(seed))
        return sender.write(np.zeros((221 * 20, 2), np.float32), WALL0)

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_ssrc_collision_moves_the_stream_to_a_new_ssrc() -> None:
    sender = Sender(input_rate=44100, input_channels=2, rng=random.Random(9))
    old = sender.ssrc
    sender.write(np.zeros((221, 2), np.float32), WALL0)
    assert sender.poll_rtcp(0, WALL0)
    # Another participant reports with our SSRC and a different CNAME.
    intruder = serialize_rtcp(
        [ReceiverReport(old, (ReportBlock(old),)), Sdes((SdesChunk.with_cname(old, "other"),))]
    )
    sender.handle_rtcp(intruder, 1_000, WALL0 + 1_000)
    new = sender.ssrc
    assert new != old
    out = sender.write(np.zeros((221, 2), np.float32), WALL0 + 5_000_000)
    assert RtpPacket.parse(out[0].payload[:-6]).ssrc == new
    (report,) = sender.poll_rtcp(200_000_000, WALL0 + 200_000_000)
    packets = parse_rtcp(report.payload)
    assert isinstance(packets[0], SenderReport)
    assert packets[0].ssrc == new
    assert packets[0].packet_count == 1  # counts restart with the SSRC
    assert packets[-1] == Bye((old,))
    assert sender.metrics().ssrc_collisions == 1
    # Our own report looped back (same SSRC, same CNAME) is no collision.
    looped = sender.poll_rtcp(400_000_000, WALL0 + 400_000_000)[0].payload
    sender.handle_rtcp(looped, 400_000_001, WALL0 + 400_000_001)
    assert sender.ssrc == new
    assert sender.metrics().ssrc_collisions == 1


def test_stop_says_bye_only_when_configured() -> None:
    quiet = Sender(input_rate=44100, input_channels=2, rng=random.Random(0))
    quiet.write(np.zeros((300, 2), np.float32), WALL0)
    assert quiet.stop(0, WALL0) == []
    polite = Sender(
        SenderConfig(bye_on_stop=True, pad_last_packet=True),
        input_rate=44100,
        input_channels=2,
        rng=random.Random(0),
    )
    polite.write(np.zeros((300, 2), np.float32), WALL0)
    out = polite.stop(0, WALL0)
    assert [d.interface for d in out] == [Interface.SOURCE, Interface.CONTROL]
    packets = parse_rtcp(out[-1].payload)
    assert isinstance(packets[0], SenderReport)
    assert packets[0].packet_count == 2
    assert packets[-1] == Bye((polite.ssrc,))


def test_input_shape_is_checked() -> None:
    sender = Sender(input_rate=44100, input_channels=2, rng=random.Random(0))
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        sender.write(np.zeros((10, 1), np.float32), WALL0)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        sender.write(np.zeros(10, np.float32), WALL0)
