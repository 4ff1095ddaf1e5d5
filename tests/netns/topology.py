"""Small networks of namespaces for multi-host tests (needs root): hosts, links, a LAN
bridge, a NAT router, and a management leg from the test's own namespace to each host
(so the test can reach every API without joining the networks under test).

Names carry a tag made from the pid so parallel runs do not collide; `close` deletes
every namespace (and with them their interfaces), also when a test fails.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

#: Interface numbers are unique in the process: the kernel deletes the interfaces of a
#: namespace after `ip netns del` returns, so the next topology must not reuse the names.
_LINK_NUMBERS = itertools.count(1)


def sh(*cmd: str) -> str:
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return done.stdout


class Topology:
    def __init__(self) -> None:
        self.tag = os.getpid() % 10000
        self.namespaces: list[str] = []
        #: A /24 per test run: 10.<80..89>.<tag % 250>.0 is ours, and 10.90.<tag>.x for
        #: the management legs.
        self.octet = self.tag % 250

    def ns(self, name: str) -> str:
        full = f"rocd{name}{self.tag}"
        sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        sh("ip", "-n", full, "link", "set", "lo", "up")
        return full

    def run(self, ns: str, *cmd: str) -> str:
        return sh("ip", "netns", "exec", ns, *cmd)

    def link(self, a: str | None, addr_a: str, b: str | None, addr_b: str) -> tuple[str, str]:
        """A veth pair between namespaces a and b (None: the test's own), addresses in
        CIDR form ("" for none); the two interface names."""
        n = next(_LINK_NUMBERS)
        dev_a, dev_b = f"r{self.tag}a{n}", f"r{self.tag}b{n}"
        sh("ip", "link", "add", dev_a, "type", "veth", "peer", "name", dev_b)
        for ns, dev, addr in ((a, dev_a, addr_a), (b, dev_b, addr_b)):
            prefix = ["-n", ns] if ns else []
            if ns:
                sh("ip", "link", "set", dev, "netns", ns)
            if addr:
                sh("ip", *prefix, "addr", "add", addr, "dev", dev)
            sh("ip", *prefix, "link", "set", dev, "up")
        return dev_a, dev_b

    def manage(self, ns: str, index: int) -> str:
        """A point-to-point leg from the test's namespace to `ns`; the address in `ns`
        (the only route it gets through it is to that leg)."""
        here, there = f"10.90.{self.octet}.{4 * index + 1}", f"10.90.{self.octet}.{4 * index + 2}"
        self.link(None, f"{here}/30", ns, f"{there}/30")
        return there

    def close(self) -> None:
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@contextmanager
def topology() -> Iterator[Topology]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    for tool in ("ip", "iptables"):
        assert shutil.which(tool), f"{tool} is missing: scripts/setup.sh installs it"
    net = Topology()
    try:
        yield net
    finally:
        net.close()
