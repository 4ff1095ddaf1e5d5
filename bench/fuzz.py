"""Coverage-guided fuzzing of the receive path (atheris): speed, worst input, memory.

    python -m bench.fuzz [--runs 200000] [--only rtp,rtcp,fecframe,receive] [--no-instrument]

Harnesses: `rtp` (RTP parse), `rtcp` (compound RTCP with XR), `fecframe` (source and repair
payload IDs of both schemes) and `receive` (a long-lived Receiver with LDPC and its RTCP
reporter, fed sequences of datagrams: a valid stream's packets, mutated ones, random
bytes on every endpoint and from several addresses, and output reads between them).

Each harness runs in its own process (libFuzzer exits when done) for `--runs` inputs and
reports execs/s, the worst time of a single input (for `receive`: of a single datagram,
and of a single 10 ms read), and RSS after 10% of the inputs and at the end, so memory
growth shows. Targets (README, security model): no datagram above 1 ms in the receive
path, RSS flat. Times are measured around the call into rocd only; with coverage
instrumentation (the default) rocd runs several times slower than in production: the
slowest inputs are re-timed without it in a plain process.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HARNESSES = ("rtp", "rtcp", "fecframe", "receive")
SLOWEST = 8  # inputs kept for re-timing without instrumentation


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class ReceivePath:
    """A receiver that lives across inputs; each input is a sequence of operations."""

    ADDRESSES = (("10.0.0.1", 5000), ("10.0.0.1", 5001), ("10.0.0.9", 5000))

    def __init__(self, roc: Any, fuzzed_data_provider: Any) -> None:
        self.roc = roc
        self.fdp_type = fuzzed_data_provider
        fec = roc.FecScheme.LDPC_STAIRCASE
        self.receiver = roc.Receiver(roc.ReceiverConfig(fec=fec))
        self.reporter = roc.ReceiverReporter(rng=random.Random(0))
        writer = roc.FecWriter(fec, first_sbn=65530)
        rng = random.Random(1)
        self.stream: list[tuple[bool, bytes]] = []
        for i in range(3600):
            payload = rng.randbytes(884)
            rtp = roc.RtpPacket(10, i & 0xFFFF, i * 221, 0x1234_5678, payload).serialize()
            out = writer.write(rtp)
            self.stream.append((False, out.source))
            self.stream.extend((True, r) for r in out.repair)
        sr = roc.SenderReport(0x1234_5678, roc.unix_ns_to_ntp64(1_700_000_000 * 10**9), 0, 1, 1)
        sdes = roc.Sdes((roc.SdesChunk.with_cname(0x1234_5678, "x" * 36),))
        xr = roc.ExtendedReport(0x1234_5678, (roc.Dlrr((roc.DlrrSubBlock(1, 2, 3),)),))
        self.rtcp = roc.serialize_rtcp([sr, xr, sdes])
        self.next = 0
        self.now = 0
        self.wall = 1_700_000_000 * 10**9
        self.worst_datagram_ns = 0
        self.worst_read_ns = 0
        self.worst_op = ""
        self.datagrams = 0

    def __call__(self, data: bytes) -> None:
        fdp = self.fdp_type(data)
        roc = self.roc
        receiver, reporter = self.receiver, self.reporter
        perf = time.perf_counter_ns
        while fdp.remaining_bytes():
            op = fdp.ConsumeIntInRange(0, 7)
            address = self.ADDRESSES[fdp.ConsumeIntInRange(0, 2)] if op >= 2 else None
            if op <= 1 or op == 5:
                if op == 5:
                    is_repair, datagram = False, self.rtcp
                else:
                    is_repair, datagram = self.stream[self.next]
                    self.next = (self.next + 1) % len(self.stream)
                if fdp.ConsumeBool():  # one byte changed
                    pos = fdp.ConsumeIntInRange(0, len(datagram) - 1)
                    value = fdp.ConsumeIntInRange(0, 255)
                    datagram = datagram[:pos] + bytes([value]) + datagram[pos + 1 :]
                address = self.ADDRESSES[0]
            else:
                datagram = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 2048))
                is_repair = op == 3
            assert address is not None
            t0 = perf()
            if op == 6:  # what a RecvLink does every 10 ms
                receiver.read(441, self.now)
                for ended in receiver.pop_ended():
                    reporter.forget(ended.ssrc)
                _reports, gone = reporter.poll(self.now, self.wall, receiver.reception(self.now))
                for end in gone:
                    receiver.end_session(end.ssrc, roc.EndReason.INACTIVE)
                self.now += 10_000_000
                self.wall += 10_000_000
                dt = perf() - t0
                self.worst_read_ns = max(self.worst_read_ns, dt)
                continue
            if op in (4, 5):
                with contextlib.suppress(roc.MalformedPacket):
                    for end in reporter.handle(
                        datagram, address, self.now, self.wall, sessions=receiver.session
                    ):
                        receiver.end_session(end.ssrc, roc.EndReason.BYE)
            elif is_repair:
                receiver.on_repair(datagram, address, self.now)
            else:
                receiver.on_source(datagram, address, self.now)
            dt = perf() - t0
            self.datagrams += 1
            if dt > self.worst_datagram_ns:
                self.worst_datagram_ns = dt
                self.worst_op = (
                    ("source", "source", "raw source", "raw repair", "raw rtcp", "rtcp")[op]
                    if op != 1 or not is_repair
                    else "repair"
                )
            self.now += 1_000_000


def _target(name: str, roc: Any, fdp_type: Any) -> Callable[[bytes], None]:
    if name == "rtp":

        def rtp(data: bytes) -> None:
            with contextlib.suppress(roc.MalformedPacket):
                roc.RtpPacket.parse(data)

        return rtp
    if name == "rtcp":

        def rtcp(data: bytes) -> None:
            with contextlib.suppress(roc.MalformedPacket):
                for packet in roc.parse_rtcp(data):
                    packet.serialize()

        return rtcp
    if name == "fecframe":
        schemes = list(roc.FecScheme)

        def fecframe(data: bytes) -> None:
            if not data:
                return
            scheme = schemes[data[0] & 1]
            parse = roc.parse_repair_datagram if data[0] & 2 else roc.parse_source_datagram
            with contextlib.suppress(roc.MalformedPacket):
                parse(scheme, data[1:])

        return fecframe
    return ReceivePath(roc, fdp_type)


def _seeds(name: str, roc: Any, directory: Path) -> None:
    """A few valid inputs to start from."""
    directory.mkdir(parents=True, exist_ok=True)
    rtp = roc.RtpPacket(10, 1, 2, 3, bytes(884)).serialize()
    sr = roc.SenderReport(3, 1 << 40, 0, 1, 1, (roc.ReportBlock(4),))
    xr = roc.ExtendedReport(
        5, (roc.Rrtr(1 << 40), roc.QueueMetrics(3, 100, 200), roc.DelayMetrics(3, 1, 2, 3, 4))
    )
    rtcp = roc.serialize_rtcp([sr, xr, roc.Sdes((roc.SdesChunk.with_cname(3, "c" * 36),))])
    ldpc = roc.FecScheme.LDPC_STAIRCASE
    seeds = {
        "rtp": [rtp],
        "rtcp": [rtcp, roc.serialize_rtcp([roc.Bye((3,))])],
        "fecframe": [
            bytes([1]) + roc.build_source_datagram(ldpc, rtp, roc.SourcePayloadId(5, 0, 18)),
            bytes([3]) + roc.build_repair_datagram(ldpc, roc.RepairPayloadId(5, 20, 18, 28), rtp),
        ],
        "receive": [bytes([0, 0] * 64), bytes([0, 0, 0, 1, 0, 6] * 40)],
    }[name]
    for i, seed in enumerate(seeds):
        (directory / f"seed{i}").write_bytes(seed)


def child(name: str, runs: int, report: Path, instrument: bool) -> None:
    import atheris

    ctx = atheris.instrument_imports(include=["rocd"]) if instrument else contextlib.nullcontext()
    with ctx:
        import rocd.net.roc as roc
    target = _target(name, roc, atheris.FuzzedDataProvider)
    slowest: list[tuple[int, bytes]] = []
    state = {"count": 0, "start": time.perf_counter(), "rss10": 0.0, "live10": 0}
    corpus = Path(tempfile.mkdtemp(prefix=f"rocd-fuzz-{name}-"))
    _seeds(name, roc, corpus)

    def one(data: bytes) -> None:
        t0 = time.perf_counter_ns()
        target(data)
        dt = time.perf_counter_ns() - t0
        if len(slowest) < SLOWEST:
            heapq.heappush(slowest, (dt, data))
        elif dt > slowest[0][0]:
            heapq.heapreplace(slowest, (dt, data))
        state["count"] += 1
        count = state["count"]
        if count == runs // 10:
            state["rss10"] = _rss_mb()
            if isinstance(target, ReceivePath):
                state["live10"] = target.receiver.session_count
        if count >= runs:
            elapsed = time.perf_counter() - state["start"]
            out: dict[str, Any] = {
                "harness": name,
                "runs": count,
                "execs_per_s": count / elapsed,
                "worst_input_ms": max(t for t, _ in slowest) / 1e6,
                "rss_at_10pct_mb": state["rss10"],
                "rss_end_mb": _rss_mb(),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "slowest": [d.hex() for _, d in sorted(slowest, reverse=True)],
                "instrumented": instrument,
            }
            if isinstance(target, ReceivePath):
                out["worst_datagram_ms"] = target.worst_datagram_ns / 1e6
                out["worst_read_ms"] = target.worst_read_ns / 1e6
                out["datagrams"] = target.datagrams
                out["sessions_created"] = target.receiver.counters.sessions_created
                out["live_10pct"] = state["live10"]
                out["live_end"] = target.receiver.session_count
                out["rtcp_senders"] = target.reporter.stats.senders
            report.write_text(json.dumps(out))
            os._exit(0)

    argv = [sys.argv[0], f"-runs={runs * 2}", "-max_len=4096", "-seed=1", str(corpus)]
    atheris.Setup(argv, one)
    atheris.Fuzz()


def retime(name: str, slowest: list[str]) -> tuple[float, str]:
    """The worst time (ms) of the given inputs in this (uninstrumented) process, as the
    median of 5 runs each; for `receive` a fresh receiver runs them in sequence."""
    import atheris

    import rocd.net.roc as roc

    worst = 0.0
    what = ""
    for hexdata in slowest:
        data = bytes.fromhex(hexdata)
        times = []
        for _ in range(5):
            target = _target(name, roc, atheris.FuzzedDataProvider)
            t0 = time.perf_counter_ns()
            target(data)
            dt = time.perf_counter_ns() - t0
            if isinstance(target, ReceivePath):
                dt = target.worst_datagram_ns
                what = target.worst_op
            times.append(dt)
        worst = max(worst, sorted(times)[2] / 1e6)
    return worst, what


def churn(sessions: int = 8000) -> str:
    """Sessions of random geometry made from forged SSRCs and ended by the watchdog, in a
    plain process: the receive path's memory, without libFuzzer's (which keeps every input
    that found new coverage in memory, so an instrumented run's RSS grows with its corpus)."""
    import rocd.net.roc as roc

    ldpc = roc.FecScheme.LDPC_STAIRCASE
    receiver = roc.Receiver(roc.ReceiverConfig(fec=ldpc))
    rng = random.Random(1)
    now = 0
    rss: list[float] = []
    for i in range(sessions):
        k, length = rng.randint(1, 200), rng.randint(16, 1800) // 4 * 4
        rtp = roc.RtpPacket(10, i & 0xFFFF, i, 1000 + i, bytes(length - 12)).serialize()
        datagram = roc.build_source_datagram(ldpc, rtp, roc.SourcePayloadId(i & 0xFFFF, 0, k))
        receiver.on_source(datagram, (f"10.0.{i % 200}.1", 5000 + i % 7), now)
        receiver.read(441, now)
        receiver.pop_ended()
        now += 10_000_000
        if i in (sessions // 4, sessions - 1):
            rss.append(_rss_mb())
    made = receiver.counters.sessions_created
    return (
        f"session churn (plain): {made} sessions made and ended, at most "
        f"{receiver.config.max_sessions} live; RSS {rss[0]:.1f} MB after a quarter, "
        f"{rss[1]:.1f} MB at the end"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--only", default=",".join(HARNESSES))
    parser.add_argument("--no-instrument", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.runs, Path(args.report), not args.no_instrument)
        return
    print(f"load average {os.getloadavg()[0]:.2f}; {args.runs} inputs per harness")
    print(
        f"{'harness':9s} {'execs/s':>9s} {'worst ms':>9s} {'plain ms':>9s} "
        f"{'rss@10%':>8s} {'rss end':>8s} {'peak':>7s}  notes"
    )
    for name in args.only.split(","):
        report = Path(tempfile.mkdtemp(prefix="rocd-fuzz-")) / "report.json"
        cmd = [sys.executable, "-m", "bench.fuzz", "--child", name, "--report", str(report)]
        cmd += ["--runs", str(args.runs)] + (["--no-instrument"] if args.no_instrument else [])
        subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not report.exists():
            print(f"{name:9s} crashed (no report): run it alone to see the input")
            continue
        r = json.loads(report.read_text())
        plain, what = retime(name, r["slowest"])
        notes = ""
        if name == "receive":
            notes = (
                f"worst datagram {r['worst_datagram_ms']:.2f} ms, worst 10 ms read "
                f"{r['worst_read_ms']:.2f} ms ({r['datagrams']} datagrams, "
                f"{r['sessions_created']} sessions made, {r['live_10pct']} then "
                f"{r['live_end']} live (cap 64), {r['rtcp_senders']} RTCP senders held); "
                f"slowest plain datagram: {what}"
            )
        print(
            f"{name:9s} {r['execs_per_s']:9.0f} {r['worst_input_ms']:9.3f} {plain:9.3f} "
            f"{r['rss_at_10pct_mb']:8.1f} {r['rss_end_mb']:8.1f} {r['peak_rss_mb']:7.1f}  {notes}",
            flush=True,
        )
    if "receive" in args.only.split(","):
        print(churn())
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
