"""The Trio shells over real ZeroMQ: the socket owner, the ZAP handler, a listener and
dialled connections over CURVE on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import zmq

from rocd.net.signalling import (
    ActorAddress,
    Admit,
    Ask,
    AskRefused,
    AskTimedOut,
    Bye,
    Closed,
    Connection,
    Event,
    HandshakeFailed,
    Hello,
    KeyPair,
    Listener,
    LocalInfo,
    Refuse,
    Session,
    Subscribe,
    Welcome,
    ZapAnswer,
    ZapRequest,
    ZmqSocket,
    dealer_socket,
    decode,
    decode_value,
    encode,
    encode_value,
    serve_zap,
)

SERVER = LocalInfo(uid="5e7e", name="server", software="test")
CLIENT = LocalInfo(uid="c11e", name="client", software="test")


async def until(predicate: Callable[[], object], poll: float = 0.005) -> None:
    """Wait until another task has made `predicate` true (polled: it is plain state)."""
    while not predicate():  # noqa: ASYNC110
        await trio.sleep(poll)


def keypair() -> KeyPair:
    public, secret = zmq.curve_keypair()
    return KeyPair(public.decode(), secret.decode())


@pytest.fixture
def ctx() -> Any:
    context: zmq.Context[Any] = zmq.Context()
    yield context
    context.destroy(linger=0)


async def test_owner_moves_many_messages_both_ways_in_order(ctx: Any) -> None:
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    router.bind("inproc://owner")
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.ROUTING_ID, b"d1")
    dealer.connect("inproc://owner")
    server, client = ZmqSocket(router, receive_buffer=8), ZmqSocket(dealer, receive_buffer=8)
    count = 5000
    got_server: list[bytes] = []
    got_client: list[bytes] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            await nursery.start(client.run)

            async def send_up() -> None:
                for i in range(count):
                    client.send_nowait([str(i).encode()])
                    if i % 100 == 0:
                        await trio.lowlevel.checkpoint()

            async def serve() -> None:
                while len(got_server) < count:
                    incoming = await server.receive()
                    routing_id, data = incoming.frames
                    got_server.append(data)
                    server.send_nowait([routing_id, data + b"!"])

            async def read_down() -> None:
                while len(got_client) < count:
                    got_client.append((await client.receive()).frames[0])

            nursery.start_soon(send_up)
            nursery.start_soon(serve)
            await read_down()
            nursery.cancel_scope.cancel()
    assert got_server == [str(i).encode() for i in range(count)]
    assert got_client == [str(i).encode() + b"!" for i in range(count)]
    assert server.closed
    assert client.closed
    assert router.closed
    assert dealer.closed


async def test_router_reports_frames_for_a_peer_that_is_not_there(ctx: Any) -> None:
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    router.bind("inproc://mandatory")
    dropped: list[tuple[list[bytes], str]] = []
    server = ZmqSocket(router, on_undeliverable=lambda f, why: dropped.append((f, why)))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            server.send_nowait([b"nobody", b"hello?"])
            await server.wait_flushed()
            nursery.cancel_scope.cancel()
    assert dropped == [([b"nobody", b"hello?"], "no such peer connected")]
    assert server.undeliverable == 1


# -- a listener and its dialled connections --------------------------------------------


@dataclass
class Handler:
    """A listener's application: admits every hello; echoes asks (or refuses / ignores)."""

    listener: Listener | None = None
    hellos: list[Hello] = field(default_factory=list)
    closed_sessions: list[tuple[str, Closed]] = field(default_factory=list)
    subscribed: list[Session] = field(default_factory=list)
    refuse_hello: str = ""

    def hello(self, session: Session, hello: Hello) -> Admit | Refuse:
        self.hellos.append(hello)
        return Refuse(self.refuse_hello) if self.refuse_hello else Admit("operator")

    def ask(self, session: Session, ask: Ask) -> None:
        assert self.listener is not None
        if ask.request == "Echo":
            self.listener.reply(session, ask.id, ask.body)
        elif ask.request == "Refuse":
            self.listener.error(session, ask.id, "not_found", "no such thing", [{"in": "path"}])
        # "Ignore": never answered

    def subscribe(self, session: Session, subscribe: Subscribe) -> None:
        self.subscribed.append(session)

    def closed(self, session: Session, closed: Closed) -> None:
        self.closed_sessions.append((session.uid, closed))


