import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rocd.net.roc import MalformedPacket, decode_l16, decode_l16_s16, encode_l16, encode_l16_s16


def test_known_layout() -> None:
    """Big-endian, interleaved L, R."""
    payload = bytes.fromhex("0001 fffe 7fff 8000")
    assert decode_l16_s16(payload, 2).tolist() == [[1, -2], [32767, -32768]]
    assert decode_l16_s16(payload, 1).tolist() == [[1], [-2], [32767], [-32768]]
    frames = decode_l16(payload, 2)
    assert frames.dtype == np.float32
    assert frames.shape == (2, 2)
    assert frames.tolist() == [[1 / 32768, -2 / 32768], [32767 / 32768, -1.0]]
    assert encode_l16(frames) == payload
    assert encode_l16_s16(decode_l16_s16(payload, 2)) == payload


def test_float_to_s16_is_roc_truncation_with_clipping() -> None:
    x = np.array(
        [[1.0], [2.0], [-1.0], [-3.0], [0.5], [-0.5], [1.9 / 32768], [-1.9 / 32768],
         [np.inf], [-np.inf], [np.nan], [0.99999]],
        dtype=np.float32,
    )  # fmt: skip
    got = decode_l16_s16(encode_l16(x), 1)[:, 0].tolist()
    assert got == [32767, 32767, -32768, -32768, 16384, -16384, 1, -1, 32767, -32768, 0, 32767]


def test_float64_input_is_accepted() -> None:
    assert encode_l16(np.array([[0.25, -0.25]])) == bytes.fromhex("2000 e000")


def test_empty_payload() -> None:
    assert decode_l16(b"", 2).shape == (0, 2)
    assert encode_l16(np.zeros((0, 2), np.float32)) == b""


@given(st.binary(max_size=2000).map(lambda b: b[: len(b) // 4 * 4]))
def test_s16_float_s16_is_lossless(payload: bytes) -> None:
    assert encode_l16(decode_l16(payload, 2)) == payload
    assert encode_l16_s16(decode_l16_s16(payload, 2)) == payload
    assert np.array_equal(decode_l16(payload, 2) * 32768, decode_l16_s16(payload, 2))


@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, max_side=64),
        elements=st.floats(-2, 2, width=32),
    )
)
def test_encode_matches_the_formula(frames: np.ndarray) -> None:
    expected = np.clip(np.trunc(frames.astype(np.float64) * 32768), -32768, 32767)
    got = decode_l16_s16(encode_l16(frames), frames.shape[1])
    assert np.array_equal(got, expected)


@pytest.mark.parametrize(("length", "channels"), [(1, 1), (3, 1), (2, 2), (6, 2), (10, 6)])
def test_partial_frame_is_malformed(length: int, channels: int) -> None:
    with pytest.raises(MalformedPacket, match="whole number"):
        decode_l16(bytes(length), channels)
    with pytest.raises(MalformedPacket, match="whole number"):
        decode_l16_s16(bytes(length), channels)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="channels"):
        decode_l16(b"", 0)
    with pytest.raises(ValueError, match="2-D"):
        encode_l16(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="2-D"):
        encode_l16_s16(np.zeros(4, np.int16))
    with pytest.raises(ValueError, match="int16"):
        encode_l16_s16(np.zeros((4, 1), np.int32))
