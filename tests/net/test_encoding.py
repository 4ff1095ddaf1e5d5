import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rocd.net.roc import L16_MONO, L16_STEREO, Encoding, EncodingMap, MalformedPacket
from rocd.net.roc import samples_for_duration as samples


def _roc_samples(ns: int, rate: int) -> int:
    """Roc's formula with every step rounded to float32 through struct (independent of numpy)."""

    def f32(x: float) -> float:
        return float(struct.unpack("f", struct.pack("f", x))[0])

    x = f32(f32(f32(ns) / f32(1e9)) * f32(rate))
    whole = int(x)
    return whole + 1 if x - whole >= 0.5 else whole


def test_roc_packet_sizes() -> None:
    assert samples(5_000_000, 44100) == 221  # 220.5 rounds away from zero
    assert samples(10_000_000, 44100) == 441
    assert samples(2_500_000, 44100) == 110  # 110.25
    assert samples(5_000_000, 48000) == 240
    assert samples(1_000_000, 44100) == 44  # 44.100002f
    assert samples(0, 44100) == 0
    assert L16_STEREO.samples_per_packet(5_000_000) == 221
    assert L16_STEREO.payload_bytes(221) == 884
    assert L16_MONO.payload_bytes(221) == 442


@given(st.integers(0, 10**10), st.integers(1, 384_000))
def test_samples_for_duration_matches_single_precision(ns: int, rate: int) -> None:
    assert samples(ns, rate) == _roc_samples(ns, rate)


def test_samples_for_duration_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="duration"):
        samples(-1, 44100)
    with pytest.raises(ValueError, match="rate"):
        samples(5_000_000, 0)


def test_builtins() -> None:
    encodings = EncodingMap()
    assert encodings[10] == Encoding(payload_type=10, rate=44100, channels=2)
    assert encodings[11] == Encoding(payload_type=11, rate=44100, channels=1)
    assert list(encodings) == [L16_STEREO, L16_MONO]
    assert len(encodings) == 2
    assert 10 in encodings
    assert 12 not in encodings
    assert encodings.get(12) is None
    with pytest.raises(MalformedPacket, match="unknown payload type 12"):
        encodings[12]
    assert encodings.find(44100, 2) is L16_STEREO
    assert encodings.find(48000, 2) is None
    assert len(EncodingMap(builtins=False)) == 0


def test_custom_encodings() -> None:
    encodings = EncodingMap()
    enc = Encoding(payload_type=100, rate=48000, channels=6)
    encodings.register(enc)
    assert encodings[100] is enc
    assert enc.frame_bytes == 12
    assert enc.samples_per_packet(5_000_000) == 240
    assert enc.payload_samples(240 * 12) == 240
    assert enc.samples_to_ns(240) == 5_000_000
    assert L16_STEREO.samples_to_ns(221) == 5_011_338  # 5011337.87 ns
    with pytest.raises(ValueError, match="already registered"):
        encodings.register(Encoding(payload_type=100, rate=44100, channels=1))
    with pytest.raises(ValueError, match="already registered"):
        encodings.register(Encoding(payload_type=10, rate=48000, channels=2))
    # The lowest payload type wins when two encodings describe the same format.
    encodings.register(Encoding(payload_type=1, rate=48000, channels=6))
    found = encodings.find(48000, 6)
    assert found is not None
    assert found.payload_type == 1


@pytest.mark.parametrize(
    ("pt", "rate", "channels", "what"),
    [(0, 44100, 2, "payload type"), (128, 44100, 2, "payload type"), (5, 0, 2, "rate"),
     (5, 44100, 0, "channels"), (5, 44100, 1025, "channels")],
)  # fmt: skip
def test_encoding_validates_its_fields(pt: int, rate: int, channels: int, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        Encoding(payload_type=pt, rate=rate, channels=channels)


def test_payload_not_whole_frames_is_malformed() -> None:
    with pytest.raises(MalformedPacket, match="whole number"):
        L16_STEREO.payload_samples(883)
    assert L16_STEREO.payload_samples(0) == 0


@given(
    st.builds(
        Encoding,
        payload_type=st.integers(1, 127),
        rate=st.integers(1, 384_000),
        channels=st.integers(1, 1024),
    ),
    st.integers(0, 100_000),
)
def test_payload_size_round_trip(enc: Encoding, samples: int) -> None:
    size = enc.payload_bytes(samples)
    assert size == 2 * enc.channels * samples
    assert enc.payload_samples(size) == samples
    if samples:
        with pytest.raises(MalformedPacket):
            enc.payload_samples(size - 1)
    # Duration is nearest-ns exact: within half a ns of samples / rate.
    assert abs(enc.samples_to_ns(samples) * enc.rate - samples * 10**9) * 2 <= enc.rate
