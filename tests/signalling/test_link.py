"""One link's state machine, two ends wired back to back in memory, time passed in."""

from __future__ import annotations

import msgspec
import pytest

from rocd.net.signalling import (
    MAX_PENDING_ASKS,
    MINOR,
    ActorAddress,
    Answered,
    AskAborted,
    AskExpired,
    AskFailed,
    AskReceived,
    Bye,
    Closed,
    Error,
    EventReceived,
    Heartbeat,
    HelloReceived,
    Link,
    LinkError,
    LinkEvent,
    LinkState,
    LinkStateError,
    LocalInfo,
    MalformedMessage,
    Misrouted,
    RemoteProtocolError,
    Side,
    SubscribeReceived,
    Welcomed,
    decode,
    encode,
    encode_value,
)
from rocd.net.signalling import Event as EventMsg

A = LocalInfo(uid="aaaa", name="A", software="test", address="tcp://a:1")
B = LocalInfo(uid="bbbb", name="B", software="test", address="tcp://b:1")
DEV = ActorAddress("device", "tone:sine")


def state(link: Link) -> LinkState:
    """The link's state, read afresh (not narrowed by an earlier assert)."""
    return link.state


def pair(now: float = 0.0) -> tuple[Link, Link]:
    return Link(Side.DIALLER, A, now), Link(Side.LISTENER, B, now)


def carry(src: Link, dst: Link, now: float) -> list[LinkEvent]:
    """Deliver everything `src` wrote to `dst`; return what happened on `dst`."""
    for data in src.outbox():
        dst.receive(data, now)
    return dst.events()


def opened(now: float = 0.0) -> tuple[Link, Link]:
    dialler, listener = pair(now)
    dialler.hello(now)
    carry(dialler, listener, now)
    listener.welcome("operator", now)
    carry(listener, dialler, now)
    return dialler, listener


def test_handshake_opens_both_ends() -> None:
    dialler, listener = pair()
    dialler.hello(0.0, join="s3cret")
    assert dialler.state is LinkState.GREETING
    [hello] = carry(dialler, listener, 0.1)
    assert isinstance(hello, HelloReceived)
    assert (hello.hello.uid, hello.hello.address, hello.hello.join) == (
        "aaaa",
        "tcp://a:1",
        "s3cret",
    )
    assert listener.state is LinkState.GREETING
    listener.welcome("viewer", 0.1)
    assert state(listener) is LinkState.OPEN
    [welcomed] = carry(listener, dialler, 0.2)
    assert isinstance(welcomed, Welcomed)
    assert (welcomed.welcome.uid, welcomed.welcome.role) == ("bbbb", "viewer")
    assert state(dialler) is LinkState.OPEN
    assert dialler.remote_uid == "bbbb"
    assert listener.remote_uid == "aaaa"


def test_handshake_frames_are_minor_zero_and_the_lower_minor_is_agreed() -> None:
    newer = LocalInfo(uid="cccc", name="C", software="future", minor=MINOR + 3)
    dialler, listener = Link(Side.DIALLER, newer, 0.0), Link(Side.LISTENER, B, 0.0)
    dialler.hello(0.0)
    [data] = dialler.outbox()
    assert decode(data).v[1] == 0
    listener.receive(data, 0.0)
    listener.welcome("viewer", 0.0)
    [data] = listener.outbox()
    assert decode(data).v[1] == 0
    dialler.receive(data, 0.0)
    assert dialler.minor == listener.minor == MINOR


def test_frames_carry_both_uids_once_known() -> None:
    dialler, _ = opened()
    dialler.subscribe([])
    [data] = dialler.outbox()
    frame = decode(data)
    assert (frame.src, frame.dst) == ("aaaa", "bbbb")


