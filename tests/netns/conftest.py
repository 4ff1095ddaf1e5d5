"""Two hosts on one machine: network namespaces joined by a veth pair (needs root).

Host A (10.77.x.1) sends, host B (10.77.x.2) receives; tests add iptables rules in B for
loss. Namespace names carry the pid so parallel runs do not collide; everything is
deleted at the end, also when a test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Hosts:
    a: str  # namespace names
    b: str
    addr_a: str
    addr_b: str

    def run(self, ns: str, *cmd: str) -> list[str]:
        """The argv that runs `cmd` inside namespace `ns`."""
        return ["ip", "netns", "exec", ns, *cmd]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    for tool in ("ip", "iptables"):
        assert shutil.which(tool), f"{tool} is missing: scripts/setup.sh installs it"
    tag = os.getpid() % 10000
    subnet = f"10.77.{tag % 250}"
    h = Hosts(f"rocdA{tag}", f"rocdB{tag}", f"{subnet}.1", f"{subnet}.2")
    try:
        _ip("netns", "add", h.a)
        _ip("netns", "add", h.b)
        _ip("link", "add", f"va{tag}", "type", "veth", "peer", "name", f"vb{tag}")
        _ip("link", "set", f"va{tag}", "netns", h.a)
        _ip("link", "set", f"vb{tag}", "netns", h.b)
        for ns, dev, addr in ((h.a, f"va{tag}", h.addr_a), (h.b, f"vb{tag}", h.addr_b)):
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)
        yield h
    finally:
        for ns in (h.a, h.b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
