"""Trust between instances run as separate processes: unknown keys are refused at the
handshake and counted, invites set trust up both ways, roles limit what a peer may do,
revocation disconnects, and all of it survives a restart."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.client import open_websocket_url

from .instances import Instance, start_all, wait_for

pytestmark = pytest.mark.slow

NO_PULSE = '[audio]\npulse = "off"\n'


@pytest.fixture(scope="module")
def trio_of(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Instance]]:
    """A (the cluster so far) and D (a stranger to it), running; E is started by a test."""
    root = tmp_path_factory.mktemp("trust")
    nodes = {name: Instance(name, root, NO_PULSE) for name in ("a", "d", "e")}
    try:
        start_all([nodes["a"], nodes["d"]])
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()


def refused_entry(one: Instance, other: Instance) -> dict[str, Any]:
    for info in one.get("/peers", params={"state": "refused"}).json():
        if info["key"] == other.key:
            return dict(info)
    return {}


async def test_an_unknown_key_is_refused_at_the_handshake_and_counted(
    trio_of: dict[str, Instance],
) -> None:
    a, d = trio_of["a"], trio_of["d"]
    ws_url = a.url.replace("http://", "ws://") + "/events?kind=peer.refused"
    with trio.fail_after(20):
        async with open_websocket_url(ws_url) as ws:
            await trio.sleep(0.2)
            async with httpx.AsyncClient(timeout=10) as http:
                r = await http.post(f"{d.url}/peers", json={"address": a.address, "key": a.key})
            assert r.status_code == 201, r.text
            event: dict[str, Any] = json.loads(await ws.get_message())
    assert event["kind"] == "peer.refused"
    assert event["peer"] == a.uid
    assert event["data"]["fingerprint"] == d.me["fingerprint"]
    assert event["data"]["address"] == "127.0.0.1"
    assert event["data"]["reason"] == "unknown key"
    entry = refused_entry(a, d)
    assert entry["state"] == "refused"
    assert entry["fingerprint"] == d.me["fingerprint"]
    assert re.fullmatch(r"unknown key \(refused \d+ times\)", entry["reason"])
    assert entry["uid"] == ""  # it never got to say who it is
    # D knows A only as a peer it cannot reach.
    assert d.state_of(a) == "offline"
    # Once A trusts D back, both links come up at once.
    assert a.pair(d).status_code == 201
    _, took = wait_for(
        "a and d online both ways",
        lambda: (a.state_of(d), d.state_of(a)),
        lambda states: states == ("online", "online"),
    )
    assert took < 3.0
    assert refused_entry(a, d) == {}


def test_revoking_trust_disconnects_at_once(trio_of: dict[str, Instance]) -> None:
    a, d = trio_of["a"], trio_of["d"]
    assert a.delete(f"/peers/{d.uid}").status_code == 204
    assert d.wait_state(a, "offline") < 2.0
    assert "trust revoked" in d.peer(a)["reason"]
    assert a.peer(d).get("state") in (None, "refused")  # it keeps dialling: refused
    assert a.delete(f"/peers/{d.uid}").status_code == 404
    assert a.delete("/peers/self").status_code == 409
    # D forgets A too.
    assert d.delete(f"/peers/{a.me['fingerprint']}").status_code == 204
    assert d.peer(a) == {}


def test_an_invite_sets_up_trust_both_ways_once(trio_of: dict[str, Instance]) -> None:
    a, d, e = trio_of["a"], trio_of["d"], trio_of["e"]
    r = a.post("/cluster/invites", {"role": "viewer", "ttl_s": 120})
    assert r.status_code == 201, r.text
    invite = r.json()
    assert invite["token"].startswith("rocd1-")
    assert invite["role"] == "viewer"
    e.start("--join", invite["token"])
    for one, other in ((a, e), (e, a)):
        one.wait_state(other, "online")
        assert one.peer(other)["role"] == "viewer"
    # The token was for one instance only; the joiner is told so (A has no invite open
    # now, so it refuses D's key at the handshake, before any token is shown).
    r = d.post("/cluster/join", {"token": invite["token"]})
    assert r.status_code == 403, r.text
    assert "join refused" in r.json()["message"]
    assert "the join token is unknown, used or expired" in r.json()["message"]
    assert d.peer(a) == {}  # nothing kept of a refused join
    # So is an invite that expired.
    expiring = a.post("/cluster/invites", {"ttl_s": 1}).json()["token"]
    time.sleep(1.2)
    r = d.post("/cluster/join", {"token": expiring})
    assert r.status_code == 403, r.text
    assert "the join token is unknown, used or expired" in r.json()["message"]
    assert d.peer(a) == {}
    bad = d.post("/cluster/join", {"token": "rocd1-garbage"})
    assert bad.status_code == 422
    assert bad.json()["details"][0]["field"] == "token"
    own = a.post("/cluster/join", {"token": invite["token"]})
    assert own.status_code == 422
    # A new invite, used through the API this time.
    token = a.post("/cluster/invites", {}).json()["token"]
    r = d.post("/cluster/join", {"token": token})
    assert r.status_code == 201, r.text
    assert r.json()["uid"] == a.uid
    assert r.json()["state"] == "online"
    assert r.json()["role"] == "operator"
    again = d.post("/cluster/join", {"token": token})
    assert again.status_code == 409


def test_a_viewer_reads_but_cannot_write(trio_of: dict[str, Instance]) -> None:
    a, e = trio_of["a"], trio_of["e"]
    vad = {"name": "Nope", "kind": "speaker", "driver": "tone"}
    r = e.post(f"/peers/{a.uid}/vads", vad)
    assert r.status_code == 403, r.text
    assert r.json()["details"][0]["required"] == "operator"
    assert r.json()["details"][0]["role"] == "viewer"
    assert "needs role operator" in r.json()["message"]
    r = a.post(f"/peers/{e.uid}/vads", vad)
    assert r.status_code == 403
    assert e.get(f"/peers/{a.uid}/devices").status_code == 200
    assert a.get(f"/peers/{e.uid}/vads").json() == []
    # A raises E to operator: E may now make a VAD on A.
    r = a.put(f"/peers/{e.uid}/role", {"role": "operator"})
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "operator"
    r = e.post(f"/peers/{a.uid}/vads", vad)
    assert r.status_code == 201, r.text
    assert r.json()["peer"] == a.uid
    assert e.delete(f"/peers/{a.uid}/vads/{r.json()['uid']}").status_code == 204
    assert a.put(f"/peers/{e.uid}/role", {"role": "root"}).status_code == 422


def test_trust_and_roles_survive_a_restart(trio_of: dict[str, Instance]) -> None:
    a, e = trio_of["a"], trio_of["e"]
    assert a.stop() == 0
    # A said goodbye: E knows at once, without waiting for silence.
    assert e.state_of(a) == "offline"
    assert "shutting down" in e.peer(a)["reason"]
    a.start()
    wait_for(
        "e and a online again",
        lambda: (a.state_of(e), e.state_of(a)),
        lambda s: s == ("online", "online"),
        timeout=15,
    )
    assert a.peer(e)["role"] == "operator"
    assert a.peer(e)["name"] == "e"


def test_static_peers_from_the_configuration(tmp_path: Path) -> None:
    f, g = Instance("f", tmp_path, NO_PULSE), Instance("g", tmp_path, NO_PULSE)
    try:
        start_all([f, g])  # a first start makes their keys
        for one in (f, g):
            assert one.stop() == 0
        f.config = NO_PULSE + static_peer(g, "viewer")
        g.config = NO_PULSE + static_peer(f, "admin")
        start_all([f, g])
        f.wait_state(g, "online")
        g.wait_state(f, "online")
        assert f.peer(g)["role"] == "viewer"
        assert g.peer(f)["role"] == "admin"
        r = f.delete(f"/peers/{g.uid}")
        assert r.status_code == 409
        assert "configuration file" in r.json()["message"]
    finally:
        f.stop()
        g.stop()


def static_peer(other: Instance, role: str) -> str:
    return (
        f'[cluster]\npeers = [{{address = "{other.address}", key = "{other.key}", '
        f'role = "{role}"}}]\n'
    )
