"""From the REST call to the first audio at the destination, on loopback.

    python -m bench.stream_start [--runs 30] [--profiles lan,default] [--setups one,pair]

Daemons (real `rocd serve` processes) on a private PulseAudio; a 44.1 kHz null sink whose
monitor a parec child records in 5 ms blocks. Each run: POST /streams (tone:sine -> the
sink), then the time until the first block holding audio is read from the monitor
(resolution: one block), then DELETE and wait for silence. The figure includes the whole
setup (two-phase, device opened by pacat), the receiver's target latency (it starts
playing once it holds it) and the sound server's buffers.

Setups: `one`, both ends in one daemon; `pair`, a cross-peer stream between two daemons
paired through the cluster on loopback (the POST to A, A's tone to B's sink: every step
of the setup crosses the cluster link).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tests.pulse_server import PulseServer
from tests.streams.cluster import create, end, instance, mesh
from tests.streams.conftest import NullSink, Rocd, device

BLOCK = 220  # frames: 5 ms at 44.1 kHz


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


def measure(
    post: Callable[[dict[str, Any]], dict[str, Any]],
    delete: Callable[[str], None],
    monitor: Monitor,
    profile: str,
    runs: int,
    setup: str,
) -> None:
    latency = {} if profile == "default" else {"latency": {"profile": profile}}
    firsts, answers = [], []
    stream: dict[str, Any] = {}
    for _ in range(runs):
        monitor.wait_silent()
        start = time.monotonic()
        stream = post(latency)
        answers.append(time.monotonic() - start)
        firsts.append(monitor.first_sound_after(start) - start)
        delete(stream["uid"])
    target = stream["settings"]["latency"]["target_ms"]
    ms = sorted(1000 * x for x in firsts)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(
        f"  {setup:4s} {profile:8s} (target {target:.0f} ms): first audio p50 "
        f"{statistics.median(ms):.0f} ms, p99 {p99:.0f} ms, max {ms[-1]:.0f} ms; "
        f"POST answered p50 {1000 * statistics.median(answers):.0f} ms"
    )


def one_daemon(server: PulseServer, root: Path, profiles: list[str], runs: int) -> None:
    rocd = Rocd(root / "one", server)
    try:
        rocd.start()
        sink = NullSink(server, "bench_start")
        rocd.wait_device(sink.device)
        monitor = Monitor(server, sink.name)
        time.sleep(0.5)
        for profile in profiles:
            measure(
                lambda settings: rocd.create(device("tone:sine"), device(sink.device), **settings),
                rocd.delete, monitor, profile, runs, "one",
            )  # fmt: skip
        monitor.close()
        sink.unload()
    finally:
        rocd.kill()


def daemon_pair(server: PulseServer, root: Path, profiles: list[str], runs: int) -> None:
    a, b = instance("a", root / "pair", server), instance("b", root / "pair", server)
    try:
        mesh([a, b])
        sink = NullSink(server, "bench_start_pair")
        time.sleep(1.0)  # b lists the new sink
        monitor = Monitor(server, sink.name)
        time.sleep(0.5)

        def post(settings: dict[str, Any]) -> dict[str, Any]:
            return create(a, end(a, "tone:sine"), end(b, sink.device), **settings)

        def delete(uid: str) -> None:
            assert a.delete(f"/streams/{uid}").status_code == 204

        for profile in profiles:
            measure(post, delete, monitor, profile, runs, "pair")
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
            one_daemon(server, root, profiles, args.runs)
        if "pair" in setups:
            daemon_pair(server, root, profiles, args.runs)
        print(f"  (load average after: {os.getloadavg()[0]:.2f})")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
