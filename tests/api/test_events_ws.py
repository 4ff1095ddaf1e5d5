"""WS /events against a real server: delivery, filters, slow clients, shutdown."""

from __future__ import annotations

import json

import pytest
import trio
from trio_websocket import CloseReason, ConnectionClosed, WebSocketConnection

from tests.client import RunningDaemon, open_websocket_url, wait_subscribed


async def test_events_arrive_as_json_messages(rocd: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with open_websocket_url(f"{rocd.ws_url}/events") as ws:
            await wait_subscribed(rocd, 1)
            await rocd.http.put("/peers/self", json={"name": "Den"})
            event = json.loads(await ws.get_message())
    assert event["kind"] == "peer.updated"
    assert event["peer"] == rocd.info.uid
    assert event["subject"] == rocd.info.uid
    assert event["data"] == {"name": "Den"}
    assert isinstance(event["seq"], int)
    assert isinstance(event["time"], float)


async def read_until_closed(ws: WebSocketConnection) -> CloseReason:
    """Read (and drop) messages until the server closes; its close code and reason."""
    with pytest.raises(ConnectionClosed) as closed:  # noqa: PT012 - read until it ends
        while True:
            await ws.get_message()
    assert closed.value.reason is not None
    return closed.value.reason


async def test_filters_by_kind_prefix_and_peer(rocd: RunningDaemon) -> None:
    base = f"{rocd.ws_url}/events"
    with trio.fail_after(10):
        async with (
            open_websocket_url(f"{base}?kind=peer.") as peers,
            open_websocket_url(f"{base}?kind=device.,actor.") as devices,
            open_websocket_url(f"{base}?kind=peer.updated&peer=someoneelse") as other,
            open_websocket_url(f"{base}?kind=test.") as marker,
        ):
            await wait_subscribed(rocd, 4)
            await rocd.http.put("/peers/self", json={"name": "One"})
            rocd.daemon.publish("test.done", "", {})
            assert json.loads(await peers.get_message())["data"] == {"name": "One"}
            # The marker arrives after the rename; the others must have nothing by then.
            assert json.loads(await marker.get_message())["kind"] == "test.done"
            for ws in (devices, other):
                with trio.move_on_after(0.2) as scope:
                    await ws.get_message()
                assert scope.cancelled_caught


async def test_a_bad_filter_is_refused_with_422(rocd: RunningDaemon) -> None:
    # A raw handshake: trio-websocket's client leaks its socket when a handshake is refused.
    host, port = rocd.url.removeprefix("http://").rsplit(":", 1)
    request = (
        f"GET /events?buffer=lots HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    with trio.fail_after(10):
        async with await trio.open_tcp_stream(host, int(port)) as stream:
            await stream.send_all(request.encode())
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += await stream.receive_some(4096)
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 422"), answer


async def test_a_slow_client_is_dropped_with_a_reason_others_go_on(rocd: RunningDaemon) -> None:
    big: dict[str, object] = {"blob": "x" * 20_000}  # fills socket buffers quickly
    with trio.fail_after(30):
        async with (
            open_websocket_url(f"{rocd.ws_url}/events?buffer=8", message_queue_size=0) as slow,
            open_websocket_url(f"{rocd.ws_url}/events?kind=test.", message_queue_size=4) as fast,
        ):
            await wait_subscribed(rocd, 2)
            received = 0
            all_received = trio.Event()

            async def read_fast() -> None:
                nonlocal received
                while True:
                    json.loads(await fast.get_message())
                    received += 1
                    if stopped_sending and received == sent:
                        all_received.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_fast)
                sent, stopped_sending = 0, False
                while (await rocd.http.get("/health")).json()["event_subscribers"] == 2:
                    for _ in range(50):
                        rocd.daemon.publish("test.big", "", big)
                        sent += 1
                    await trio.sleep(0.01)
                stopped_sending = True
                if received < sent:
                    await all_received.wait()
                nursery.cancel_scope.cancel()
            reason = await read_until_closed(slow)
    assert reason.code == 1013
    assert reason.reason is not None
    assert "slow subscriber" in reason.reason
    assert received == sent


async def test_shutdown_closes_subscriptions_with_going_away(rocd: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with open_websocket_url(f"{rocd.ws_url}/events") as ws:
            await wait_subscribed(rocd, 1)
            t0 = trio.current_time()
            rocd.daemon.request_stop()
            reason = await read_until_closed(ws)
    assert reason.code == 1001
    assert reason.reason == "daemon shutting down"
    assert trio.current_time() - t0 < 2.0