@dataclass
class Server:
    keys: KeyPair
    endpoint: str
    listener: Listener
    handler: Handler
    requests: list[ZapRequest]
    trusted: set[str]
    scope: trio.CancelScope  # the listener's alone


@asynccontextmanager
async def serving(ctx: Any, *, dead_after: float = 3.0) -> AsyncIterator[Server]:
    keys = keypair()
    handler = Handler()
    requests: list[ZapRequest] = []
    trusted: set[str] = set()

    def decide(request: ZapRequest) -> ZapAnswer:
        requests.append(request)
        return ZapAnswer(request.key in trusted, "unknown key")

    listener = Listener(
        ctx, keys, bind="tcp://127.0.0.1:0", local=SERVER, handler=handler, dead_after=dead_after
    )
    handler.listener = listener
    listener_scope = trio.CancelScope()

    async def run_listener(*, task_status: trio.TaskStatus[str]) -> None:
        with listener_scope:
            await listener.run(task_status=task_status)

    async with trio.open_nursery() as nursery:
        await nursery.start(serve_zap, ctx, decide)
        endpoint = await nursery.start(run_listener)
        yield Server(keys, endpoint, listener, handler, requests, trusted, listener_scope)
        nursery.cancel_scope.cancel()


def connection(ctx: Any, server: Server, keys: KeyPair, **kw: Any) -> Connection:
    return Connection(
        ctx, keys, address=server.endpoint, server_key=server.keys.public, local=CLIENT, **kw
    )


async def test_trusted_key_asks_and_gets_events_over_curve(ctx: Any) -> None:
    client_keys = keypair()
    with trio.fail_after(10):
        async with serving(ctx) as server, trio.open_nursery() as nursery:
            server.trusted.add(client_keys.public)
            conn = connection(ctx, server, client_keys)
            welcome = await nursery.start(conn.run)
            assert (welcome.uid, welcome.role) == ("5e7e", "operator")
            assert server.requests[0].key == client_keys.public
            assert server.requests[0].address == "127.0.0.1"
            [session] = server.listener.sessions.values()
            assert (session.key, session.uid, session.role) == (
                client_keys.public,
                "c11e",
                "operator",
            )

            addr = ActorAddress("thing", "t1")
            body = await conn.ask(addr, "Echo", encode_value({"n": 1}), 2.0)
            assert decode_value(body, dict[str, int]) == {"n": 1}
            with pytest.raises(AskRefused, match="no such thing") as refused:
                await conn.ask(addr, "Refuse", encode_value(None), 2.0)
            assert refused.value.error.code == "not_found"
            assert refused.value.error.details == [{"in": "path"}]

            conn.subscribe(["device."])
            await until(lambda: server.handler.subscribed)
            server.listener.event(session, Event(1, 9, 1.0, "device.added", "5e7e", "d1"))
            event = await conn.events.receive()
            assert (event.n, event.kind, event.subject) == (1, "device.added", "d1")

            await conn.aclose("bye now")
    assert server.handler.closed_sessions == [
        ("c11e", Closed("bye now", "closing", by_remote=True))
    ]