def test_ask_reply_and_error() -> None:
    dialler, listener = opened()
    first = dialler.ask(DEV, "GetDevice", encode_value(None), 5.0, 1.0)
    second = dialler.ask(DEV, "UpdateDevice", encode_value({"volume": 2}), 5.0, 1.0)
    assert second == first + 1
    asks = carry(dialler, listener, 1.0)
    assert [type(e) for e in asks] == [AskReceived, AskReceived]
    got = asks[0]
    assert isinstance(got, AskReceived)
    assert (got.ask.id, got.ask.actor, got.ask.request, got.ask.timeout_ms) == (
        first,
        DEV,
        "GetDevice",
        5000,
    )
    listener.reply(first, encode_value({"id": "tone:sine"}))
    listener.error(second, "invalid", "volume too high", [{"field": "volume"}], DEV)
    answers = carry(listener, dialler, 1.5)
    assert isinstance(answers[0], Answered)
    assert msgspec.msgpack.decode(answers[0].body) == {"id": "tone:sine"}
    assert answers[1] == AskFailed(
        second, Error(second, "invalid", "volume too high", [{"field": "volume"}], DEV)
    )
    assert dialler.pending == 0


def test_an_ask_expires_at_its_deadline_and_a_late_reply_is_ignored() -> None:
    dialler, listener = opened(10.0)
    ask_id = dialler.ask(DEV, "GetDevice", encode_value(None), 2.0, 10.0)
    carry(dialler, listener, 10.0)
    assert dialler.next_deadline() == 11.0  # the first heartbeat comes before
    dialler.tick(11.0)
    carry(dialler, listener, 11.0)
    carry(listener, dialler, 11.0)
    dialler.tick(11.999)
    assert dialler.events() == []
    dialler.tick(12.0)
    assert dialler.events() == [AskExpired(ask_id)]
    listener.reply(ask_id, encode_value(1))
    assert carry(listener, dialler, 12.5) == []
    assert dialler.late_replies == 1


def test_heartbeats_measure_the_round_trip() -> None:
    dialler, listener = opened(0.0)
    assert dialler.next_deadline() == 1.0
    dialler.tick(1.0)
    [data] = dialler.outbox()
    assert decode(data).msg == Heartbeat(1)
    listener.receive(data, 1.02)
    dialler.receive(listener.outbox()[0], 1.05)
    assert dialler.rtt == pytest.approx(0.05)
    assert dialler.next_deadline() == 2.0


def test_a_silent_listener_is_dead_after_dead_after_seconds() -> None:
    dialler, _ = opened(0.0)
    ask_id = dialler.ask(DEV, "GetDevice", encode_value(None), 30.0, 0.5)
    for t in (1.0, 2.0):  # heartbeats go out, nothing comes back
        dialler.tick(t)
        dialler.outbox()
    assert dialler.next_deadline() == 3.0
    dialler.tick(2.999)
    assert dialler.state is LinkState.OPEN
    dialler.tick(3.0)
    assert state(dialler) is LinkState.CLOSED
    events = dialler.events()
    assert events[0] == AskAborted(ask_id, "silent for 3.0 s")
    assert events[1] == Closed("silent for 3.0 s", "dead", by_remote=False)
    assert dialler.next_deadline() == float("inf")


def test_a_silent_dialler_is_dead_on_the_listener_side_too() -> None:
    _, listener = opened(0.0)
    assert listener.next_deadline() == 3.0
    listener.tick(3.0)
    assert listener.events() == [Closed("silent for 3.0 s", "dead", by_remote=False)]


def test_a_greeting_dialler_waits_for_its_handshake_timeout() -> None:
    dialler = Link(Side.DIALLER, A, 0.0, handshake_timeout=5.0, dead_after=3.0)
    dialler.hello(0.0)
    assert dialler.next_deadline() == 5.0
    dialler.tick(4.99)
    assert dialler.state is LinkState.GREETING
    dialler.tick(5.0)
    assert dialler.events() == [Closed("no welcome within 5 s", "dead", by_remote=False)]


def test_refusal_reaches_the_dialler_as_a_bye() -> None:
    dialler, listener = pair()
    dialler.hello(0.0)
    carry(dialler, listener, 0.0)
    listener.refuse("unknown key", "refused")
    assert listener.events() == [Closed("unknown key", "refused", by_remote=False)]
    assert carry(listener, dialler, 0.0) == [Closed("unknown key", "refused", by_remote=True)]


