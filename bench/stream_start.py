"""From the REST call to the first audio at the destination, on loopback.

    python -m bench.stream_start [--runs 30] [--profiles lan,default] [--setups one,pair]
                                 [--breakdown]

Daemons (real `rocd serve` processes) on a private PulseAudio; a 44.1 kHz null sink whose
monitor a parec child records in 5 ms blocks. Each run: POST /streams (tone:sine -> the
sink), then the time until the first block holding audio is read from the monitor
(resolution: one block), then DELETE and wait for silence. The figure includes the whole
setup (two-phase, device opened by pacat), the receiver's target latency (it starts
playing once it holds it) and the sound server's buffers.

Setups: `one`, both ends in one daemon; `pair`, a cross-peer stream between two daemons
paired through the cluster on loopback (the POST to A, A's tone to B's sink: every step
of the setup crosses the cluster link). Requests go over one kept-alive HTTP connection
(a new client per request would add its own ~20 ms of set-up to each figure).

`--breakdown` splits each figure with the daemons' own log lines (their times, to the
ms): the POST until the coordinator's "stream ... set up in" line (REST handling and the
two-phase setup, with its steps' times from that line), until the receiver's "session
... playing" line (the sender's first packets, then the receiver filling its target
latency, at the phase of the device's reads), and until the sink's monitor heard it (the
ring in front of pacat, the pipe, the sound server's buffer, the monitor's block).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tests.pulse_server import PulseServer
from tests.streams.cluster import end, instance, mesh
from tests.streams.conftest import NullSink, Rocd, device

BLOCK = 220  # frames: 5 ms at 44.1 kHz
_SET_UP = re.compile(r"^(\S+ \S+) INFO rocd\.streams: stream (\w+) set up in [\d.]+ ms \((.*)\)")
_PLAYING = re.compile(r"^(\S+ \S+) INFO rocd\.net\.roc\.recv: session \w+ playing")


class Monitor:
    """Reads a sink's monitor in blocks; `first_sound_after(t)` = when audio was heard."""

    def __init__(self, server: PulseServer, sink: str) -> None:
        self.proc = subprocess.Popen(
            ["parec", f"--device={sink}.monitor", "--raw", "--format=float32le",
             "--rate=44100", "--channels=2", "--latency-msec=5"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=server.client_env(),
        )  # fmt: skip
        self.loud: list[float] = []  # read times of blocks holding audio
        self.last_read = 0.0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        size = BLOCK * 8
        while block := self.proc.stdout.read(size):
            now = time.monotonic()
            self.last_read = now
            if np.any(np.frombuffer(block, np.float32) != 0):
                self.loud.append(now)

    def first_sound_after(self, start: float, timeout: float = 5.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            heard = [t for t in self.loud if t >= start]
            if heard:
                return heard[0]
            time.sleep(0.002)
        raise RuntimeError("no audio reached the sink")

    def wait_silent(self, seconds: float = 0.3) -> None:
        while True:
            if not self.loud or time.monotonic() - self.loud[-1] > seconds:
                return
            time.sleep(0.05)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Logs:
    """The new lines of daemons' log files since `mark`."""

    def __init__(self, *paths: Path) -> None:
        self.paths = paths
        self._at = [0] * len(paths)

    def mark(self) -> None:
        self._at = [p.stat().st_size for p in self.paths]

    def lines(self) -> list[str]:
        out: list[str] = []
        for path, at in zip(self.paths, self._at, strict=True):
            with path.open("rb") as f:
                f.seek(at)
                out += f.read().decode(errors="replace").splitlines()
        return out


def _log_time(stamp: str) -> float:
    """A log line's time (logging's asctime: local, to the ms) as a Unix time."""
    return datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


class Breakdown:
    """Per run: ms from the POST to the coordinator's set-up line, to the receiver's
    playing line, and to the first audio heard; the set-up steps' own times."""

    def __init__(self, logs: Logs) -> None:
        self.logs = logs
        self.rows: list[dict[str, float]] = []

    def add(self, uid: str, posted_wall: float, heard_ms: float) -> None:
        deadline = time.monotonic() + 2.0
        while True:  # the log lines may be a moment behind the audio
            row: dict[str, float] = {}
            for line in self.logs.lines():
                if (m := _SET_UP.match(line)) and m.group(2) == uid:
                    row["set up"] = 1000 * (_log_time(m.group(1)) - posted_wall)
                    for part in m.group(3).split(", "):
                        step, _, ms = part.rpartition(" ")
                        row[f"  {step}"] = float(ms)
                elif (m := _PLAYING.match(line)) and "playing" not in row:
                    row["playing"] = 1000 * (_log_time(m.group(1)) - posted_wall)
            if ("set up" in row and "playing" in row) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        row["heard"] = heard_ms
        self.rows.append(row)

    def report(self) -> None:
        keys = list(dict.fromkeys(k for row in self.rows for k in row))
        print("    breakdown, ms (p50 / max over the runs; steps are durations, the rest are")
        print("    times after the POST):")
        for key in keys:
            values = sorted(row[key] for row in self.rows if key in row)
            print(f"      {key:22s} {statistics.median(values):7.1f} {values[-1]:7.1f}")


def measure(
    post: Callable[[dict[str, Any]], dict[str, Any]],
    delete: Callable[[str], None],
    monitor: Monitor,
    profile: str,
    runs: int,
    setup: str,
    logs: Logs | None = None,
) -> None:
    latency = {} if profile == "default" else {"latency": {"profile": profile}}
    firsts, answers = [], []
    stream: dict[str, Any] = {}
    breakdown = Breakdown(logs) if logs is not None else None
    for _ in range(runs):
        monitor.wait_silent()
        if logs is not None:
            logs.mark()
        posted_wall = time.time()
        start = time.monotonic()
        stream = post(latency)
        answers.append(time.monotonic() - start)
        firsts.append(monitor.first_sound_after(start) - start)
        if breakdown is not None:
            breakdown.add(stream["uid"], posted_wall, 1000 * firsts[-1])
        delete(stream["uid"])
    target = stream["settings"]["latency"]["target_ms"]
    ms = sorted(1000 * x for x in firsts)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(
        f"  {setup:4s} {profile:8s} (target {target:.0f} ms): first audio p50 "
        f"{statistics.median(ms):.0f} ms, p99 {p99:.0f} ms, max {ms[-1]:.0f} ms; "
        f"POST answered p50 {1000 * statistics.median(answers):.0f} ms"
    )
    if breakdown is not None:
        breakdown.report()


def one_daemon(
    server: PulseServer, root: Path, profiles: list[str], runs: int, breakdown: bool
) -> None:
    rocd = Rocd(root / "one", server)
    try:
        rocd.start()
        sink = NullSink(server, "bench_start")
        rocd.wait_device(sink.device)
        monitor = Monitor(server, sink.name)
        time.sleep(0.5)
        logs = Logs(rocd.log) if breakdown else None
        for profile in profiles:
            measure(
                lambda settings: rocd.create(device("tone:sine"), device(sink.device), **settings),
                rocd.delete, monitor, profile, runs, "one", logs,
            )  # fmt: skip
        monitor.close()
        sink.unload()
    finally:
        rocd.kill()


def daemon_pair(
    server: PulseServer, root: Path, profiles: list[str], runs: int, breakdown: bool
) -> None:
    a, b = instance("a", root / "pair", server), instance("b", root / "pair", server)
    try:
        mesh([a, b])
        sink = NullSink(server, "bench_start_pair")
        time.sleep(1.0)  # b lists the new sink
        monitor = Monitor(server, sink.name)
        time.sleep(0.5)
        http = httpx.Client(base_url=a.url, timeout=15)

        def post(settings: dict[str, Any]) -> dict[str, Any]:
            body = {"source": end(a, "tone:sine"), "destination": end(b, sink.device)}
            r = http.post("/streams", json={**body, "settings": settings})
            assert r.status_code == 201, r.text
            created: dict[str, Any] = r.json()
            return created

        def delete(uid: str) -> None:
            assert http.delete(f"/streams/{uid}").status_code == 204

        logs = Logs(a.log_file, b.log_file) if breakdown else None
        for profile in profiles:
            measure(post, delete, monitor, profile, runs, "pair", logs)
        http.close()
        monitor.close()
        sink.unload()
    finally:
        a.stop()
        b.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--profiles", default="lan,default")
    parser.add_argument("--setups", default="one,pair")
    parser.add_argument("--breakdown", action="store_true", help="split the figures by phase")
    args = parser.parse_args()
    server = PulseServer()
    server.start()
    root = Path(tempfile.mkdtemp(prefix="rocd-bench-"))
    profiles = args.profiles.split(",")
    try:
        print(f"REST call -> first audio at the destination, {args.runs} runs per profile "
              f"(load average {os.getloadavg()[0]:.2f})")  # fmt: skip
        setups = args.setups.split(",")
        if "one" in setups:
            one_daemon(server, root, profiles, args.runs, args.breakdown)
        if "pair" in setups:
            daemon_pair(server, root, profiles, args.runs, args.breakdown)
        print(f"  (load average after: {os.getloadavg()[0]:.2f})")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
