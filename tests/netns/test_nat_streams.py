"""Streams between hosts (network namespaces) paired through the cluster, one of them
behind a NAT, with real audio recorded from PulseAudio null sinks:

    I 10.84.t.2 ── NAT (10.84.t.1 | 10.85.t.1) ── 10.85.t.2  R  10.86.t.1 ── 10.86.t.2 O
                   MASQUERADE; forwards only           (rendezvous and hub,
                   inside -> out and replies            routes between the two)

I dials O and R; nothing dials I. Each stream is set up with one call and played sample
for sample (FEC repairs what the kernel drops):
- I's file to O's sink: I reaches O directly; 5% of O's incoming UDP dropped (iptables);
- O's file to I's sink: O cannot reach I. I's sockets punch a hole towards O through the
  NAT and O sends straight through it (`punched`);
- the same once the NAT drops all UDP between I and O: the audio crosses R's relay (`hub`).

The daemons share the test session's PulseAudio (its unix socket reaches every
namespace); the test reaches each API over a management leg of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.instances import Instance, start_all, wait_for
from tests.e2e.signals import assert_exact_stream, tone_windows, whole_fec_blocks
from tests.pulse_server import PulseServer
from tests.streams.cluster import (
    after_lead,
    create,
    end,
    files_of,
    instance,
    stream_of,
    wait_stream,
    with_lead,
)
from tests.streams.conftest import (
    EXACT,
    LOSSY,
    Frames,
    NullSink,
    Recorder,
    l16_noise,
    whole_packets,
    write_wav,
)

from .topology import Topology, topology

pytestmark = pytest.mark.slow

NOISE = l16_noise(2.0, seed=41)
API = '[api]\nauth = "none"\n'


class Net:
    def __init__(self, net: Topology, nat: str, nodes: dict[str, Instance], pulse: PulseServer):
        self.topology, self.nat, self.nodes, self.pulse = net, nat, nodes, pulse
        self.o_host = f"10.86.{net.octet}.2"


def build(net: Topology, root: Path, pulse: PulseServer) -> Net:
    o = net.octet
    inner, nat, rv, outer = net.ns("I"), net.ns("N"), net.ns("R"), net.ns("O")
    _, nat_in = net.link(inner, f"10.84.{o}.2/24", nat, f"10.84.{o}.1/24")
    nat_out, _ = net.link(nat, f"10.85.{o}.1/24", rv, f"10.85.{o}.2/24")
    net.link(rv, f"10.86.{o}.1/24", outer, f"10.86.{o}.2/24")
    net.run(inner, "ip", "route", "add", "default", "via", f"10.84.{o}.1")
    net.run(nat, "ip", "route", "add", "default", "via", f"10.85.{o}.2")
    net.run(outer, "ip", "route", "add", "default", "via", f"10.86.{o}.1")
    for ns in (nat, rv):
        net.run(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    for rule in (
        ("-t", "nat", "-A", "POSTROUTING", "-o", nat_out, "-j", "MASQUERADE"),
        ("-P", "FORWARD", "DROP"),
        ("-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"),
        ("-A", "FORWARD", "-i", nat_in, "-o", nat_out, "-j", "ACCEPT"),
    ):
        net.run(nat, "iptables", *rule)
    port = 25000 + o
    nodes = {
        "r": instance(
            "r", root, pulse, extra=API, cluster_port=port, netns=rv, host="0.0.0.0",
            api_host=net.manage(rv, 1),
        ),
        "i": instance(
            "i", root, pulse, extra=API, netns=inner, host=f"10.84.{o}.2",
            api_host=net.manage(inner, 2),
        ),
        "o": instance(
            "o", root, pulse, extra=API, netns=outer, host=f"10.86.{o}.2",
            api_host=net.manage(outer, 3),
        ),
    }  # fmt: skip
    nodes["r"].config += f'rendezvous = true\nadvertise = "10.85.{o}.2"\n'
    return Net(net, nat, nodes, pulse)


@pytest.fixture(scope="module")
def nat(pulse_server: PulseServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root = tmp_path_factory.mktemp("nat-streams")
    with topology() as net:
        setup = build(net, root, pulse_server)
        r, i, o = (setup.nodes[n] for n in "rio")
        for node in (i, o):
            write_wav(files_of(node) / "noise.wav", with_lead(NOISE))
        try:
            start_all([r, i, o])
            octet = net.octet
            for one, where in ((i, f"10.85.{octet}.2"), (o, f"10.86.{octet}.1")):
                added = one.post("/peers", {"address": f"{where}:{r.cluster_port}", "key": r.key})
                assert added.status_code == 201, added.text
            for one, other in ((r, i), (r, o), (i, o), (o, i)):
                assert one.pair(other).status_code == 201
            for one, other in ((i, r), (o, r), (r, i), (r, o), (i, o), (o, i)):
                one.wait_state(other, "online", 30)
            # I's first dial of O came before O trusted it: relayed through R until its
            # next direct dial (every 5 s) gets through.
            wait_for("i links o directly", lambda: i.peer(o)["route"], "direct".__eq__, 15)
            # ...and o follows: its link to i moves from the relay to i's connection.
            wait_for("o links i over i's connection", lambda: o.peer(i)["route"],
                     "reverse".__eq__, 15)  # fmt: skip
            yield setup
        finally:
            for node in (r, i, o):
                node.stop()


def play(
    net: Net,
    coordinator: Instance,
    source: Instance,
    destination: Instance,
    tmp_path: Path,
    name: str,
    settings: dict[str, Any],
    before_delete: Callable[[], None] = lambda: None,
) -> tuple[Frames, dict[str, Any]]:
    """noise.wav on `source` to a new sink played by `destination`: what the sink played,
    and the stream (its ends, and the receiver's metrics) as it ended."""
    sink = NullSink(net.pulse, name)
    try:
        wait_for(
            f"{destination.name} lists {name}",
            lambda: [d["id"] for d in destination.get("/peers/self/devices").json()["devices"]],
            lambda ids: sink.device in ids,
        )
        recorder = Recorder(net.pulse, sink.name, tmp_path / f"{name}.raw")
        stream = create(
            coordinator, end(source, "file:source:noise.wav"), end(destination, sink.device),
            **settings,
        )  # fmt: skip
        uid = stream["uid"]
        wait_stream(coordinator, uid, "stopped", timeout=20)
        time.sleep(0.6)
        shown = stream_of(coordinator, uid)
        metrics = coordinator.get(f"/streams/{uid}/metrics").json()
        got = recorder.stop()
        before_delete()
        assert coordinator.delete(f"/streams/{uid}").status_code == 204
    finally:
        sink.unload()
    shown["metrics"] = metrics
    return got, shown


def sender_path(stream: dict[str, Any]) -> str:
    (sender,) = [e for e in stream["ends"] if e["role"] == "sender"]
    return str(sender["path"])


def receiver_metrics(stream: dict[str, Any]) -> dict[str, Any]:
    (m,) = [e for e in stream["metrics"]["ends"] if e["role"] == "receiver"]
    return dict(m["receiver"])


def test_the_instance_behind_the_nat_reaches_out_and_nothing_reaches_in(nat: Net) -> None:
    r, i, o = (nat.nodes[n] for n in "rio")
    assert i.peer(o)["route"] == "direct"
    assert o.peer(i)["route"] == "reverse"  # back over the connection I made
    assert r.peer(i)["route"] == "reverse"
    udp, _ = wait_for(
        "i learns its UDP mapping", lambda: i.get("/peers/self").json()["observed_udp"], bool
    )
    assert udp.startswith(f"10.85.{nat.topology.octet}.1:")  # the NAT's outside


def test_out_of_the_nat_directly_through_5_percent_loss(nat: Net, tmp_path: Path) -> None:
    i, o = nat.nodes["i"], nat.nodes["o"]
    ns = nat.topology.namespaces[3]  # O's
    rule = ("INPUT", "-p", "udp", "-m", "statistic", "--mode", "random",
            "--probability", "0.05", "-j", "DROP")  # fmt: skip
    nat.topology.run(ns, "iptables", "-A", *rule)
    try:
        got, stream = play(nat, i, i, o, tmp_path, "nat_to_o", LOSSY)
    finally:
        nat.topology.run(ns, "iptables", "-D", *rule)
    assert sender_path(stream) == "direct"
    received = receiver_metrics(stream)
    assert received["packetsLost"] > 0, received  # the kernel did drop packets
    assert received["recovered_packets"] > 0, received
    assert_exact_stream(
        after_lead(whole_fec_blocks(with_lead(NOISE))), got, expected_delay_s=(0.0, 30.0)
    )


def test_into_the_nat_through_a_punched_hole(nat: Net, tmp_path: Path) -> None:
    i, o = nat.nodes["i"], nat.nodes["o"]
    got, stream = play(nat, o, o, i, tmp_path, "nat_punched", EXACT)
    assert sender_path(stream) == "punched"
    assert_exact_stream(
        after_lead(whole_packets(with_lead(NOISE))), got, expected_delay_s=(0.0, 30.0)
    )


def test_into_the_nat_through_the_hub_when_no_hole_can_be_punched(nat: Net, tmp_path: Path) -> None:
    r, i, o = (nat.nodes[n] for n in "rio")
    rules = [("FORWARD", "-p", "udp", way, nat.o_host, "-j", "DROP") for way in ("-s", "-d")]
    for rule in rules:
        nat.topology.run(nat.nat, "iptables", "-I", *rule)
    relayed: dict[str, float] = {}
    try:
        # Set up from the rendezvous itself, a third instance.
        got, stream = play(
            nat, r, o, i, tmp_path, "nat_hub", EXACT, lambda: relayed.update(hub_metrics(r))
        )
    finally:
        for rule in rules:
            nat.topology.run(nat.nat, "iptables", "-D", *rule)
    assert sender_path(stream) == "hub"
    assert_exact_stream(
        after_lead(whole_packets(with_lead(NOISE))), got, expected_delay_s=(0.0, 30.0)
    )
    print(f"the hub's relay: {relayed}")
    assert relayed["rocd_hub_relays"] == 1
    assert relayed["to_receiver"] >= 400  # the 2 s of source packets, and their repair
    assert relayed["to_sender"] >= 5  # the receiver's reports
    # Given back when the stream was deleted.
    assert hub_metrics(r)["rocd_hub_relays"] == 0


def hub_metrics(node: Instance) -> dict[str, float]:
    families = {f.name: f for f in text_string_to_metric_families(node.get("/metrics").text)}
    out = {"rocd_hub_relays": families["rocd_hub_relays"].samples[0].value}
    for sample in families["rocd_hub_relay_datagrams"].samples:
        if sample.name.endswith("_total"):
            out[sample.labels["direction"]] = sample.value
    return out


def test_a_stream_through_the_hub_goes_on_when_the_hub_restarts(nat: Net, tmp_path: Path) -> None:
    """The hub keeps its relays in its state file and opens them again at their ports:
    both ends keep registering (every 5 s) and sending there, so the audio comes back
    with nothing set up again. (Last in the module: R restarts.)"""
    r, i, o = (nat.nodes[n] for n in "rio")
    rules = [("FORWARD", "-p", "udp", way, nat.o_host, "-j", "DROP") for way in ("-s", "-d")]
    for rule in rules:
        nat.topology.run(nat.nat, "iptables", "-I", *rule)
    sink = NullSink(nat.pulse, "hub_restart")
    try:
        wait_for(
            "i lists the sink",
            lambda: [d["id"] for d in i.get("/peers/self/devices").json()["devices"]],
            lambda ids: sink.device in ids,
        )
        uid = create(o, end(o, "tone:sine"), end(i, sink.device))["uid"]
        wait_stream(o, uid, "active", timeout=20)
        assert sender_path(stream_of(o, uid)) == "hub"
        assert tone_share(nat, tmp_path / "before.raw") >= 0.95

        assert r.stop() == 0
        r.start()
        for one in (i, o):
            one.wait_state(r, "online", 30)
        time.sleep(6)  # the ends' next registrations (every 5 s)
        assert tone_share(nat, tmp_path / "after.raw") >= 0.95
        assert "reopened on its ports" in r.log()
        assert hub_metrics(r)["rocd_hub_relays"] == 1
        wait_stream(o, uid, "active", timeout=10)
        assert o.delete(f"/streams/{uid}").status_code == 204
        relays = lambda: hub_metrics(r)["rocd_hub_relays"]  # noqa: E731
        wait_for("the relay given back", relays, lambda n: n == 0)
    finally:
        sink.unload()
        for rule in rules:
            nat.topology.run(nat.nat, "iptables", "-D", *rule)


def tone_share(net: Net, path: Path) -> float:
    """The share of 10 ms windows of 2 s of the hub_restart sink that hold the tone."""
    recorder = Recorder(net.pulse, "hub_restart", path)
    time.sleep(2.0)
    return float(tone_windows(recorder.stop()).mean())
