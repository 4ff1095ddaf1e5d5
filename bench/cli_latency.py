"""Low latency on loopback, rocd beside Roc's tools: `python -m bench.cli_latency`.

    python -m bench.cli_latency [--runs 20] [--target 10ms] [--sweep 7.5ms,5ms,2.5ms,1ms]
                                [--sweep-runs 10] [--sweep-packet-len 2.5ms] [--seconds 4]
                                [--only rocd|roc]

A 16-bit stereo file (a sweep with a little noise) goes from the sender to the receiver's
file on 127.0.0.1, RS8M, at a fixed target latency without resampling (`rocd recv
--drift-comp off`, `roc-recv --latency-profile intact`): then the file that arrives must
hold the input sample for sample. Each run prints what it found: `exact`, `exact` after a
trimmed start (a receiver may drop what is queued beyond its target when it starts, up to
one 10 ms read: roc-recv drops the first packet so), or the SNR and how much differs or is
missing (a gap, a session that restarted). A run "holds" when it is exact either way; a
target holds when every run does.

First `--runs` runs at `--target` with the default 5 ms packets, then `--sweep-runs` runs
at each `--sweep` target with `--sweep-packet-len` packets: the targets that held, and the
lowest of them, are printed. rocd and Roc runs alternate, so both see the same machine;
the load average is printed with every run. The reference tools are found as in
bench.cli_vs_roc.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import soundfile as sf

from bench.roc_tools import ROCD, make_input, reap, roc_tool, stream_check, uris
from tests.ports import free_ports


def one_run(tool: str, wav: Path, out: Path, target: str, packet_len: str) -> str:
    """What the receiver's file holds after one run (see `stream_check`)."""
    ports = free_ports(3)
    endpoints = uris(ports, "rs8m")
    if tool == "rocd":
        recv_cmd = [*ROCD, "recv", "-o", f"file:{out}", *endpoints, "--oneshot",
                    "--target-latency", target, "--drift-comp", "off"]  # fmt: skip
        send_cmd = [*ROCD, "send", "-i", f"file:{wav}", *endpoints, "--packet-len", packet_len]
    else:
        recv_cmd = [roc_tool("roc-recv"), "-o", f"file:{out}", *endpoints,
                    f"--target-latency={target}", "--latency-profile=intact"]  # fmt: skip
        send_cmd = [roc_tool("roc-send"), "-i", f"file:{wav}", *endpoints,
                    f"--packet-len={packet_len}"]  # fmt: skip
    recv = subprocess.Popen(recv_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert recv.stderr is not None
        if tool == "rocd":
            deadline = time.monotonic() + 30
            while b"receiving on" not in recv.stderr.readline():
                if recv.poll() is not None or time.monotonic() > deadline:
                    return f"rocd recv did not start ({recv.poll()})"
        else:
            time.sleep(0.3)  # binds at once; --oneshot would end before the sender comes
        subprocess.run(send_cmd, capture_output=True, timeout=60, check=False)
        if tool == "rocd":
            recv.wait(timeout=30)  # --oneshot: ends when the sender has gone
        else:
            time.sleep(0.5)  # the tail, through the latency
            recv.send_signal(signal.SIGTERM)
            recv.wait(timeout=30)
    finally:
        reap(recv)
    if not out.exists():
        return "no output file"
    sent, _ = sf.read(wav, dtype="float32", always_2d=True)
    return stream_check(sent, out)


def held(check: str) -> bool:
    """Sample-exact once playing: whole, or with at most one 10 ms read trimmed off its
    start (a receiver drops what is queued beyond its target when it starts)."""
    return check == "exact" or (check.startswith("exact (start trimmed") and "," not in check)


def series(
    tools: list[str], wav: Path, tmp: Path, target: str, packet_len: str, runs: int
) -> dict[str, int]:
    """`runs` runs of each tool (alternating); how many held, per tool."""
    exact = dict.fromkeys(tools, 0)
    kept = dict.fromkeys(tools, 0)
    print(f"target {target}, {packet_len} packets, {runs} runs each", flush=True)
    for r in range(runs):
        for tool in tools if r % 2 == 0 else tools[::-1]:
            load = os.getloadavg()[0]
            check = one_run(tool, wav, tmp / f"{tool}.wav", target, packet_len)
            exact[tool] += check == "exact"
            kept[tool] += held(check)
            print(f"  run {r + 1:2d} {tool:5s} {check}  (load {load:.2f})", flush=True)
    for tool in tools:
        print(
            f"  {tool:5s} held {kept[tool]}/{runs} at {target} "
            f"({exact[tool]} whole, {kept[tool] - exact[tool]} with a trimmed start)",
            flush=True,
        )
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--target", default="10ms")
    parser.add_argument("--sweep", default="7.5ms,5ms,2.5ms,1ms")
    parser.add_argument("--sweep-runs", type=int, default=10)
    parser.add_argument("--sweep-packet-len", default="2.5ms")
    parser.add_argument("--seconds", type=float, default=4.0, help="input length per run")
    parser.add_argument("--only", choices=["rocd", "roc"], help="run one pair of tools only")
    args = parser.parse_args()
    tools = [args.only] if args.only else ["rocd", "roc"]
    with tempfile.TemporaryDirectory(prefix="rocd-latency-") as name:
        tmp = Path(name)
        wav = make_input(tmp / "in.wav", args.seconds)
        series(tools, wav, tmp, args.target, "5ms", args.runs)
        held: dict[str, list[str]] = {tool: [] for tool in tools}
        for target in (t for t in args.sweep.split(",") if t):
            exact = series(tools, wav, tmp, target, args.sweep_packet_len, args.sweep_runs)
            for tool in tools:
                if exact[tool] == args.sweep_runs:
                    held[tool].append(target)
        for tool in tools:
            lowest = held[tool][-1] if held[tool] else f"none of {args.sweep}"
            print(
                f"{tool:5s} with {args.sweep_packet_len} packets, held in every run: "
                f"{', '.join(held[tool]) or '-'}; lowest: {lowest}"
            )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