async def test_an_unknown_key_never_gets_a_connection(ctx: Any) -> None:
    stranger = keypair()
    with trio.fail_after(10):
        async with serving(ctx) as server:
            conn = connection(ctx, server, stranger, handshake_timeout=3.0)
            t0 = trio.current_time()
            with pytest.raises(HandshakeFailed, match="refused this instance's key") as failed:
                await conn.run(task_status=trio.TASK_STATUS_IGNORED)
            elapsed = trio.current_time() - t0
    assert failed.value.closed.code == "refused"
    assert "ZAP status 400" in failed.value.closed.reason
    assert elapsed < 1.0  # told by the handshake, not by the handshake timeout
    assert [r.key for r in server.requests] == [stranger.public]  # asked once, not again
    assert server.handler.hellos == []  # not a single frame got through


async def test_a_listener_with_another_key_is_told_apart_from_a_refusal(ctx: Any) -> None:
    # Dialling where another instance listens (it took the peer's old port): the CURVE
    # handshake fails before any ZAP question. The link ends with "wrong-key" when the
    # socket reports the failure, or at the handshake timeout ("dead") when the listener
    # only dropped the connection; never "refused", which would say the peer is there
    # and refuses us (and would keep its new address from being tried).
    client_keys = keypair()
    with trio.fail_after(10):
        async with serving(ctx) as server:
            server.trusted.add(client_keys.public)
            conn = Connection(
                ctx,
                client_keys,
                address=server.endpoint,
                server_key=keypair().public,
                local=CLIENT,
                handshake_timeout=3.0,
            )
            t0 = trio.current_time()
            with pytest.raises(HandshakeFailed) as failed:
                await conn.run(task_status=trio.TASK_STATUS_IGNORED)
            elapsed = trio.current_time() - t0
    closed = failed.value.closed
    assert (closed.code, closed.by_remote) in (("wrong-key", False), ("dead", False)), closed
    if closed.code == "wrong-key":
        assert "another key answers there" in closed.reason
        assert elapsed < 1.0  # told by the handshake, not by the handshake timeout
    else:
        assert closed.reason == "no welcome within 3 s"
    assert server.requests == []  # the listener never got to ask who we are
    assert server.handler.hellos == []


async def test_a_listener_that_never_answers_is_given_up_after_the_handshake_timeout(
    ctx: Any,
) -> None:
    silent = socket.socket()  # the kernel takes the connection; nobody ever speaks
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    port = silent.getsockname()[1]
    conn = Connection(
        ctx,
        keypair(),
        address=f"tcp://127.0.0.1:{port}",
        server_key=keypair().public,
        local=CLIENT,
        handshake_timeout=0.5,
    )
    with trio.fail_after(10):
        t0 = trio.current_time()
        with pytest.raises(HandshakeFailed, match=r"no welcome within 0\.5 s"):
            await conn.run(task_status=trio.TASK_STATUS_IGNORED)
    assert trio.current_time() - t0 == pytest.approx(0.5, abs=0.2)
    silent.close()


async def test_a_refused_hello_ends_the_handshake_with_the_reason(ctx: Any) -> None:
    client_keys = keypair()
    with trio.fail_after(10):
        async with serving(ctx) as server:
            server.trusted.add(client_keys.public)
            server.handler.refuse_hello = "join token expired"
            conn = connection(ctx, server, client_keys)
            with pytest.raises(HandshakeFailed, match="join token expired") as failed:
                await conn.run(task_status=trio.TASK_STATUS_IGNORED)
            assert failed.value.closed == Closed("join token expired", "refused", by_remote=True)


async def test_unanswered_ask_times_out(ctx: Any) -> None:
    client_keys = keypair()
    with trio.fail_after(10):
        async with serving(ctx) as server, trio.open_nursery() as nursery:
            server.trusted.add(client_keys.public)
            conn = connection(ctx, server, client_keys)
            await nursery.start(conn.run)
            t0 = trio.current_time()
            with pytest.raises(AskTimedOut):
                await conn.ask(ActorAddress("t", "1"), "Ignore", encode_value(None), 0.3)
            assert trio.current_time() - t0 == pytest.approx(0.3, abs=0.1)
            await conn.aclose("done")


