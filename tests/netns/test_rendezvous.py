"""An instance behind a NAT and one on another network reach each other only through a
rendezvous instance: pairing, asks, replies and events cross the relay; the rendezvous
tells each the address the other's datagrams come from; a forged `src` goes nowhere.

    inner (I) 10.81.t.2 ── NAT router ── 10.82.t.1 | 10.82.t.2  rendezvous (R)  10.83.t.1
                           (MASQUERADE,                                        │
                            FORWARD DROP but                            outer (O) 10.83.t.2
                            inside -> out and
                            established)

I dials out through the NAT (to R only: the router has no route to O's network, and R
does not forward packets); R cannot dial I; O and I cannot dial each other at all. The
test reaches each API over a management leg of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest
import trio
import zmq

from rocd.net.signalling import (
    ActorAddress,
    Ask,
    Connection,
    Hello,
    KeyPair,
    LocalInfo,
    encode,
    encode_value,
)
from tests.client import open_websocket_url
from tests.cluster.instances import Instance, start_all, wait_for

from .topology import Topology, topology

pytestmark = pytest.mark.slow

BASE = '[audio]\npulse = "off"\n[api]\nauth = "none"\n'


class Net:
    def __init__(self, net: Topology, nodes: dict[str, Instance], r_manage: str) -> None:
        self.topology = net
        self.nodes = nodes
        self.r_manage = r_manage  # R's management address (the test dials R there)
        o = net.octet
        self.nat_outside = f"10.82.{o}.1"
        self.r_for_inner = f"10.82.{o}.2"
        self.r_for_outer = f"10.83.{o}.1"


def build(net: Topology, root: Any) -> Net:
    o = net.octet
    inner, nat, rv, outer = net.ns("I"), net.ns("N"), net.ns("R"), net.ns("O")
    _, nat_in = net.link(inner, f"10.81.{o}.2/24", nat, f"10.81.{o}.1/24")
    nat_out, _ = net.link(nat, f"10.82.{o}.1/24", rv, f"10.82.{o}.2/24")
    net.link(rv, f"10.83.{o}.1/24", outer, f"10.83.{o}.2/24")
    net.run(inner, "ip", "route", "add", "default", "via", f"10.81.{o}.1")
    net.run(nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    ipt = ("ip", "netns", "exec", nat, "iptables")
    for rule in (
        ("-t", "nat", "-A", "POSTROUTING", "-o", nat_out, "-j", "MASQUERADE"),
        ("-P", "FORWARD", "DROP"),
        ("-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"),
        ("-A", "FORWARD", "-i", nat_in, "-o", nat_out, "-j", "ACCEPT"),
    ):
        net.run(nat, *ipt[4:], *rule)
    port = 24000 + o  # the rendezvous's TCP listener and UDP probe echo
    quiet = "[cluster]\ndiscovery = false\n"
    nodes = {
        "r": Instance(
            "r",
            root,
            BASE + quiet + f'rendezvous = true\nadvertise = "10.82.{o}.2"\n',
            cluster_port=port,
            netns=rv,
            host="0.0.0.0",
            api_host=(r_manage := net.manage(rv, 1)),
        ),
        "i": Instance(
            "i", root, BASE + quiet, netns=inner, host=f"10.81.{o}.2", api_host=net.manage(inner, 2)
        ),
        "o": Instance(
            "o", root, BASE + quiet, netns=outer, host=f"10.83.{o}.2", api_host=net.manage(outer, 3)
        ),
    }
    return Net(net, nodes, r_manage)


@pytest.fixture(scope="module")
def nat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root = tmp_path_factory.mktemp("nat")
    with topology() as net:
        setup = build(net, root)
        nodes = setup.nodes
        r, i, o = nodes["r"], nodes["i"], nodes["o"]
        try:
            start_all(list(nodes.values()))
            port = r.cluster_port
            for one, where in ((i, setup.r_for_inner), (o, setup.r_for_outer)):
                added = one.post("/peers", {"address": f"{where}:{port}", "key": r.key})
                assert added.status_code == 201, added.text
            for one, other in ((r, i), (r, o), (i, o), (o, i)):
                assert one.pair(other).status_code == 201
            yield setup
        finally:
            for node in nodes.values():
                node.stop()


def peer(one: Instance, other: Instance) -> dict[str, Any]:
    return one.peer(other)


def rtt_ms(one: Instance, other: Instance) -> float | None:
    value = peer(one, other)["rtt_ms"]
    return float(value) if value is not None else None


def test_the_inner_and_the_outer_instance_link_through_the_rendezvous(nat: Net) -> None:
    r, i, o = nat.nodes["r"], nat.nodes["i"], nat.nodes["o"]
    for one, other in ((i, r), (o, r), (r, o), (r, i), (i, o), (o, i)):
        took = one.wait_state(other, "online", 30)
        print(f"{one.name} lists {other.name} online after {took:.1f} s more")
    assert peer(i, r)["route"] == "direct"
    assert peer(r, o)["route"] == "direct"
    # R cannot dial I (behind the NAT): it reaches it back over I's own connection.
    assert peer(r, i)["route"] == "reverse"
    assert peer(r, i)["observed"] == nat.nat_outside
    for one, other in ((i, o), (o, i)):
        info = peer(one, other)
        assert (info["route"], info["relay"]) == ("relay", r.uid), info
        # Heartbeats cross the relay too: the round trip of the relayed link is known.
        rtt, _ = wait_for("a relayed round trip", partial(rtt_ms, one, other), bool)
        assert rtt is not None
        assert 0 < rtt < 1000


def test_the_rendezvous_tells_each_side_the_others_udp_address(nat: Net) -> None:
    r, i, o = nat.nodes["r"], nat.nodes["i"], nat.nodes["o"]
    me, _ = wait_for(
        "i learns its UDP address from r",
        lambda: i.get("/peers/self").json(),
        lambda me: bool(me["observed_udp"]),
    )
    host, _, port = me["observed_udp"].rpartition(":")
    assert host == nat.nat_outside  # the NAT's public side, not I's own address
    assert 0 < int(port) < 65536
    assert peer(r, i)["observed_udp"] == me["observed_udp"]
    wait_for(
        "o hears of i's UDP address through r",
        lambda: peer(o, i)["observed_udp"],
        lambda udp: udp == me["observed_udp"],
    )
    outer, _ = wait_for(
        "o learns its own", lambda: o.get("/peers/self").json()["observed_udp"], bool
    )
    assert outer.startswith(f"{o.host}:")  # no NAT in front of O
    assert wait_for("i hears of o's", lambda: peer(i, o)["observed_udp"], bool)[0] == outer


async def test_asks_and_events_cross_the_relay(nat: Net) -> None:
    i, o = nat.nodes["i"], nat.nodes["o"]
    i.wait_state(o, "online", 30)
    # A VAD made on O through I's API.
    r = i.post(f"/peers/{o.uid}/vads", {"name": "Across", "kind": "speaker", "driver": "tone"})
    assert r.status_code == 201, r.text
    vad = r.json()
    assert vad["peer"] == o.uid
    assert vad["uid"] in [v["uid"] for v in o.get("/peers/self/vads").json()]
    # A change made on O is an event on I's WebSocket within a second.
    ws_url = i.url.replace("http://", "ws://") + f"/events?peer={o.uid}&kind=device."
    with trio.fail_after(15):
        async with open_websocket_url(ws_url) as ws, httpx.AsyncClient(timeout=10) as http:
            await trio.sleep(0.2)
            t0 = trio.current_time()
            put = await http.put(f"{o.url}/peers/self/devices/tone:sine", json={"volume": 0.27})
            assert put.status_code == 200, put.text
            while True:
                event = json.loads(await ws.get_message())
                if event["kind"] == "device.updated" and event["subject"] == "tone:sine":
                    break
            elapsed = trio.current_time() - t0
    assert event["data"]["device"]["volume"] == 0.27
    assert elapsed < 1.0
    # And a change on I made through O's API, the other way round.
    put2 = o.put(f"/peers/{i.uid}/devices/tone:sine", {"volume": 0.61})
    assert put2.status_code == 200, put2.text
    assert i.get("/peers/self/devices/tone:sine").json()["volume"] == 0.61
    assert i.delete(f"/peers/{o.uid}/vads/{vad['uid']}").status_code == 204


async def test_a_forged_src_is_dropped_by_the_rendezvous(nat: Net) -> None:
    r, i, o = nat.nodes["r"], nat.nodes["i"], nat.nodes["o"]
    public, secret = zmq.curve_keypair()
    mallory = KeyPair(public.decode(), secret.decode())
    # R trusts Mallory's key (an instance it paired with, at an address it cannot reach).
    trusted = r.post("/peers", {"address": "tcp://10.9.9.9:9", "key": mallory.public})
    assert trusted.status_code == 201, trusted.text
    before = r.get("/cluster").json()["relay"]["dropped"]
    vads = o.get("/peers/self/vads").json()
    ctx: zmq.Context[Any] = zmq.Context()
    me = LocalInfo(uid="ma11047e0000", name="mallory", software="test", key=mallory.public)
    try:
        async with trio.open_nursery() as nursery:
            conn = Connection(
                ctx,
                mallory,
                address=f"tcp://{nat.r_manage}:{r.cluster_port}",
                server_key=r.key,
                local=me,
            )
            with trio.fail_after(10):
                await nursery.start(conn.run)
            hello = Hello(uid=i.uid, name="i", minor=0, software="x", key=i.key)
            ask = Ask(
                1,
                ActorAddress("audio", o.uid),
                "CreateVad",
                encode_value({"vad": {"name": "forged", "kind": "speaker", "driver": "tone"}}),
                5000,
            )
            for frame in (
                encode(hello, src=i.uid, dst=o.uid, side="d"),  # speaks for I
                encode(ask, src=i.uid, dst=o.uid, side="d"),
                # its own src, but I's key in the hello:
                encode(Hello(me.uid, "m", 0, "x", key=i.key), src=me.uid, dst=o.uid, side="d"),
            ):
                conn.send_raw(frame)
            await trio.sleep(1.0)
            await conn.aclose("done")
    finally:
        ctx.destroy(linger=0)
    dropped = r.get("/cluster").json()["relay"]["dropped"]
    assert dropped.get("forged_src", 0) - before.get("forged_src", 0) == 2
    assert dropped.get("forged_key", 0) - before.get("forged_key", 0) == 1
    assert o.get("/peers/self/vads").json() == vads
    assert "forged" not in json.dumps(o.get("/peers/self/vads").json())


def test_without_the_rendezvous_they_part_and_with_it_back_they_meet_again(nat: Net) -> None:
    r, i, o = nat.nodes["r"], nat.nodes["i"], nat.nodes["o"]
    i.wait_state(o, "online", 30)
    assert r.stop() == 0
    # The links under the relayed one are gone: so is it, at once (no waiting for silence).
    for one, other in ((i, o), (o, i)):
        took = one.wait_state(other, "offline", 5)
        print(f"{one.name} lists {other.name} offline {took:.1f} s after r stopped")
    r.start()
    for one, other in ((i, o), (o, i)):
        took = one.wait_state(other, "online", 30)
        print(f"{one.name} lists {other.name} online again {took:.1f} s later")
        assert one.peer(other)["route"] == "relay"
    put = i.put(f"/peers/{o.uid}/devices/tone:sine", {"volume": 0.8})
    assert put.status_code == 200, put.text
