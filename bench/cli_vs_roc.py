"""CPU of `rocd send` / `rocd recv` beside `roc-send` / `roc-recv`: `python -m bench.cli_vs_roc`.

    python -m bench.cli_vs_roc [--rounds 3] [--seconds 12] [--fec rs8m|ldpc|none]
                               [--only rocd|roc]

One 44.1 kHz stereo stream, file in, file out, on 127.0.0.1, each tool with its defaults
(200 ms target latency, clock-drift compensation on). Every round runs the rocd pair, then
the Roc pair (the order alternates from round to round), so both see the same machine:
the figures that count are the ratios rocd / Roc, per round and their median, printed with
the load average beside them (the machine is shared: absolute figures are noisy).

CPU is read from /proc/PID/stat (user + system time of all the process's threads) over the
steady part of each run: from `--warmup` seconds after the sender starts to one second
before its input ends, so the start-up of the Python interpreter is not counted (it is
printed apart: the whole process's CPU time, from its rusage). Each run also says how much
of the input's sound reached the output file (the receivers resample: not sample-exact).

The reference tools are found through ROC_PREFIX (ROC_PREFIX/bin) or PATH; when missing,
they are built (see bench/roc_tools.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from bench.roc_tools import ROCD, arrival_check, make_input, reap, roc_tool, uris
from tests.ports import free_ports

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class Run:
    tool: str
    send_pct: float
    recv_pct: float
    send_total_s: float
    recv_total_s: float
    check: str


def wait_for_line(proc: subprocess.Popen[bytes], needle: bytes, timeout: float) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if needle in line:
            return
        if not line and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited {proc.returncode}")
    raise RuntimeError(f"{proc.args!r}: no {needle!r} within {timeout} s")


def one_run(tool: str, wav: Path, out: Path, seconds: float, warmup: float, fec: str) -> Run:
    ports = free_ports(3)
    endpoints = uris(ports, fec)
    if tool == "rocd":
        recv_cmd = [*ROCD, "recv", "-o", f"file:{out}", *endpoints]
        send_cmd = [*ROCD, "send", "-i", f"file:{wav}", *endpoints]
    else:
        recv_cmd = [roc_tool("roc-recv"), "-o", f"file:{out}", *endpoints]
        send_cmd = [roc_tool("roc-send"), "-i", f"file:{wav}", *endpoints]
    recv = subprocess.Popen(recv_cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        if tool == "rocd":
            wait_for_line(recv, b"receiving on", 30)
        else:
            time.sleep(0.3)  # roc-recv binds at once and says nothing
        # Both senders read stderr into a file, so neither stalls on a full pipe.
        with tempfile.TemporaryFile() as send_log:
            started = time.monotonic()
            send = subprocess.Popen(send_cmd, stderr=send_log, stdout=subprocess.DEVNULL)
            # A Python process needs ~0.5-1 s to start: wait until the stream flows, then
            # the warm-up, before the CPU is sampled.
            time.sleep(warmup)
            c_send, c_recv, t0 = cpu_seconds(send.pid), cpu_seconds(recv.pid), time.monotonic()
            time.sleep(max(1.0, started + seconds - 1.0 - time.monotonic()))
            d_send, d_recv, t1 = cpu_seconds(send.pid), cpu_seconds(recv.pid), time.monotonic()
            _, status, usage = os.wait4(send.pid, 0)
            send.returncode = os.waitstatus_to_exitcode(status)
            send_total = usage.ru_utime + usage.ru_stime
        time.sleep(0.5)  # the last packets, through the receiver's latency
        recv.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(recv.pid, 0)
        recv.returncode = os.waitstatus_to_exitcode(status)
        recv_total = usage.ru_utime + usage.ru_stime
    finally:
        reap(recv)
    wall = t1 - t0
    sent, _ = sf.read(wav, dtype="float32", always_2d=True)
    check = arrival_check(sent, out) if out.exists() else "no output file"
    return Run(
        tool,
        100 * (d_send - c_send) / wall,
        100 * (d_recv - c_recv) / wall,
        send_total,
        recv_total,
        check,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=12.0, help="input length per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before sampling")
    parser.add_argument("--fec", choices=["rs8m", "ldpc", "none"], default="rs8m")
    parser.add_argument("--only", choices=["rocd", "roc"], help="run one pair of tools only")
    args = parser.parse_args()
    tools = [args.only] if args.only else ["rocd", "roc"]
    print(
        f"one 44.1 kHz stereo {args.fec} stream, file -> file, {args.seconds:g} s input, "
        f"CPU sampled from {args.warmup:g} s to the last second; {sys.executable}"
    )
    runs: dict[str, list[Run]] = {t: [] for t in tools}
    with tempfile.TemporaryDirectory(prefix="rocd-bench-") as tmp:
        wav = make_input(Path(tmp) / "in.wav", args.seconds)
        for r in range(args.rounds):
            order = tools if r % 2 == 0 else tools[::-1]
            for tool in order:
                load = os.getloadavg()[0]
                run = one_run(
                    tool, wav, Path(tmp) / f"out-{tool}-{r}.wav", args.seconds,
                    args.warmup, args.fec,
                )  # fmt: skip
                runs[tool].append(run)
                print(
                    f"round {r + 1} {tool:5s} send {run.send_pct:5.2f}%  recv "
                    f"{run.recv_pct:5.2f}% of a core  (whole process: send "
                    f"{run.send_total_s:.2f} s, recv {run.recv_total_s:.2f} s CPU)  "
                    f"{run.check}  load {load:.2f}",
                    flush=True,
                )
    if len(tools) == 2:
        send_ratios = [
            a.send_pct / b.send_pct for a, b in zip(runs["rocd"], runs["roc"], strict=True)
        ]
        recv_ratios = [
            a.recv_pct / b.recv_pct for a, b in zip(runs["rocd"], runs["roc"], strict=True)
        ]
        both = [
            (a.send_pct + a.recv_pct) / (b.send_pct + b.recv_pct)
            for a, b in zip(runs["rocd"], runs["roc"], strict=True)
        ]
        print(
            f"rocd / Roc, median of {args.rounds} rounds:"
            f" send x{statistics.median(send_ratios):.2f}"
            f"  recv x{statistics.median(recv_ratios):.2f}  both x{statistics.median(both):.2f}"
            f"  (per round: send {' '.join(f'{x:.2f}' for x in send_ratios)};"
            f" recv {' '.join(f'{x:.2f}' for x in recv_ratios)})"
            f"  load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
    for tool in tools:
        rs = runs[tool]
        print(
            f"{tool:5s} median: send {statistics.median(r.send_pct for r in rs):.2f}%"
            f"  recv {statistics.median(r.recv_pct for r in rs):.2f}% of a core"
        )


if __name__ == "__main__":
    main()
