"""The frame codec: every message round-trips; bad, foreign and future frames are refused
with one error type and a message that says what is wrong."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings

from rocd.net.signalling import (
    MAJOR,
    MAX_FRAME_BYTES,
    MINOR,
    ActorAddress,
    Ask,
    Bye,
    Heartbeat,
    Hello,
    Invite,
    MalformedMessage,
    Message,
    UnsupportedVersion,
    decode,
    decode_invite,
    decode_value,
    encode,
    encode_invite,
    encode_value,
)
from tests.signalling.strategies import messages, same, text


@given(msg=messages, src=text, dst=text)
@settings(max_examples=300)
def test_every_message_round_trips(msg: Message, src: str, dst: str) -> None:
    frame = decode(encode(msg, src=src, dst=dst))
    assert frame.v == (MAJOR, MINOR)
    assert (frame.src, frame.dst) == (src, dst)
    assert type(frame.msg) is type(msg)
    assert same(frame.msg, msg)


def test_a_frame_is_a_small_array_with_the_version_first() -> None:
    data = encode(Heartbeat(7), src="a1", dst="b2")
    assert msgspec.msgpack.decode(data) == [[MAJOR, MINOR], "a1", "b2", {"t": "hb", "seq": 7}]


def test_another_major_is_refused_before_the_message_is_read() -> None:
    data = msgspec.msgpack.encode([[MAJOR + 1, 0], "", "", {"t": "anything-new"}])
    with pytest.raises(UnsupportedVersion, match=rf"version {MAJOR + 1}\.0; this rocd speaks"):
        decode(data)


def test_a_newer_minor_is_refused_with_a_clear_error() -> None:
    data = msgspec.msgpack.encode([[MAJOR, MINOR + 1], "", "", {"t": "hb", "seq": 1}])
    with pytest.raises(UnsupportedVersion, match=rf"{MAJOR}\.{MINOR + 1}"):
        decode(data)
    assert issubclass(UnsupportedVersion, MalformedMessage)  # one type to catch


def test_an_unknown_message_is_named() -> None:
    data = msgspec.msgpack.encode([[MAJOR, 0], "", "", {"t": "teleport", "to": "mars"}])
    with pytest.raises(MalformedMessage, match="unknown message 'teleport'"):
        decode(data)


def test_unknown_fields_of_a_known_message_are_ignored() -> None:
    data = msgspec.msgpack.encode([[MAJOR, 0], "", "", {"t": "hb", "seq": 3, "later": [1]}])
    assert decode(data).msg == Heartbeat(3)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "not a signalling frame"),
        (b"\xc1", "not a signalling frame"),
        (msgspec.msgpack.encode({"v": 1}), "not a signalling frame"),
        (msgspec.msgpack.encode([[1, 0], "", ""]), "not a signalling frame"),
        (msgspec.msgpack.encode([[1, 0], "", "", {"seq": 1}]), "bad message"),
        (msgspec.msgpack.encode([[1, 0], "", "", {"t": "hb", "seq": "x"}]), "bad hb message"),
        (msgspec.msgpack.encode([[1, 0], "", "", 5]), "bad message"),
        (b"\x94" + b"\x92\x01\x00", "not a signalling frame"),  # truncated
    ],
)
def test_garbage_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(MalformedMessage, match=why):
        decode(data)


def test_a_value_nested_thousands_deep_is_refused_not_raised() -> None:
    # Under MAX_FRAME_BYTES, a list nested 100,000 deep: msgspec gives up with a
    # RecursionError, which must not escape the decoder (the link reads it as malformed).
    deep = b"\x91" * 100_000 + b"\xc0"
    envelope = b"\x95" + b"\x92\x01\x00" + b"\xa1a" + b"\xa1b"
    assert len(envelope + deep) < MAX_FRAME_BYTES
    with pytest.raises(MalformedMessage):
        decode(envelope + deep + b"\xa0")
    event = msgspec.msgpack.encode(
        {"t": "event", "n": 1, "seq": 1, "time": 1.0, "kind": "k", "peer": "p", "data": {"x": 0}}
    )
    nested = event.replace(b"\xa1x\x00", b"\xa1x" + deep)
    with pytest.raises(MalformedMessage):
        decode(envelope + nested + b"\xa0")
    with pytest.raises(MalformedMessage, match="bad body"):
        decode_value(msgspec.Raw(deep), list[int])


def test_an_oversized_frame_is_refused_unread() -> None:
    with pytest.raises(MalformedMessage, match="exceeds"):
        decode(b"\x00" * (MAX_FRAME_BYTES + 1))


def test_handshake_frames_can_be_written_as_minor_zero() -> None:
    data = encode(Hello(uid="a", name="A", minor=MINOR, software="x"), minor=0)
    assert decode(data).v == (MAJOR, 0)


def test_bodies_are_opaque_until_typed() -> None:
    ask = Ask(1, ActorAddress("device", "d1"), "Rename", encode_value({"name": "Kitchen"}), 1000)
    got = decode(encode(ask)).msg
    assert isinstance(got, Ask)

    class Rename(msgspec.Struct):
        name: str

    assert decode_value(got.body, Rename) == Rename("Kitchen")
    with pytest.raises(MalformedMessage, match="bad body"):
        decode_value(got.body, list[int])


KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"


@given(address=text, secret=text.filter(bool), uid=text, role=text)
def test_invites_round_trip(address: str, secret: str, uid: str, role: str) -> None:
    invite = Invite("tcp://" + address, KEY, secret, uid, role)
    token = encode_invite(invite)
    assert token.startswith("rocd1-")
    assert decode_invite("  " + token + "\n") == invite


@pytest.mark.parametrize(
    "token",
    ["", "hello", "rocd1-", "rocd1-!!!!", "rocd1-" + "A" * 2000, "rocd1-kQ", "rocd1-éé"],
)
def test_damaged_invites_are_refused(token: str) -> None:
    with pytest.raises(MalformedMessage, match="join token"):
        decode_invite(token)


def test_bye_defaults_to_closing() -> None:
    assert decode(encode(Bye("done"))).msg == Bye("done", "closing")
