"""Relayed links, sans-IO: frames marked with their side, links that read only their own,
and the rules a rendezvous applies before it forwards a frame (no forged src, no
forged handshake key, only relayed frames, only to a known neighbour)."""

from __future__ import annotations

import msgspec
import pytest

from rocd.net.signalling import (
    SIDE_DIALLER,
    SIDE_LISTENER,
    ActorAddress,
    Answered,
    AskReceived,
    Bye,
    Closed,
    Frame,
    Hello,
    HelloReceived,
    Link,
    LinkState,
    LocalInfo,
    MalformedMessage,
    Misrouted,
    RemoteProtocolError,
    Side,
    SocketClosed,
    Switchboard,
    Welcome,
    Welcomed,
    decode,
    encode,
    encode_value,
)

A = LocalInfo(uid="aaaa", name="A", software="test", key="A" * 40)
C = LocalInfo(uid="cccc", name="C", software="test", key="C" * 40)


def test_a_direct_frame_keeps_four_elements_a_relayed_one_says_its_side() -> None:
    direct = encode(Bye("x"), src="aaaa", dst="cccc")
    assert msgspec.msgpack.decode(direct)[:3] == [[1, 0], "aaaa", "cccc"]
    assert len(msgspec.msgpack.decode(direct)) == 4
    assert decode(direct).side == ""
    relayed = encode(Bye("x"), src="aaaa", dst="cccc", side=SIDE_DIALLER)
    assert len(msgspec.msgpack.decode(relayed)) == 5
    assert decode(relayed).side == SIDE_DIALLER
    bad = msgspec.msgpack.encode([[1, 0], "a", "c", {"t": "bye", "reason": "x"}, "sideways"])
    with pytest.raises(MalformedMessage, match="side"):
        decode(bad)


def relayed_pair() -> tuple[Link, Link]:
    dialler = Link(Side.DIALLER, A, 0.0, relayed=True, peer_uid=C.uid)
    listener = Link(Side.LISTENER, C, 0.0, relayed=True, peer_uid=A.uid)
    return dialler, listener


def test_a_relayed_link_marks_its_frames_and_knows_its_peer_from_the_start() -> None:
    dialler, listener = relayed_pair()
    dialler.hello(0.0)
    [hello] = dialler.outbox()
    frame = decode(hello)
    assert (frame.src, frame.dst, frame.side) == ("aaaa", "cccc", SIDE_DIALLER)
    assert isinstance(frame.msg, Hello)
    assert frame.msg.key == A.key
    listener.receive(hello, 0.1)
    [received] = listener.events()
    assert isinstance(received, HelloReceived)
    listener.welcome("viewer", 0.1)
    [welcome] = listener.outbox()
    assert decode(welcome).side == SIDE_LISTENER
    assert decode(welcome).msg == Welcome(
        uid="cccc", name="C", minor=0, software="test", role="viewer", capabilities=list(
            C.capabilities), key=C.key
    )  # fmt: skip
    dialler.receive(welcome, 0.2)
    assert isinstance(dialler.events()[0], Welcomed)
    ask_id = dialler.ask(ActorAddress("device", "x"), "GetDevice", encode_value({}), 5.0, 0.3)
    for data in dialler.outbox():
        listener.receive(data, 0.3)
    [ask] = listener.events()
    assert isinstance(ask, AskReceived)
    listener.reply(ask.ask.id, encode_value("ok"))
    for data in listener.outbox():
        dialler.receive(data, 0.4)
    [answered] = dialler.events()
    assert isinstance(answered, Answered)
    assert answered.id == ask_id


def test_each_link_hands_up_the_frames_of_other_links() -> None:
    direct = Link(Side.DIALLER, A, 0.0)
    dialler, _ = relayed_pair()
    dialler.hello(0.0)
    [hello] = dialler.outbox()
    # A direct link never reads a relayed frame, even one from and for the right uids.
    direct.remote = Welcome("cccc", "C", 0, "test", "operator")
    direct.state = LinkState.OPEN
    direct.receive(hello, 0.1)
    [event] = direct.events()
    assert isinstance(event, Misrouted)
    assert event.data == hello
    assert event.frame.side == SIDE_DIALLER
    # A relayed dialler does not read another dialler's frames (same uids, wrong side).
    other = Link(Side.DIALLER, C, 0.0, relayed=True, peer_uid=A.uid)
    other.hello(0.0)
    dialler.receive(other.outbox()[0], 0.1)
    assert isinstance(dialler.events()[0], Misrouted)


def test_a_relayed_hello_must_name_its_sender() -> None:
    _, listener = relayed_pair()
    hello = Hello(uid="eeee", name="E", minor=0, software="x", key="E" * 40)
    with pytest.raises(RemoteProtocolError, match="relayed Hello"):
        listener.receive(encode(hello, src="aaaa", dst="cccc", side=SIDE_DIALLER, minor=0), 0.0)
    assert isinstance(listener.events()[-1], Closed)


