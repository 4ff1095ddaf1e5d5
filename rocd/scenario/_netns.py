"""Small networks of namespaces on one machine (needs root): hosts, veth links, a LAN
bridge, NAT routers, and a management leg from the caller's own namespace to each host
(so it reaches every API without joining the networks it builds).

Names carry a tag made from the pid so parallel runs do not collide; `close` deletes
every namespace (and with them their interfaces and iptables rules), also after a
failure. Used by the scenario runner and by the multi-host tests.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time

__all__ = ["NetnsError", "Topology", "check_netns", "sh"]

#: Interface numbers are unique in the process: the kernel deletes the interfaces of a
#: namespace after `ip netns del` returns, so the next topology must not reuse the names.
_LINK_NUMBERS = itertools.count(1)
#: Seconds `close` waits for the kernel to remove the caller's ends of the legs.
_GONE_S = 10.0


class NetnsError(RuntimeError):
    """Namespaces cannot be made here (not root, a tool missing), or a command failed."""


def check_netns() -> None:
    """NetnsError saying why namespaces cannot be made here, if they cannot."""
    if os.geteuid() != 0:
        raise NetnsError("network namespaces need root (run as root, or drop netns from the nodes)")
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            raise NetnsError(f"{tool} is missing (apt-get install iproute2 iptables)")


def sh(*cmd: str) -> str:
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise NetnsError(f"{' '.join(cmd)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


class Topology:
    def __init__(self, tag: int | None = None) -> None:
        self.tag = (os.getpid() if tag is None else tag) % 10000
        self.namespaces: list[str] = []
        self._here: list[str] = []  # interfaces in the caller's namespace (legs)
        #: A /24 per run: 10.<80..89>.<tag % 250>.0 is ours, and 10.90.<tag>.x for the
        #: management legs.
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
        """A veth pair between namespaces a and b (None: the caller's own), addresses in
        CIDR form ("" for none); the two interface names."""
        n = next(_LINK_NUMBERS)
        dev_a, dev_b = f"r{self.tag}a{n}", f"r{self.tag}b{n}"
        sh("ip", "link", "add", dev_a, "type", "veth", "peer", "name", dev_b)
        self._here += [dev for ns, dev in ((a, dev_a), (b, dev_b)) if ns is None]
        for ns, dev, addr in ((a, dev_a, addr_a), (b, dev_b, addr_b)):
            prefix = ["-n", ns] if ns else []
            if ns:
                sh("ip", "link", "set", dev, "netns", ns)
            if addr:
                sh("ip", *prefix, "addr", "add", addr, "dev", dev)
            sh("ip", *prefix, "link", "set", dev, "up")
        return dev_a, dev_b

    def bridge(self, ns: str) -> str:
        """A bridge in namespace `ns` (a LAN switch); its name."""
        sh("ip", "-n", ns, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", ns, "link", "set", "br0", "up")
        return "br0"

    def plug(self, switch: str, ns: str, addr: str) -> str:
        """A host `ns` on the bridge of namespace `switch` at `addr` (CIDR); the host's
        interface name."""
        port, dev = self.link(switch, "", ns, addr)
        sh("ip", "-n", switch, "link", "set", port, "master", "br0")
        return dev

    def nat(self, router: str, inside: str, outside: str) -> None:
        """Make `router` a NAT from interface `inside` to `outside`: masquerade, and a
        firewall that lets only replies in."""
        self.run(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for rule in (
            ("-t", "nat", "-A", "POSTROUTING", "-o", outside, "-j", "MASQUERADE"),
            ("-P", "FORWARD", "DROP"),
            (
                "-A",
                "FORWARD",
                "-m",
                "conntrack",
                "--ctstate",
                "ESTABLISHED,RELATED",
                "-j",
                "ACCEPT",
            ),
            ("-A", "FORWARD", "-i", inside, "-o", outside, "-j", "ACCEPT"),
        ):
            self.run(router, "iptables", *rule)

    def manage(self, ns: str, index: int) -> str:
        """A point-to-point leg from the caller's namespace to `ns`; the address in `ns`
        (the only route it gets through it is to that leg)."""
        here, there = f"10.90.{self.octet}.{4 * index + 1}", f"10.90.{self.octet}.{4 * index + 2}"
        self.link(None, f"{here}/30", ns, f"{there}/30")
        return there

    def close(self) -> None:
        """Delete every namespace, and wait (up to 10 s) until the kernel has removed the
        legs' ends in the caller's namespace: it does so after `ip netns del` returns,
        and the next topology of this process gives its legs the same addresses (an old
        leg still there would take their traffic: connections refused)."""
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self.namespaces.clear()
        deadline = time.monotonic() + _GONE_S
        while self._here and time.monotonic() < deadline:
            self._here = [dev for dev in self._here if _exists(dev)]
            if self._here:
                time.sleep(0.05)
        self._here.clear()


def _exists(dev: str) -> bool:
    """Whether interface `dev` is in the caller's namespace."""
    return os.path.exists(f"/sys/class/net/{dev}")
