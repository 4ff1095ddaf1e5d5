"""Relayed links and indirect peers, on loopback: A and C trust each other but have
each other's address wrong (nothing listens there), so they link through R, a
rendezvous both are paired with; B is paired with R only, so A and C know it through R.

The real thing (a NAT, networks with no route between them) is in
tests/netns/test_rendezvous.py; here the same code runs fast, without namespaces.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from rocd.actors._peer import DIRECT_RETRY
from tests.client import open_websocket_url

from .instances import Instance, free_port, start_all, wait_for

pytestmark = pytest.mark.slow

NO_PULSE = '[audio]\npulse = "off"\n'


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Instance]]:
    root: Path = tmp_path_factory.mktemp("relay")
    nodes = {
        "r": Instance("r", root, NO_PULSE + "[cluster]\nrendezvous = true\n"),
        "a": Instance("a", root, NO_PULSE),
        "b": Instance("b", root, NO_PULSE),
        "c": Instance("c", root, NO_PULSE),
    }
    r, a, b, c = nodes["r"], nodes["a"], nodes["b"], nodes["c"]
    try:
        start_all(list(nodes.values()))
        for one, other in ((a, r), (r, a), (c, r), (r, c), (b, r), (r, b)):
            assert one.pair(other).status_code == 201
        for one, other in ((a, c), (c, a)):
            nowhere = f"tcp://127.0.0.1:{free_port()}"
            r2 = one.post("/peers", {"address": nowhere, "key": other.key})
            assert r2.status_code == 201
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()


def test_peers_that_cannot_dial_each_other_link_through_the_rendezvous(
    cluster: dict[str, Instance],
) -> None:
    r, a, c = cluster["r"], cluster["a"], cluster["c"]
    took = a.wait_state(c, "online", 20)
    print(f"a lists c online (relayed) after {took:.1f} s")
    c.wait_state(a, "online", 20)
    for one, other in ((a, c), (c, a)):
        info = one.peer(other)
        assert (info["route"], info["relay"]) == ("relay", r.uid)
        assert info["uid"] == other.uid
        assert info["name"] == other.name
    assert a.peer(r)["route"] == "direct"
    # A remote change through the relay, answered with C's own reply.
    put = a.put(f"/peers/{c.uid}/devices/tone:sine", {"volume": 0.42})
    assert put.status_code == 200, put.text
    assert put.json()["peer"] == c.uid
    assert c.get("/peers/self/devices/tone:sine").json()["volume"] == 0.42
    status = r.get("/cluster").json()
    assert status["rendezvous"] is True
    assert status["relay"]["forwarded"] > 0
    assert {a.uid, b_uid(cluster), c.uid} <= set(status["neighbours"])
    assert status["probe"].endswith(f":{r.cluster_port}")
    assert a.get("/cluster").json()["relay"]["forwarded"] == 0  # A relays for no one


def b_uid(cluster: dict[str, Instance]) -> str:
    return cluster["b"].uid


async def test_events_cross_the_relay(cluster: dict[str, Instance]) -> None:
    a, c = cluster["a"], cluster["c"]
    a.wait_state(c, "online", 20)
    ws_url = a.url.replace("http://", "ws://") + f"/events?peer={c.uid}&kind=device."
    with trio.fail_after(15):
        async with open_websocket_url(ws_url) as ws, httpx.AsyncClient(timeout=10) as http:
            await trio.sleep(0.2)
            t0 = trio.current_time()
            r = await http.put(f"{c.url}/peers/self/devices/tone:sine", json={"mute": True})
            assert r.status_code == 200, r.text
            while True:
                event: dict[str, Any] = json.loads(await ws.get_message())
                if event["kind"] == "device.updated" and event["subject"] == "tone:sine":
                    break
            elapsed = trio.current_time() - t0
    assert event["peer"] == c.uid
    assert event["data"]["device"]["mute"] is True
    assert elapsed < 1.0


def test_a_relayed_peer_gets_no_more_than_the_rendezvous_role(
    cluster: dict[str, Instance],
) -> None:
    r, a, c = cluster["r"], cluster["a"], cluster["c"]
    a.wait_state(c, "online", 20)
    # C trusts A as operator, but R only as viewer now: A's requests relayed by R are
    # a viewer's on C.
    assert c.put(f"/peers/{r.uid}/role", {"role": "viewer"}).status_code == 200
    try:
        refused = a.put(f"/peers/{c.uid}/devices/tone:sine", {"volume": 0.5})
        assert refused.status_code == 403, refused.text
        assert "role operator" in refused.json()["message"]
        assert "viewer" in refused.json()["message"]
        assert a.get(f"/peers/{c.uid}/devices/tone:sine").status_code == 200
    finally:
        assert c.put(f"/peers/{r.uid}/role", {"role": "operator"}).status_code == 200
    put = a.put(f"/peers/{c.uid}/devices/tone:sine", {"volume": 0.5})
    assert put.status_code == 200, put.text


def test_instances_known_through_a_peer_are_listed_and_reached_through_it(
    cluster: dict[str, Instance],
) -> None:
    r, a, b = cluster["r"], cluster["a"], cluster["b"]
    r.wait_state(b, "online", 20)
    listed, _ = wait_for(
        "a lists b (through r)",
        lambda: [p for p in a.get("/peers").json() if p["uid"] == b.uid],
        lambda found: bool(found) and found[0]["state"] == "online",
    )
    [entry] = listed
    assert entry["via"] == r.uid
    assert entry["role"] is None  # not trusted here
    assert entry["key"] == b.key
    assert a.get(f"/peers/{b.uid}").json()["via"] == r.uid
    # Not trusted, so not revocable either; reached through R with R's role on B.
    assert a.delete(f"/peers/{b.uid}").status_code == 404
    assert a.get(f"/peers/{b.uid}/devices/tone:sine").json()["peer"] == b.uid
    put = a.put(f"/peers/{b.uid}/devices/tone:sine", {"volume": 0.33})
    assert put.status_code == 200, put.text
    assert b.get("/peers/self/devices/tone:sine").json()["volume"] == 0.33
    assert b.put(f"/peers/{r.uid}/role", {"role": "viewer"}).status_code == 200
    try:
        refused = a.put(f"/peers/{b.uid}/devices/tone:sine", {"volume": 0.2})
        assert refused.status_code == 403, refused.text
        assert "viewer" in refused.json()["message"]
    finally:
        assert b.put(f"/peers/{r.uid}/role", {"role": "operator"}).status_code == 200
    # A viewer on R cannot make R act for it at all.
    assert r.put(f"/peers/{a.uid}/role", {"role": "viewer"}).status_code == 200
    try:
        refused = a.put(f"/peers/{b.uid}/devices/tone:sine", {"volume": 0.2})
        assert refused.status_code == 403, refused.text
    finally:
        assert r.put(f"/peers/{a.uid}/role", {"role": "operator"}).status_code == 200


def test_a_direct_link_replaces_the_relay_once_it_works(cluster: dict[str, Instance]) -> None:
    a, c = cluster["a"], cluster["c"]
    a.wait_state(c, "online", 20)
    assert a.peer(c)["route"] == "relay"
    # A learns C's real address: the next direct dial gets through, and the link moves.
    assert a.post("/peers", {"address": c.address, "key": c.key}).status_code == 201
    _, took = wait_for(
        "a's link to c goes direct",
        lambda: a.peer(c)["route"],
        lambda route: route == "direct",
        timeout=DIRECT_RETRY + 10,
    )
    print(f"direct after {took:.1f} s")
    assert a.state_of(c) == "online"
    assert f"peer c ({c.uid}) offline" not in a.log()  # it moved; it never left
    put = a.put(f"/peers/{c.uid}/devices/tone:sine", {"volume": 0.7})
    assert put.status_code == 200, put.text