async def test_a_vanished_listener_is_noticed_within_dead_after(ctx: Any) -> None:
    client_keys = keypair()
    with trio.fail_after(10):
        async with serving(ctx) as server, trio.open_nursery() as nursery:
            server.trusted.add(client_keys.public)
            conn = Connection(
                ctx,
                client_keys,
                address=server.endpoint,
                server_key=server.keys.public,
                local=CLIENT,
                heartbeat_interval=0.2,
                dead_after=0.6,
            )
            done: list[Closed] = []

            async def keep() -> None:
                done.append(await conn.run(task_status=trio.TASK_STATUS_IGNORED))

            nursery.start_soon(keep)
            await until(lambda: conn.open)
            await trio.sleep(0.5)  # heartbeats flow: still open
            assert conn.open
            assert conn.link.rtt is not None
            # The listener vanishes without a word (its socket is simply gone).
            server.scope.cancel()
            t0 = trio.current_time()
            await until(lambda: done)
            elapsed = trio.current_time() - t0
    assert done[0].code == "dead"
    assert elapsed < 0.9


async def test_a_listener_that_says_bye_is_left_at_once(ctx: Any) -> None:
    client_keys = keypair()
    with trio.fail_after(10):
        async with serving(ctx) as server:
            server.trusted.add(client_keys.public)
            conn = connection(ctx, server, client_keys)
            async with trio.open_nursery() as nursery:
                await nursery.start(conn.run)
                t0 = trio.current_time()
                await server.listener.say_bye("shutting down")
                await until(lambda: conn.closed_by is not None)
                elapsed = trio.current_time() - t0
    assert conn.closed_by == Closed("shutting down", "closing", by_remote=True)
    assert elapsed < 0.3
    assert server.handler.closed_sessions == [
        ("c11e", Closed("shutting down", "closing", by_remote=False))
    ]


def test_keys_are_checked() -> None:
    from rocd.net.signalling import check_public_key, fingerprint

    key = keypair().public
    assert check_public_key(key) == key
    assert len(fingerprint(key)) == 16
    with pytest.raises(ValueError, match="40 Z85 characters"):
        check_public_key("short")
    with pytest.raises(ValueError, match="not Z85"):
        check_public_key('"' * 40)
    with pytest.raises(ValueError, match="does not decode"):  # 85**5 - 1 > 2**32 - 1
        check_public_key("#" * 40)


async def test_a_silent_dialler_is_told_and_nothing_new_opens_after_goodbye(ctx: Any) -> None:
    """A dialler driven by hand: it says hello, then nothing. The listener ends its
    session after `dead_after` and says so; once the listener has said goodbye to
    everyone, a new hello opens nothing."""
    client_keys = keypair()
    with trio.fail_after(10):
        async with serving(ctx, dead_after=0.5) as server:
            server.trusted.add(client_keys.public)
            raw = dealer_socket(ctx, client_keys, server.keys.public)
            raw.connect(server.endpoint)
            dealer = ZmqSocket(raw)
            async with trio.open_nursery() as nursery:
                await nursery.start(dealer.run)
                hello = Hello(uid="c11e", name="hand", minor=0, software="test")
                dealer.send_nowait([encode(hello, minor=0)])
                welcome = decode((await dealer.receive()).frames[0]).msg
                assert isinstance(welcome, Welcome)
                t0 = trio.current_time()
                bye = decode((await dealer.receive()).frames[0]).msg
                assert trio.current_time() - t0 == pytest.approx(0.5, abs=0.25)
                assert bye == Bye("no heartbeat for too long", "dead")
                assert server.listener.sessions == {}
                await server.listener.say_bye("shutting down")
                dealer.send_nowait([encode(hello, minor=0)])
                with trio.move_on_after(0.3):
                    await until(lambda: server.listener.refused_frames > 0)
                assert server.listener.refused_frames == 1
                assert server.listener.sessions == {}
                nursery.cancel_scope.cancel()
    assert [uid for uid, _ in server.handler.closed_sessions] == ["c11e"]
