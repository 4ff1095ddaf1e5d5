"""HTTP API throughput and latency, and the daemon's memory, against a real `rocd serve`.

    python -m bench.api [--seconds 5] [--clients 8]

Starts the daemon as a child process (state in a temporary directory, API on a free
port), measures its idle RSS, then has N concurrent keep-alive clients hammer three
routes (GET /health, GET /peers/self, PUT /peers/self) and prints requests/s with the
latency percentiles of each, and the RSS after the load.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_daemon(state_dir: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rocd.cli",
            "serve",
            "--state-dir",
            state_dir,
            "--api",
            "127.0.0.1:0",
            "--cluster",
            "127.0.0.1:0",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(r"serving (http://\S+), state in", line)
        if match:
            return proc, match.group(1)
    raise SystemExit(f"rocd did not start (exit {proc.wait()})")


async def load(url: str, method: str, path: str, seconds: float, clients: int) -> list[float]:
    latencies: list[float] = []
    deadline = trio.current_time() + seconds

    async def client(i: int) -> None:
        async with httpx.AsyncClient(base_url=url) as http:
            n = 0
            while trio.current_time() < deadline:
                t0 = time.perf_counter()
                if method == "PUT":
                    r = await http.put(path, json={"name": f"bench-{i}-{n}"})
                else:
                    r = await http.get(path)
                latencies.append(time.perf_counter() - t0)
                r.raise_for_status()
                n += 1

    async with trio.open_nursery() as nursery:
        for i in range(clients):
            nursery.start_soon(client, i)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        proc, url = start_daemon(state)
        try:
            time.sleep(1.0)
            print(f"rocd at {url}: idle RSS {rss_mib(proc.pid):.1f} MiB")
            for method, path in (
                ("GET", "/health"),
                ("GET", "/peers/self"),
                ("PUT", "/peers/self"),
            ):
                lat = trio.run(load, url, method, path, args.seconds, args.clients)
                q = statistics.quantiles(lat, n=100)
                print(
                    f"{method:4} {path:12} {len(lat) / args.seconds:8.0f} req/s  "
                    f"p50 {q[49] * 1e3:6.2f} ms  p99 {q[98] * 1e3:6.2f} ms  "
                    f"({args.clients} clients, {args.seconds:g} s)"
                )
            print(f"RSS after load {rss_mib(proc.pid):.1f} MiB")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
