"""WS /events against a real server: delivery, filters, slow clients, shutdown."""

from __future__ import annotations

import json
import re

import httpx
import pytest
import trio
from trio_websocket import CloseReason, ConnectionClosed, WebSocketConnection

from tests.client import RunningDaemon, open_websocket_url, subscribers, wait_subscribed


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
            open_websocket_url(f"{base}?kind=daemon.") as marker,
        ):
            await wait_subscribed(rocd, 3)
            await rocd.http.put("/peers/self", json={"name": "One"})
            rocd.daemon.publish("daemon.marker", "", {})
            assert json.loads(await peers.get_message())["data"] == {"name": "One"}
            # The marker arrives after the rename; the others must have nothing by then.
            assert json.loads(await marker.get_message())["kind"] == "daemon.marker"
            with trio.move_on_after(0.2) as scope:
                await devices.get_message()
            assert scope.cancelled_caught


async def handshake(rocd: RunningDaemon, query: str, *, upgrade: bool = True) -> httpx.Response:
    """The answer to a WebSocket handshake on /events?`query`, read as a plain HTTP answer
    (trio-websocket's client leaks its socket when a handshake is refused)."""
    headers = WS_HEADERS if upgrade else {}
    return await rocd.http.get(f"/events?{query}", headers=headers)


WS_HEADERS = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("buffer=lots", "buffer", "Expected `int`"),
        ("buffer=0", "buffer", ">= 1"),
        ("buffer=1000000000", "buffer", "<= 8192"),
        ("kind=bogus", "kind", "no event kind 'bogus'"),
        ("kind=device.,bogus.", "kind", "no event family 'bogus.'"),
        ("kind=device.addedd", "kind", "no event kind 'device.addedd'"),
        ("colour=red", "colour", "unknown field"),
    ],
)
async def test_a_bad_filter_is_refused_with_422_naming_it(
    rocd: RunningDaemon, query: str, field: str, message: str
) -> None:
    with trio.fail_after(10):
        r = await handshake(rocd, query)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "invalid"
    assert body["details"][0]["in"] == "query"
    assert body["details"][0]["field"] == field
    assert message.replace("`", "") in body["message"]
    assert await subscribers(rocd) == 0


async def test_an_unknown_peer_is_404(rocd: RunningDaemon) -> None:
    for upgrade in (True, False):
        r = await handshake(rocd, "peer=nope", upgrade=upgrade)
        assert r.status_code == 404, r.text
        assert r.json()["error"] == "not_found"
        assert r.json()["details"] == [{"in": "query", "field": "peer", "message": "no such peer"}]
    assert await subscribers(rocd) == 0


async def test_without_an_upgrade_it_is_a_json_426(rocd: RunningDaemon) -> None:
    r = await handshake(rocd, "kind=peer.", upgrade=False)
    assert r.status_code == 426
    assert r.headers["content-type"] == "application/json"
    assert r.headers["upgrade"] == "websocket"
    assert r.json()["error"] == "upgrade_required"
    doc = (await rocd.http.get("/openapi.json")).json()
    responses = doc["paths"]["/events"]["get"]["responses"]
    assert {"101", "404", "422", "426"} <= set(responses)
    # A bad query without the upgrade is named the same way.
    assert (await handshake(rocd, "kind=bogus", upgrade=False)).status_code == 422
    kind = doc["paths"]["/events"]["get"]["parameters"][0]
    assert kind["name"] == "kind"
    assert re.match(kind["schema"]["pattern"], "device., peer.updated,store.")
    assert not re.match(kind["schema"]["pattern"], "bogus")
    assert responses["426"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }


async def test_peer_self_names_this_instance(rocd: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with open_websocket_url(f"{rocd.ws_url}/events?kind=peer.&peer=self") as ws:
            await wait_subscribed(rocd, 1)
            await rocd.http.put("/peers/self", json={"name": "Myself"})
            event = json.loads(await ws.get_message())
    assert event["peer"] == rocd.info.uid
    assert event["data"] == {"name": "Myself"}


async def test_closed_subscribers_are_forgotten_at_once(rocd: RunningDaemon) -> None:
    """No event is published meanwhile: the count drops because the clients went."""
    with trio.fail_after(20):
        for _ in range(3):
            async with open_websocket_url(f"{rocd.ws_url}/events?kind=peer.") as ws:
                await wait_subscribed(rocd, 1)
                await ws.aclose()
            while await subscribers(rocd):  # noqa: ASYNC110 - polling from outside
                await trio.sleep(0.01)
        # A client that vanishes without a close frame is forgotten too.
        host, port = rocd.url.removeprefix("http://").rsplit(":", 1)
        stream = await trio.open_tcp_stream(host, int(port))
        lines = ["GET /events?kind=peer. HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{k}: {v}" for k, v in WS_HEADERS.items()]
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += await stream.receive_some(4096)
        assert answer.startswith(b"HTTP/1.1 101")
        await wait_subscribed(rocd, 1)
        await stream.aclose()
        while await subscribers(rocd):  # noqa: ASYNC110
            await trio.sleep(0.01)


async def test_a_slow_client_is_dropped_with_a_reason_others_go_on(rocd: RunningDaemon) -> None:
    big: dict[str, object] = {"blob": "x" * 20_000}  # fills socket buffers quickly
    with trio.fail_after(30):
        async with (
            open_websocket_url(f"{rocd.ws_url}/events?buffer=8", message_queue_size=0) as slow,
            open_websocket_url(f"{rocd.ws_url}/events?kind=daemon.", message_queue_size=4) as fast,
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
                        rocd.daemon.publish("daemon.big", "", big)
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