def test_bye_closes_both_ends_and_aborts_pending_asks() -> None:
    dialler, listener = opened()
    ask_id = dialler.ask(DEV, "GetDevice", encode_value(None), 5.0, 0.0)
    carry(dialler, listener, 0.0)
    listener.bye("shutting down")
    assert carry(listener, dialler, 0.0) == [
        AskAborted(ask_id, "shutting down"),
        Closed("shutting down", "closing", by_remote=True),
    ]
    assert listener.state is dialler.state is LinkState.CLOSED
    listener.bye("again")  # a no-op once closed
    assert listener.outbox() == []


def test_events_and_subscriptions_pass_in_open_links() -> None:
    dialler, listener = opened()
    dialler.subscribe(["device.", "vad.created"])
    [sub] = carry(dialler, listener, 0.0)
    assert isinstance(sub, SubscribeReceived)
    assert sub.subscribe.kinds == ["device.", "vad.created"]
    event = EventMsg(1, 42, 1.5e9, "device.added", "bbbb", "tone:sine", {"x": 1})
    listener.event(event)
    assert carry(listener, dialler, 0.0) == [EventReceived(event)]


@pytest.mark.parametrize(
    "first",
    [
        Heartbeat(1),
        EventMsg(1, 1, 0.0, "x", "p"),
        Error(0, "x", "y"),
    ],
)
def test_anything_but_a_hello_first_breaks_the_protocol(first: object) -> None:
    listener = Link(Side.LISTENER, B, 0.0)
    with pytest.raises(RemoteProtocolError, match="before the handshake ended"):
        listener.receive(encode(first), 0.0)  # type: ignore[arg-type]
    [data] = listener.outbox()
    bye = decode(data).msg
    assert isinstance(bye, Bye)
    assert bye.code == "protocol"
    assert listener.state is LinkState.CLOSED
    assert listener.events()[-1].code == "protocol"  # type: ignore[union-attr]


def test_a_second_hello_breaks_the_protocol() -> None:
    _, listener = opened()
    hello = Link(Side.DIALLER, A, 0.0)
    hello.hello(0.0)
    with pytest.raises(RemoteProtocolError, match="unexpected Hello"):
        listener.receive(hello.outbox()[0], 0.0)


def test_an_unreadable_frame_is_answered_and_the_link_stays_open() -> None:
    dialler, listener = opened()
    with pytest.raises(MalformedMessage):
        listener.receive(b"\x93junk", 1.0)
    assert listener.state is LinkState.OPEN
    assert listener.malformed == 1
    [event] = carry(listener, dialler, 1.0)
    assert isinstance(event, LinkError)
    assert event.error.code == "malformed"


def test_frames_for_another_instance_are_handed_up_as_misrouted() -> None:
    _, listener = opened()
    data = encode(Heartbeat(9), src="aaaa", dst="zzzz")
    listener.receive(data, 0.0)
    [event] = listener.events()
    assert isinstance(event, Misrouted)
    assert event.frame.dst == "zzzz"
    assert listener.outbox() == []  # not acked: not ours


def test_our_own_misuse_is_a_link_state_error() -> None:
    dialler, listener = pair()
    with pytest.raises(LinkStateError, match="cannot ask: the link is new"):
        dialler.ask(DEV, "GetDevice", encode_value(None), 1.0, 0.0)
    with pytest.raises(LinkStateError, match="the dialler side cannot welcome"):
        dialler.welcome("admin", 0.0)
    with pytest.raises(LinkStateError, match="the listener side cannot hello"):
        listener.hello(0.0)
    dialler.hello(0.0)
    with pytest.raises(LinkStateError, match="cannot hello in state greeting"):
        dialler.hello(0.0)


def test_pending_asks_are_capped() -> None:
    dialler, _ = opened()
    for _ in range(MAX_PENDING_ASKS):
        dialler.ask(DEV, "GetDevice", encode_value(None), 5.0, 0.0)
    with pytest.raises(LinkStateError, match="already pending"):
        dialler.ask(DEV, "GetDevice", encode_value(None), 5.0, 0.0)
