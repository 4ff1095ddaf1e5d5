"""LAN discovery (DNS-SD over mDNS) between hosts in network namespaces on one bridge:
announced instances are listed as discovered, never trusted by themselves, and paired
by uid in one request each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.instances import Instance, free_port, start_all, wait_for

from .topology import sh, topology

pytestmark = pytest.mark.slow

NO_PULSE = '[audio]\npulse = "off"\n[api]\nauth = "none"\n'


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Instance]]:
    root = tmp_path_factory.mktemp("lan")
    with topology() as net:
        bridge = net.ns("L")
        sh("ip", "-n", bridge, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", bridge, "link", "set", "br0", "up")
        nodes: dict[str, Instance] = {}
        for i, name in enumerate("abc", 1):
            ns = net.ns(name.upper())
            addr = f"10.80.{net.octet}.{i}"
            _, on_bridge = net.link(ns, f"{addr}/24", bridge, "")
            sh("ip", "-n", bridge, "link", "set", on_bridge, "master", "br0")
            config = NO_PULSE + ("[cluster]\ndiscovery = false\n" if name == "c" else "")
            nodes[name] = Instance(
                name, root, config, netns=ns, host=addr, api_host=net.manage(ns, i)
            )
        try:
            start_all(list(nodes.values()))
            yield nodes
        finally:
            for node in nodes.values():
                node.stop()


def discovered(one: Instance) -> list[dict[str, Any]]:
    return list(one.get("/peers", params={"state": "discovered"}).json())


def test_instances_on_a_lan_find_each_other_and_pair_by_uid(lan: dict[str, Instance]) -> None:
    a, b, c = lan["a"], lan["b"], lan["c"]
    found, took = wait_for(
        "a discovers b on the LAN",
        lambda: discovered(a),
        lambda peers: any(p["uid"] == b.uid for p in peers),
        timeout=15,
    )
    [entry] = [p for p in found if p["uid"] == b.uid]
    assert entry["state"] == "discovered"
    assert entry["key"] == b.key
    assert entry["fingerprint"] == b.me["fingerprint"]
    assert entry["address"] == b.address
    assert entry["name"] == "b"
    assert entry["version"] == b.me["version"]
    assert entry["role"] is None
    print(f"a discovered b after {took:.2f} s")
    # c has discovery off: it announces nothing and lists nothing.
    wait_for("b discovers a", lambda: discovered(b), lambda p: any(x["uid"] == a.uid for x in p))
    assert c.uid not in [p["uid"] for p in discovered(a) + discovered(b)]
    assert discovered(c) == []
    assert c.get("/cluster").json()["discovery"] is False
    assert a.get("/cluster").json()["discovery"] is True
    # Nothing is trusted by being announced.
    assert a.get(f"/peers/{b.uid}/devices").status_code == 404
    assert [p["state"] for p in a.get("/peers").json() if p["uid"] == b.uid] == ["discovered"]
    # Pairing by uid, one request on each side.
    r = a.post("/peers", {"uid": b.uid})
    assert r.status_code == 201, r.text
    assert r.json()["key"] == b.key
    assert b.post("/peers", {"uid": a.uid, "role": "viewer"}).status_code == 201
    a.wait_state(b, "online", 15)
    b.wait_state(a, "online", 15)
    assert b.uid not in [p["uid"] for p in discovered(a)]
    assert a.get(f"/peers/{b.uid}/devices/tone:sine").status_code == 200
    # An unknown uid is a clear 404, a body with nothing to go on a 422.
    r = a.post("/peers", {"uid": "0123456789ab"})
    assert r.status_code == 404
    assert "discovered" in r.json()["message"]
    assert a.post("/peers", {"role": "viewer"}).status_code == 422


def test_a_trusted_instance_announced_at_a_new_address_is_dialled_there(
    lan: dict[str, Instance],
) -> None:
    """b comes back on another cluster port and cannot dial a (a firewall drops it), so a
    learns where b is only from b's announcement: it dials b there and keeps it."""
    a, b = lan["a"], lan["b"]
    if a.state_of(b) != "online":  # paired by the test above when run alone too
        assert a.post("/peers", {"uid": b.uid}).status_code in (201, 409)
        assert b.post("/peers", {"uid": a.uid}).status_code in (201, 409)
        a.wait_state(b, "online", 15)
    port = a.address.rsplit(":", 1)[1]
    block = ["-p", "tcp", "--dport", port, "-s", b.host, "-j", "DROP"]
    sh("ip", "netns", "exec", a.netns, "iptables", "-I", "INPUT", *block)
    try:
        assert b.stop() == 0
        b.cluster_port = free_port()
        b.start()
        new = f"tcp://{b.host}:{b.cluster_port}"
        assert b.address == new
        wait_for(
            "a dials b where it is announced",
            lambda: (a.state_of(b), a.peer(b).get("address"), a.peer(b).get("route")),
            lambda seen: seen == ("online", new, "direct"),
            timeout=30,
        )
        assert f"now at {new}" in a.log()
    finally:
        sh("ip", "netns", "exec", a.netns, "iptables", "-D", "INPUT", *block)
