"""Streams one core can carry: N sender + receiver pairs in one Trio process, real clock.

    python -m bench.transport [--streams 16,32,64] [--seconds 10] [--fec rs8m|ldpc|none]
                              [--target-ms 200] [--loss 0.0] [--gso]

Each pair: a 44.1 kHz stereo tone paced in real time -> SendLink -> UDP on 127.0.0.1 ->
RecvLink (drift compensation on) -> a paced null sink. Everything runs on one thread, so
the process can use at most one core: the figures are CPU % of that core, per stream, and
whether the streams kept up (underruns, concealed samples, mean latency error against the
target over the last half of the run).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import trio

from rocd.net.roc import (
    FecScheme,
    ImpairmentConfig,
    Interface,
    LatencyConfig,
    Receiver,
    ReceiverConfig,
    ReceiverReporter,
    RecvLink,
    RelayRoute,
    Sender,
    SenderConfig,
    SendLink,
    SessionMetrics,
    Ticker,
    UdpRelay,
    receiver_endpoints,
    sender_endpoints,
)

RATE = 44100


@dataclass(frozen=True)
class Spec:
    rate: int
    channels: int


class Tone:
    """An endless unclocked 441 Hz tone: slices of one precomputed period-aligned buffer."""

    def __init__(self) -> None:
        t = np.arange(2 * RATE) / RATE
        wave = (0.3 * np.sin(2 * np.pi * 441 * t)).astype(np.float32)
        self.buffer = np.stack([wave, wave], axis=1)  # 441 Hz: whole periods in a second
        self.spec, self.clocked, self.pos = Spec(RATE, 2), False, 0

    async def read(self, n: int) -> npt.NDArray[np.float32]:
        start = self.pos % RATE
        self.pos += n
        return self.buffer[start : start + n]


class NullSink:
    def __init__(self) -> None:
        self.spec, self.clocked = Spec(RATE, 2), False

    async def write(self, frames: npt.NDArray[np.float32]) -> None:
        return None


def uris(proto: str, ports: dict[Interface, int]) -> tuple[str, str | None, str]:
    """Roc URIs of a slot (port 0: bind any); no repair endpoint without FEC."""
    source = f"rtp+{proto}" if proto else "rtp"
    return (
        f"{source}://127.0.0.1:{ports.get(Interface.SOURCE, 0)}",
        f"{proto}://127.0.0.1:{ports.get(Interface.REPAIR, 0)}" if proto else None,
        f"rtcp://127.0.0.1:{ports.get(Interface.CONTROL, 0)}",
    )


async def run_pairs(
    n: int,
    seconds: float,
    fec: FecScheme | None,
    target_ms: int,
    loss: float,
    shared: bool,
    gso: bool = False,
) -> tuple[float, float, list[SessionMetrics], list[float]]:
    proto = {FecScheme.RS8M: "rs8m", FecScheme.LDPC_STAIRCASE: "ldpc", None: ""}[fec]
    links: list[RecvLink] = []
    latencies: list[list[float]] = [[] for _ in range(n)]
    async with trio.open_nursery() as nursery:
        ticker = await nursery.start(Ticker().run) if shared else None
        for i in range(n):
            receiver = Receiver(
                ReceiverConfig(fec=fec, latency=LatencyConfig(target_ns=target_ms * 1_000_000))
            )
            reporter = ReceiverReporter(rng=random.Random(i))
            endpoints = receiver_endpoints(*uris(proto, {}))
            recv = RecvLink(receiver, endpoints, reporter=reporter, ticker=ticker)
            bound = await nursery.start(recv.run, NullSink())
            ports = {k: a[1] for k, a in bound.items()}
            if loss > 0:
                order = list(ports)
                relay = UdpRelay(
                    [
                        RelayRoute(listen=("127.0.0.1", 0), target=("127.0.0.1", ports[k]))
                        for k in order
                    ],
                    forward=ImpairmentConfig(seed=i, loss=loss),
                )
                relayed = await nursery.start(relay.run)
                ports = {k: a[1] for k, a in zip(order, relayed, strict=True)}
            sender = Sender(
                SenderConfig(fec=fec), input_rate=RATE, input_channels=2, rng=random.Random(100 + i)
            )
            send = SendLink(sender, sender_endpoints(*uris(proto, ports)), ticker=ticker, gso=gso)
            await nursery.start(send.run, Tone())
            links.append(recv)
        t0, c0 = time.monotonic(), time.process_time()
        half = t0 + seconds / 2
        while time.monotonic() - t0 < seconds:
            await trio.sleep(0.1)
            if time.monotonic() > half:
                for i, recv in enumerate(links):
                    for m in recv.receiver.metrics():
                        if m.state == "playing":
                            latencies[i].append(m.latency_ms)
        wall, cpu = time.monotonic() - t0, time.process_time() - c0
        metrics = [m for recv in links for m in recv.receiver.metrics()]
        nursery.cancel_scope.cancel()
    errors = [abs(statistics.fmean(lat) - target_ms) for lat in latencies if lat]
    return wall, cpu, metrics, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="16,32,64")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fec", choices=["rs8m", "ldpc", "none"], default="rs8m")
    parser.add_argument("--target-ms", type=int, default=200)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument(
        "--own-timers", action="store_true", help="each link its own timer (no shared Ticker)"
    )
    parser.add_argument(
        "--gso", action="store_true", help="senders use UDP segmentation offload (SendLink gso)"
    )
    args = parser.parse_args()
    fec = {"rs8m": FecScheme.RS8M, "ldpc": FecScheme.LDPC_STAIRCASE, "none": None}[args.fec]
    timers = "own timers" if args.own_timers else "one shared Ticker"
    print(
        f"fec={args.fec} target={args.target_ms} ms loss={args.loss:.0%} "
        f"{args.seconds:g} s each, {timers}" + (", GSO" if args.gso else "")
    )
    for n in (int(s) for s in args.streams.split(",")):
        wall, cpu, metrics, errors = trio.run(
            run_pairs,
            n,
            args.seconds,
            fec,
            args.target_ms,
            args.loss,
            not args.own_timers,
            args.gso,
        )
        load = 100 * cpu / wall
        underruns = sum(m.underruns for m in metrics)
        concealed = sum(m.concealed_samples for m in metrics)
        restarts = max(0, len(metrics) - n) + (n - len(metrics))
        err = statistics.fmean(errors) if errors else float("nan")
        print(
            f"{n:4d} pairs: {load:5.1f}% of one core ({load / n:.2f}% per pair), "
            f"sessions {len(metrics)}/{n}, underruns {underruns}, concealed {concealed}, "
            f"mean |latency - target| {err:.2f} ms"
            + (" (sessions missing or restarted)" if restarts else "")
        )


if __name__ == "__main__":
    main()