class FakeCarrier:
    def __init__(self, uid: str, key: str, *, broken: bool = False) -> None:
        self.uid = uid
        self.key = key
        self.sent: list[bytes] = []
        self.broken = broken

    def send_nowait(self, data: bytes) -> None:
        if self.broken:
            raise SocketClosed("gone")
        self.sent.append(data)


def hand(board: Switchboard, carrier: FakeCarrier, data: bytes) -> None:
    frame: Frame = decode(data)
    board.receive(carrier, frame, data)


def rendezvous() -> tuple[Switchboard, FakeCarrier, FakeCarrier]:
    board = Switchboard("rrrr", rendezvous=True)
    from_a, to_c = FakeCarrier("aaaa", A.key), FakeCarrier("cccc", C.key)
    board.add_carrier(from_a)
    board.add_carrier(to_c)
    return board, from_a, to_c


def hello_of(info: LocalInfo, *, key: str | None = None) -> Hello:
    return Hello(
        uid=info.uid, name=info.name, minor=0, software="x", key=info.key if key is None else key
    )


def test_a_rendezvous_forwards_relayed_frames_unchanged() -> None:
    board, _, to_c = rendezvous()
    data = encode(hello_of(A), src="aaaa", dst="cccc", side=SIDE_DIALLER, minor=0)
    hand(board, FakeCarrier("aaaa", A.key), data)  # any carrier of A's key and uid
    assert to_c.sent == [data]
    assert board.stats.forwarded == 1
    assert not board.stats.dropped


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        # Speaking for another instance.
        (encode(hello_of(C), src="cccc", dst="cccc", side=SIDE_DIALLER), "forged_src"),
        (encode(Bye("x"), src="eeee", dst="cccc", side=SIDE_DIALLER), "forged_src"),
        # Its own src, but another's key in the handshake, or another uid in it.
        (encode(hello_of(A, key=C.key), src="aaaa", dst="cccc", side=SIDE_DIALLER), "forged_key"),
        (encode(hello_of(A, key=""), src="aaaa", dst="cccc", side=SIDE_DIALLER), "forged_key"),
        (
            encode(Hello("eeee", "E", 0, "x", key=A.key), src="aaaa", dst="cccc", side="d"),
            "forged_key",
        ),
        # Not a relayed link's frame, or for nobody this rendezvous links to.
        (encode(Bye("x"), src="aaaa", dst="cccc"), "direct frame for another instance"),
        (encode(Bye("x"), src="aaaa", dst="ffff", side=SIDE_DIALLER), "no_route"),
    ],
)
def test_a_rendezvous_drops_what_it_must_not_forward(frame: bytes, reason: str) -> None:
    board, from_a, to_c = rendezvous()
    hand(board, from_a, frame)
    assert to_c.sent == []
    assert board.stats.forwarded == 0
    assert board.stats.dropped == {reason: 1}


def test_only_a_rendezvous_forwards() -> None:
    board = Switchboard("rrrr")
    from_a, to_c = FakeCarrier("aaaa", A.key), FakeCarrier("cccc", C.key)
    board.add_carrier(from_a)
    board.add_carrier(to_c)
    hand(board, from_a, encode(Bye("x"), src="aaaa", dst="cccc", side=SIDE_DIALLER))
    assert to_c.sent == []
    assert board.stats.dropped == {"not a rendezvous": 1}


def test_a_broken_carrier_is_skipped_then_counted() -> None:
    board, from_a, to_c = rendezvous()
    broken = FakeCarrier("cccc", C.key, broken=True)
    board.remove_carrier(to_c)
    board.add_carrier(broken)
    hand(board, from_a, encode(Bye("x"), src="aaaa", dst="cccc", side=SIDE_DIALLER))
    assert board.stats.dropped == {"undeliverable": 1}
    board.add_carrier(to_c)
    hand(board, from_a, encode(Bye("x"), src="aaaa", dst="cccc", side=SIDE_DIALLER))
    assert len(to_c.sent) == 1
    assert board.carriers_of_key(C.key) == [broken, to_c]
    assert sorted(board.neighbours()) == ["aaaa", "cccc"]


def test_frames_for_links_this_instance_does_not_have_are_dropped() -> None:
    board = Switchboard("cccc")
    via = FakeCarrier("rrrr", "R" * 40)
    board.add_carrier(via)
    # A listening end's frame for a relayed connection we never dialled.
    hand(board, via, encode(Bye("x"), src="aaaa", dst="cccc", side=SIDE_LISTENER))
    # A relayed hello without a key cannot say who is talking: dropped (no listener
    # is even asked).
    hand(board, via, encode(hello_of(A, key=""), src="aaaa", dst="cccc", side=SIDE_DIALLER))
    assert board.stats.dropped == {"no such relayed link": 1, "no listener": 1}
