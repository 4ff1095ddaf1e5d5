"""Remote asks through a rendezvous relay, beside the same asks over a direct link.

    python -m bench.cluster_relay [--asks 400]

Three `rocd serve` processes on loopback: R (a rendezvous), A and C. A and C are paired
with R, and with each other at an address where nothing listens, so their link runs
relayed through R. The same device change is made on C through A's API while the link
is relayed, then again once A has C's real address and the link has moved to a direct
one; a change on R through A (one direct hop) and on C through C's own API frame them.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from bench._daemons import Daemon, load_average
from bench.cluster_ask import quantiles, timed


def wait_route(a: Daemon, c: Daemon, route: str, timeout: float = 30.0) -> float:
    t0 = time.monotonic()
    while True:
        peers = httpx.get(f"{a.url}/peers", timeout=10).json()
        now: dict[str, Any] = next((p for p in peers if p["key"] == c.key), {})
        if now.get("state") == "online" and now.get("route") == route:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"{a.name}'s link to {c.name} is not {route}: {now}")
        time.sleep(0.05)


async def measure(a: Daemon, c: Daemon, n: int, label: str) -> list[float]:
    device = "/devices/tone:sine"
    async with httpx.AsyncClient(timeout=10) as http:
        out = await timed(http, "PUT", f"{a.url}/peers/{c.uid}{device}", n, None)
    print(f"PUT device on C, HTTP to A -> C {label}: {quantiles(out)}")
    return out


async def frame(a: Daemon, r: Daemon, c: Daemon, n: int) -> None:
    device = "/devices/tone:sine"
    async with httpx.AsyncClient(timeout=10) as http:
        local = await timed(http, "PUT", f"{c.url}/peers/self{device}", n, None)
        one_hop = await timed(http, "PUT", f"{a.url}/peers/{r.uid}{device}", n, None)
    print(f"PUT device on C, HTTP to C:                     {quantiles(local)}")
    print(f"PUT device on R, HTTP to A -> R (direct):       {quantiles(one_hop)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asks", type=int, default=400)
    args = parser.parse_args()
    print(f"load average before: {load_average()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        r = Daemon("r", root, config='[audio]\npulse = "off"\n[cluster]\nrendezvous = true\n')
        a, c = Daemon("a", root), Daemon("c", root)
        try:
            for d in (r, a, c):
                d.launch()
            for d in (r, a, c):
                d.ready()
            for one, other in ((a, r), (r, a), (c, r), (r, c)):
                body = {"address": other.address, "key": other.key}
                httpx.post(f"{one.url}/peers", json=body).raise_for_status()
            for one, other in ((a, c), (c, a)):
                body = {"address": f"tcp://127.0.0.1:{_free_port()}", "key": other.key}
                httpx.post(f"{one.url}/peers", json=body).raise_for_status()
            print(f"relayed link up in {wait_route(a, c, 'relay'):.2f} s")
            trio.run(frame, a, r, c, args.asks)
            relayed = trio.run(measure, a, c, args.asks, "(relayed by R)")
            body = {"address": c.address, "key": c.key}
            httpx.post(f"{a.url}/peers", json=body).raise_for_status()
            print(f"moved to a direct link in {wait_route(a, c, 'direct'):.2f} s")
            direct = trio.run(measure, a, c, args.asks, "(direct)      ")
            extra = statistics.median(relayed) - statistics.median(direct)
            print(f"  the relay adds (p50): {extra * 1e3:6.3f} ms")
        finally:
            for d in (r, a, c):
                d.stop()
    print(f"load average after: {load_average()}")


def _free_port() -> int:
    """A loopback port nothing listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    main()
