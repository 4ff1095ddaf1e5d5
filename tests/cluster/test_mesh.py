"""Three instances as separate processes, paired into a full mesh through their APIs:
any instance drives any other, sees its events, notices its death and its return.

A and B have no sound server (file and tone devices); C uses the session's PulseAudio,
so a virtual speaker made on C through A's API can be looked for in C's sound server.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.client import open_websocket_url
from tests.pulse_server import PulseServer

from .instances import Instance, start_all, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, pulse_server: PulseServer
) -> Iterator[dict[str, Instance]]:
    root = tmp_path_factory.mktemp("mesh")
    pulse = f'[audio]\npulse = "system"\npulse_server = "{pulse_server.env["PULSE_SERVER"]}"\n'
    no_pulse = '[audio]\npulse = "off"\n'
    nodes = {
        "a": Instance("a", root, no_pulse),
        "b": Instance("b", root, no_pulse),
        "c": Instance("c", root, pulse),
    }
    try:
        start_all(list(nodes.values()))
        for one in nodes.values():
            for other in nodes.values():
                if one is not other:
                    assert one.pair(other).status_code == 201
        for one in nodes.values():
            for other in nodes.values():
                if one is not other:
                    one.wait_state(other, "online")
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()


def test_pairing_lists_the_whole_cluster_everywhere(mesh: dict[str, Instance]) -> None:
    for one in mesh.values():
        # The round trip is known from the first heartbeat on (one a second).
        peers = _with_round_trips(one)
        assert [p["self"] for p in peers] == [True, False, False]
        assert {p["uid"] for p in peers} == {n.uid for n in mesh.values()}
        for info in peers[1:]:
            other = next(n for n in mesh.values() if n.uid == info["uid"])
            assert info["state"] == "online"
            assert info["name"] == other.name
            assert info["address"] == other.address
            assert info["key"] == other.key
            assert info["fingerprint"] == other.me["fingerprint"]
            assert info["role"] == "operator"
            assert 0 < info["rtt_ms"] < 1000
            assert abs(info["last_seen"] - time.time()) < 5
        online = one.get("/peers", params={"state": "online"}).json()
        assert [p["uid"] for p in online] == [p["uid"] for p in peers]
        assert one.get("/peers", params={"state": "refused"}).json() == []
        assert one.get("/peers", params={"state": "sleepy"}).status_code == 422


def _with_round_trips(one: Instance) -> list[dict[str, Any]]:
    """GET /peers once the round trip to every peer is known (the first heartbeat)."""
    peers, _ = wait_for(
        f"{one.name} knows the round trip to its peers",
        lambda: one.get("/peers").json(),
        lambda peers: all(p["rtt_ms"] is not None for p in peers[1:]),
    )
    return list(peers)


def test_a_vad_made_on_c_through_a_is_in_cs_sound_server(
    mesh: dict[str, Instance], pulse_server: PulseServer
) -> None:
    a, c = mesh["a"], mesh["c"]
    r = a.post(f"/peers/{c.uid}/vads", {"name": "From A", "kind": "speaker"})
    assert r.status_code == 201, r.text
    vad = r.json()
    assert vad["peer"] == c.uid
    assert vad["state"] == "ready"
    sink = f"rocd_vad_{vad['uid']}"
    assert sink in pulse_server.pactl("list", "short", "sinks")
    # C lists it as its own; A answers from its mirror of C at once.
    assert vad["uid"] in [v["uid"] for v in c.get("/peers/self/vads").json()]
    assert a.get(f"/peers/{c.uid}/vads/{vad['uid']}").json() == vad
    wait_for(
        "the VAD's device in A's mirror of C",
        lambda: a.get(f"/peers/{c.uid}/devices/pulse%3Asink%3A{sink}").status_code,
        lambda status: status == 200,
    )
    device = a.get(f"/peers/{c.uid}/devices/pulse%3Asink%3A{sink}").json()
    assert device["peer"] == c.uid
    assert device["vad"] == vad["uid"]
    r = a.delete(f"/peers/{c.uid}/vads/{vad['uid']}")
    assert r.status_code == 204, r.text
    assert sink not in pulse_server.pactl("list", "short", "sinks")
    assert a.get(f"/peers/{c.uid}/vads/{vad['uid']}").status_code == 404


async def test_volume_set_on_b_through_c_is_an_event_on_as_websocket(
    mesh: dict[str, Instance],
) -> None:
    a, b, c = mesh["a"], mesh["b"], mesh["c"]
    ws_url = a.url.replace("http://", "ws://") + f"/events?peer={b.uid}&kind=device."
    with trio.fail_after(15):
        async with open_websocket_url(ws_url) as ws, httpx.AsyncClient(timeout=10) as http:
            await trio.sleep(0.2)  # the subscription exists once the handshake is done
            volume = 0.31
            t0 = trio.current_time()
            r = await http.put(f"{c.url}/peers/{b.uid}/devices/tone:sine", json={"volume": volume})
            assert r.status_code == 200, r.text
            assert r.json()["volume"] == volume
            assert r.json()["peer"] == b.uid
            while True:
                event: dict[str, Any] = json.loads(await ws.get_message())
                if event["kind"] == "device.updated" and event["subject"] == "tone:sine":
                    break
            elapsed = trio.current_time() - t0
    assert event["peer"] == b.uid
    assert event["data"]["device"]["volume"] == volume
    assert event["data"]["origin"] == "api"
    assert elapsed < 1.0
    assert b.get("/peers/self/devices/tone:sine").json()["volume"] == volume
    assert a.get(f"/peers/{b.uid}/devices/tone:sine").json()["volume"] == volume


def test_remote_refusals_are_the_same_errors_as_local_ones(mesh: dict[str, Instance]) -> None:
    a, b = mesh["a"], mesh["b"]
    bad = {"name": "x", "kind": "speaker", "driver": "nope"}
    local = b.post("/peers/self/vads", bad)
    remote = a.post(f"/peers/{b.uid}/vads", bad)
    assert local.status_code == remote.status_code == 422
    assert remote.json() == local.json()
    missing = a.put(f"/peers/{b.uid}/devices/file%3Asource%3Anone.wav", {"mute": True})
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    assert a.get(f"/peers/{b.uid}/devices/tone:nothing").status_code == 404
    assert a.get("/peers/0123456789ab/devices").status_code == 404


async def test_a_peer_leaving_and_coming_back_are_events_everywhere(
    mesh: dict[str, Instance],
) -> None:
    a, c = mesh["a"], mesh["c"]
    ws_url = a.url.replace("http://", "ws://") + f"/events?kind=peer.left,peer.joined&peer={a.uid}"
    seen: list[tuple[float, dict[str, Any]]] = []
    with trio.fail_after(30):
        async with open_websocket_url(ws_url) as ws, trio.open_nursery() as nursery:

            async def read() -> None:
                while True:
                    seen.append((trio.current_time(), json.loads(await ws.get_message())))

            nursery.start_soon(read)
            await trio.sleep(0.2)
            assert c.proc is not None
            t0 = trio.current_time()
            c.proc.send_signal(signal.SIGTERM)
            assert await trio.to_thread.run_sync(c.proc.wait) == 0
            await trio.to_thread.run_sync(c.start)
            while len(seen) < 2:  # noqa: ASYNC110  (the reader task fills it)
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    (told, left), (_, joined) = seen[:2]
    assert told - t0 < 1.0  # told by c, not noticed by its silence (3 s)
    assert (left["kind"], left["subject"]) == ("peer.left", c.uid)
    assert left["data"]["reason"] == "the peer said bye: shutting down"
    assert (joined["kind"], joined["subject"]) == ("peer.joined", c.uid)
    assert joined["data"]["name"] == "c"
    assert joined["data"]["address"] == c.address


def test_any_instance_renames_any_other(mesh: dict[str, Instance]) -> None:
    a, b, c = mesh["a"], mesh["b"], mesh["c"]
    r = c.put(f"/peers/{b.uid}", {"name": "Kitchen"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Kitchen"
    assert r.json()["self"] is False
    assert b.get("/peers/self").json()["name"] == "Kitchen"
    wait_for("a hears of it", lambda: a.peer(b)["name"], lambda name: name == "Kitchen")
    assert c.put(f"/peers/{b.uid}", {"name": ""}).status_code == 422


def test_kill_9_is_seen_within_5_s_and_the_mirror_is_reloaded_on_return(
    mesh: dict[str, Instance],
) -> None:
    a, b, c = mesh["a"], mesh["b"], mesh["c"]
    b.kill9()
    t0 = time.monotonic()
    for other in (a, c):
        other.wait_state(b, "offline")
    assert time.monotonic() - t0 < 5.0
    # Reads answer from the mirror, marked stale; writes say the peer is offline.
    stale = a.get(f"/peers/{b.uid}/devices/tone:sine").json()
    assert stale.get("stale") is True, (stale, a.log())
    assert stale["age_s"] > 0
    listing = a.get(f"/peers/{b.uid}/devices").json()
    assert listing["stale"] is True
    r = a.put(f"/peers/{b.uid}/devices/tone:sine", {"volume": 0.5})
    assert r.status_code == 503
    assert b.uid in r.json()["message"]
    assert r.json()["details"] == [{"peer": b.uid}]
    # While it is down its state changes: a new file, a new name. Only a full reload
    # after the restart can show them (no event about them ever reaches A or C).
    (b.state_dir / "files").mkdir(exist_ok=True)
    _write_wav(b.state_dir / "files" / "while-away.wav")
    b.start("--name", "b-again")  # the last --name wins
    for other in (a, c):
        other.wait_state(b, "online", timeout=15)
        assert other.peer(b)["name"] == "b-again"
        ids = [d["id"] for d in other.get(f"/peers/{b.uid}/devices").json()["devices"]]
        assert "file:source:while-away.wav" in ids
        fresh = other.get(f"/peers/{b.uid}/devices/tone:sine").json()
        assert "stale" not in fresh


def _write_wav(path: Path) -> None:
    import numpy as np
    import soundfile

    soundfile.write(path, np.zeros((4800, 2), dtype="float32"), 48000)
