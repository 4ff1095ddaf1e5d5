"""How many streams a daemon (and a daemon pair) carries, and the CPU per stream, side by
side with as many roc-send + roc-recv pairs, in one run.

    python -m bench.streams [--streams 8,32] [--seconds 10]

Each stream: a 44.1 kHz stereo WAV (its own file device: hard links of one file) ->
RS8M 18+10 -> UDP on 127.0.0.1 -> a receiver (200 ms, drift compensation on) -> its own
null sink (a tone-driver VAD, paced by the daemon's ticker). Three setups, one after the
other, each measured over the same window after a settling second:
- rocd, one daemon: both ends of every stream in one `rocd serve`;
- rocd, a pair: the senders in daemon A, the receivers in daemon B, two instances paired
  through the cluster (one REST call a stream, to A);
- Roc: the same number of `roc-send -i file:...` + `roc-recv -o file:/dev/null` pairs
  (ROC_PREFIX or PATH; left out when absent).
CPU is user + system time of the processes (per stream: % of one core); underruns and
concealed samples are summed over rocd's streams at the end of the window.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.ports import free_ports
from tests.streams.cluster import create, end, files_of, instance, mesh
from tests.streams.conftest import Rocd, device, roc_tool, write_wav

TICK = os.sysconf("SC_CLK_TCK")
RATE = 44100


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def measure(pids: list[int], seconds: float) -> float:
    """CPU of `pids` over `seconds`, in % of one core."""
    before = sum(cpu_seconds(p) for p in pids)
    time.sleep(seconds)
    return 100 * (sum(cpu_seconds(p) for p in pids) - before) / seconds


def prepare_files(rocd: Rocd, source: Path, n: int) -> list[str]:
    names = []
    for i in range(n):
        name = f"s{i:03d}.wav"
        os.link(source, rocd.files / name)
        names.append(name)
    return names


def null_sinks(rocd: Rocd, n: int) -> list[str]:
    out = []
    for i in range(n):
        r = rocd.http.post(
            "/peers/self/vads",
            json={"name": f"null{i}", "kind": "speaker", "driver": "tone", "rate": RATE},
        )
        assert r.status_code == 201, r.text
        out.append(r.json()["device"])
    return out


def health(rocd: Rocd, uids: list[str]) -> tuple[int, int, int]:
    """(streams active, underruns, concealed samples) over `uids`."""
    return health_of(rocd.http, uids)


def health_of(http: Any, uids: list[str]) -> tuple[int, int, int]:
    """The same, asked of any client (`get`) of an instance that answers for them."""
    active = underruns = concealed = 0
    for uid in uids:
        m: Any = http.get(f"/streams/{uid}/metrics").json()
        active += m["state"] == "active"
        for one in m["ends"]:
            r = one.get("receiver")
            if r:
                underruns += r["underruns"]
                concealed += r["concealedSamples"]
    return active, underruns, concealed


def run_one_daemon(root: Path, wav: Path, n: int, seconds: float) -> float:
    rocd = Rocd(root / f"one{n}")
    files = prepare_files(rocd, wav, n)
    rocd.start()
    try:
        sinks = null_sinks(rocd, n)
        uids = [
            rocd.create(device(f"file:source:{f}"), device(s))["uid"]
            for f, s in zip(files, sinks, strict=True)
        ]
        time.sleep(1.5)
        assert rocd.proc is not None
        cpu = measure([rocd.proc.pid], seconds)
        active, underruns, concealed = health(rocd, uids)
        print(f"  rocd, one daemon: {cpu:5.1f}% of a core, {cpu / n:.2f}% per stream; "
              f"{active}/{n} active, underruns {underruns}, concealed {concealed}")  # fmt: skip
        return cpu / n
    finally:
        rocd.kill()


def run_pair(root: Path, wav: Path, n: int, seconds: float) -> float:
    a, b = instance("a", root / f"pair{n}"), instance("b", root / f"pair{n}")
    files = []
    for i in range(n):
        files.append(f"s{i:03d}.wav")
        os.link(wav, files_of(a) / files[-1])
    try:
        mesh([a, b])
        sinks = []
        for i in range(n):
            r = b.post("/peers/self/vads", {"name": f"null{i}", "kind": "speaker",
                                           "driver": "tone", "rate": RATE})  # fmt: skip
            assert r.status_code == 201, r.text
            sinks.append(r.json()["device"])
        uids = [
            create(a, end(a, f"file:source:{f}"), end(b, s))["uid"]
            for f, s in zip(files, sinks, strict=True)
        ]
        time.sleep(1.5)
        assert a.proc is not None
        assert b.proc is not None
        cpu = measure([a.proc.pid, b.proc.pid], seconds)
        active, underruns, concealed = health_of(b, uids)
        print(f"  rocd, a pair:     {cpu:5.1f}% of a core, {cpu / n:.2f}% per stream; "
              f"{active}/{n} active, underruns {underruns}, concealed {concealed}")  # fmt: skip
        return cpu / n
    finally:
        a.stop()
        b.stop()


def run_roc(wav: Path, n: int, seconds: float) -> float | None:
    send, recv = roc_tool("roc-send"), roc_tool("roc-recv")
    if send is None or recv is None:
        print("  Roc: roc-send/roc-recv not found (set ROC_PREFIX): left out")
        return None
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(n):
            ports = free_ports(3)
            host = "127.0.0.1"
            uris = ["-s", f"rtp+rs8m://{host}:{ports[0]}", "-r", f"rs8m://{host}:{ports[1]}",
                    "-c", f"rtcp://{host}:{ports[2]}"]  # fmt: skip
            procs.append(subprocess.Popen(
                [recv, "-o", "file:/dev/null", "--output-format", "wav", *uris],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
            time.sleep(0.02)
            procs.append(subprocess.Popen(
                [send, "-i", f"file:{wav}", *uris],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
        time.sleep(1.5)
        # poll() reaps a tool that exited (a port taken between free_ports and its bind):
        # only those running are measured, and the figure is per running pair.
        running = [p for p in procs if p.poll() is None]
        if len(running) < 2 * n:
            print(f"  Roc: {2 * n - len(running)} of {2 * n} processes exited at start")
        cpu = measure([p.pid for p in running], seconds)
        pairs = len(running) / 2
        print(f"  Roc pairs:        {cpu:5.1f}% of a core, {cpu / pairs:.2f}% per stream; "
              f"{len(running)}/{2 * n} processes running")  # fmt: skip
        return cpu / pairs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="8,32")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rocd-bench-streams-"))
    wav = root / "tone.wav"
    t = np.arange(round((args.seconds + 15) * RATE)) / RATE
    wave = (0.3 * np.sin(2 * np.pi * 441 * t)).astype(np.float32)
    write_wav(wav, np.stack([wave, wave], axis=1))
    for n in (int(x) for x in args.streams.split(",")):
        print(f"{n} streams, {args.seconds:g} s window (load average {os.getloadavg()[0]:.2f})")
        one = run_one_daemon(root, wav, n, args.seconds)
        pair = run_pair(root, wav, n, args.seconds)
        roc = run_roc(wav, n, args.seconds)
        if roc:
            print(f"  per-stream CPU / Roc's: one daemon {one / roc:.2f}, pair {pair / roc:.2f}")
        print(f"  (load average after: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
