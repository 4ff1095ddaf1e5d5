"""A cluster of N `rocd serve` processes on this machine (16 by default): how long until
everyone lists everyone online, how long until a kill -9 is seen by all, what each costs.

    python -m bench.cluster16 [--instances 16]

The instances are paired into a full mesh through their APIs (POST /peers both ways for
every pair, all at once); times are measured from the first POST, by polling every
instance's GET /peers every 50 ms. Idle cost is taken over 5 s once the mesh is up
(heartbeats only): RSS and CPU per instance.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import trio

from bench._daemons import Daemon, cpu_seconds, load_average, rss_mib


async def pair_all(daemons: list[Daemon]) -> None:
    async with httpx.AsyncClient(timeout=30) as http, trio.open_nursery() as nursery:

        async def pair(one: Daemon, other: Daemon) -> None:
            r = await http.post(
                f"{one.url}/peers", json={"address": other.address, "key": other.key}
            )
            r.raise_for_status()

        for one in daemons:
            for other in daemons:
                if one is not other:
                    nursery.start_soon(pair, one, other)


async def wait_states(
    watchers: list[Daemon], subject: list[Daemon], state: str, t0: float, limit: float
) -> list[float]:
    """Seconds (from t0) until each watcher lists every subject in `state` (exits after
    `limit` seconds)."""
    keys = {d.key for d in subject}
    done: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        deadline = time.monotonic() + limit
        while len(done) < len(watchers):
            if time.monotonic() > deadline:
                missing = [w.name for w in watchers if w.name not in done]
                raise SystemExit(f"not within {limit:g} s: {missing}")
            for w in watchers:
                if w.name in done:
                    continue
                peers = (await http.get(f"{w.url}/peers")).json()
                states = {p["key"]: p["state"] for p in peers}
                if all(states.get(k) == state for k in keys - {w.key}):
                    done[w.name] = time.monotonic() - t0
            await trio.sleep(0.05)
    return sorted(done.values())


def summary(times: list[float]) -> str:
    return f"max {max(times):6.2f} s  median {statistics.median(times):6.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=16)
    args = parser.parse_args()
    n = args.instances
    print(f"{n} instances; load average before: {load_average()}")
    with tempfile.TemporaryDirectory() as tmp:
        daemons = [Daemon(f"n{i:02d}", Path(tmp)) for i in range(n)]
        try:
            t_start = time.monotonic()
            for d in daemons:
                d.launch()
            for d in daemons:
                d.ready()
            print(f"all {n} serving after {time.monotonic() - t_start:.1f} s")
            t0 = time.monotonic()
            trio.run(pair_all, daemons)
            posted = time.monotonic() - t0
            times = trio.run(wait_states, daemons, daemons, "online", t0, 120.0)
            print(
                f"{n * (n - 1)} POST /peers in {posted:.2f} s; every instance lists all "
                f"{n} online: {summary(times)}"
            )
            time.sleep(1.0)
            cpu0 = {d.name: cpu_seconds(d.proc.pid) for d in daemons if d.proc}
            time.sleep(5.0)
            cpu = [(cpu_seconds(d.proc.pid) - cpu0[d.name]) / 5.0 * 100 for d in daemons if d.proc]
            rss = [rss_mib(d.proc.pid) for d in daemons if d.proc]
            print(
                f"idle, meshed: RSS per instance median {statistics.median(rss):.1f} MiB "
                f"(max {max(rss):.1f}); CPU per instance median {statistics.median(cpu):.2f}% "
                f"(max {max(cpu):.2f}%) of a core"
            )
            victim, others = daemons[0], daemons[1:]
            t_kill = time.monotonic()
            victim.kill9()
            times = trio.run(wait_states, others, [victim], "offline", t_kill, 30.0)
            print(f"kill -9 of one instance seen offline by all {n - 1}: {summary(times)}")
            t_back = time.monotonic()
            victim.launch()
            victim.ready()
            started = time.monotonic() - t_back
            times = trio.run(wait_states, others, [victim], "online", t_back, 60.0)
            print(
                f"restarted (serving after {started:.2f} s), seen online by all: {summary(times)}"
            )
        finally:
            for d in daemons:
                d.stop()
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
