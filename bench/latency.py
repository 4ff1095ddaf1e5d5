"""Latency accuracy and stability over minutes on loopback: `python -m bench.latency`.

    python -m bench.latency [--pairs 1] [--minutes 10] [--target-ms 20]
                            [--profile default|responsive|gradual] [--fec rs8m|ldpc|none]

Each pair: a 44.1 kHz stereo tone paced in real time -> SendLink -> UDP on 127.0.0.1 ->
RecvLink (drift compensation on) -> a paced null sink, on one shared Ticker, real clock
(the same setup as bench.transport, with few pairs). Every 100 ms the NIQ latency of every
playing session is sampled. Every minute and at the end it prints, over all pairs:
underruns, concealed samples, late packets, session restarts (sessions created beyond one
per pair), the mean latency and the mean / largest |latency - target| of that minute, and
the drift estimate. "settled" is the first time after which the 1-second mean of
|latency - target| stayed within 1 ms for the rest of the run (per pair, the latest).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import dataclass, field

import trio

from bench.transport import RATE, NullSink, Tone, uris
from rocd.net.roc import (
    FecScheme,
    LatencyConfig,
    LatencyProfile,
    Receiver,
    ReceiverConfig,
    ReceiverReporter,
    RecvLink,
    Sender,
    SenderConfig,
    SendLink,
    Ticker,
    receiver_endpoints,
    sender_endpoints,
)

SAMPLE_S = 0.1
SETTLED_MS = 1.0


@dataclass
class PairLog:
    """Latency samples of one pair: (seconds since start, latency ms)."""

    samples: list[tuple[float, float]] = field(default_factory=list)

    def settled_at(self, target_ms: float) -> float | None:
        """Start of the 1-second window after which every window's mean error stays
        within SETTLED_MS; None if the last window is not within it."""
        windows: dict[int, list[float]] = {}
        for t, lat in self.samples:
            windows.setdefault(int(t), []).append(abs(lat - target_ms))
        settled: float | None = None
        for second in sorted(windows):
            if statistics.fmean(windows[second]) <= SETTLED_MS:
                if settled is None:
                    settled = float(second)
            else:
                settled = None
        return settled


async def run(args: argparse.Namespace) -> None:
    fec = {"rs8m": FecScheme.RS8M, "ldpc": FecScheme.LDPC_STAIRCASE, "none": None}[args.fec]
    proto = {FecScheme.RS8M: "rs8m", FecScheme.LDPC_STAIRCASE: "ldpc", None: ""}[fec]
    latency = LatencyConfig(
        target_ns=round(args.target_ms * 1_000_000), profile=LatencyProfile(args.profile)
    )
    print(
        f"{args.pairs} pair(s), target {args.target_ms:g} ms, profile "
        f"{latency.effective_profile.value}, fec={args.fec}, {args.minutes:g} min, real clock"
    )
    links: list[RecvLink] = []
    logs = [PairLog() for _ in range(args.pairs)]
    async with trio.open_nursery() as nursery:
        ticker = await nursery.start(Ticker().run)
        for i in range(args.pairs):
            receiver = Receiver(ReceiverConfig(fec=fec, latency=latency))
            recv = RecvLink(
                receiver,
                receiver_endpoints(*uris(proto, {})),
                reporter=ReceiverReporter(rng=random.Random(i)),
                ticker=ticker,
            )
            bound = await nursery.start(recv.run, NullSink())
            ports = {k: a[1] for k, a in bound.items()}
            sender = Sender(
                SenderConfig(fec=fec), input_rate=RATE, input_channels=2, rng=random.Random(100 + i)
            )
            send = SendLink(sender, sender_endpoints(*uris(proto, ports)), ticker=ticker)
            await nursery.start(send.run, Tone())
            links.append(recv)

        t0 = time.monotonic()
        c0 = time.process_time()
        minute_start = 0.0
        last_totals = (0, 0, 0)
        total_s = args.minutes * 60
        print(
            "  min  underruns concealed   late restarts  latency ms  mean|err| ms  "
            "max|err| ms  drift ppm  cpu %"
        )
        while True:
            await trio.sleep(SAMPLE_S)
            now = time.monotonic() - t0
            for i, recv in enumerate(links):
                for m in recv.receiver.metrics():
                    if m.state == "playing":
                        logs[i].samples.append((now, m.latency_ms))
            if now - minute_start >= 60 or now >= total_s:
                last_totals = _report(
                    links, logs, args, minute_start, now, last_totals, time.process_time() - c0
                )
                minute_start = now
            if now >= total_s:
                break
        settled = [log.settled_at(args.target_ms) for log in logs]
        worst = None if None in settled else max(s for s in settled if s is not None)
        print(
            "settled (1 s mean |err| <= 1 ms from then on): "
            + ("never" if worst is None else f"after {worst:.0f} s")
        )
        nursery.cancel_scope.cancel()


def _report(
    links: list[RecvLink],
    logs: list[PairLog],
    args: argparse.Namespace,
    start: float,
    now: float,
    last: tuple[int, int, int],
    cpu_s: float,
) -> tuple[int, int, int]:
    metrics = [m for recv in links for m in recv.receiver.metrics()]
    underruns = sum(m.underruns for m in metrics)
    concealed = sum(m.concealed_samples for m in metrics)
    late = sum(m.late for m in metrics)
    restarts = sum(max(0, recv.sessions_seen - 1) for recv in links)
    lats = [lat for log in logs for t, lat in log.samples if start <= t < now]
    errs = [abs(lat - args.target_ms) for lat in lats]
    drift = statistics.fmean(m.drift_ppm for m in metrics) if metrics else float("nan")
    final = now >= args.minutes * 60
    label = "end" if final else f"{now / 60:4.1f}"
    mean_lat = statistics.fmean(lats) if lats else float("nan")
    mean_err = statistics.fmean(errs) if errs else float("nan")
    max_err = max(errs) if errs else float("nan")
    print(
        f"{label:>5} {underruns - last[0]:10d} {concealed - last[1]:9d} {late - last[2]:6d} "
        f"{restarts:8d} {mean_lat:11.2f} {mean_err:13.3f} {max_err:12.2f} {drift:10.1f} "
        f"{100 * cpu_s / now:6.1f}",
        flush=True,
    )
    if final:
        all_errs = [abs(lat - args.target_ms) for log in logs for t, lat in log.samples if t >= 60]
        print(
            f"whole run: underruns {underruns}, concealed {concealed}, late {late}, "
            f"restarts {restarts}; after the first minute mean |err| "
            + (f"{statistics.fmean(all_errs):.3f} ms" if all_errs else "n/a")
        )
    return underruns, concealed, late


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--target-ms", type=float, default=20.0)
    parser.add_argument("--profile", choices=[p.value for p in LatencyProfile], default="default")
    parser.add_argument("--fec", choices=["rs8m", "ldpc", "none"], default="rs8m")
    trio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
