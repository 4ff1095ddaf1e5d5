"""Relay throughput and latency-control CPU cost: `python -m bench.relay`.

Throughput: one Trio process runs a source, the relay and a sink on 127.0.0.1; the source
keeps a bounded window of 900-byte datagrams in flight (sent - received - dropped by the
model) so that no socket buffer overflows. The same harness without the relay gives the
harness's own cost; the difference is what the relay costs per datagram.
"""

import socket
import sys
import time
from collections.abc import Callable

import trio

from rocd.net.roc import (
    FreqEstimator,
    FreqEstimatorConfig,
    ImpairmentConfig,
    LatencyConfig,
    LatencyTuner,
    RelayRoute,
    UdpRelay,
)

DATAGRAM = b"\x80" * 900
DURATION_S = 3.0


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _pump(
    destination: tuple[str, int],
    sink: socket.socket,
    window: int,
    dropped: Callable[[], int],
) -> tuple[float, float, int]:
    """Send for DURATION_S with at most `window` datagrams in flight; (datagrams/s sent,
    datagrams/s received, datagrams lost by the OS)."""
    source = _udp()
    sent = received = lost = 0
    progress = trio.Event()
    start = trio.current_time()
    deadline = start + DURATION_S

    async def drain() -> None:
        nonlocal received, progress
        while True:
            await trio.lowlevel.wait_readable(sink)
            while True:
                try:
                    sink.recv(2048)
                except BlockingIOError:
                    break
                received += 1
            progress.set()
            progress = trio.Event()

    with source:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            while trio.current_time() < deadline:
                room = window - (sent - received - dropped() - lost)
                if room <= 0:
                    with trio.move_on_after(0.5) as scope:
                        await progress.wait()
                    if scope.cancelled_caught:  # the rest of the window was lost: go on
                        lost = sent - received - dropped()
                    continue
                for _ in range(min(room, 64)):
                    try:
                        source.sendto(DATAGRAM, destination)
                    except BlockingIOError:
                        break
                    sent += 1
                await trio.lowlevel.checkpoint()
            elapsed = trio.current_time() - start
            nursery.cancel_scope.cancel()
    return sent / elapsed, received / elapsed, lost


async def _through_relay(forward: ImpairmentConfig | None, window: int) -> tuple[float, float, int]:
    sink = _udp()
    with sink:
        relay = UdpRelay(
            [RelayRoute(listen=("127.0.0.1", 0), target=sink.getsockname())], forward=forward
        )
        async with trio.open_nursery() as nursery:
            [listen] = await nursery.start(relay.run)
            result = await _pump(
                listen, sink, window, lambda: relay.forward_counters.impairment.dropped
            )
            nursery.cancel_scope.cancel()
    return result


async def _direct(window: int) -> tuple[float, float, int]:
    sink = _udp()
    with sink:
        return await _pump(sink.getsockname(), sink, window, lambda: 0)


def _per_call_ns(step: Callable[[], None], n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        step()
    return (time.perf_counter_ns() - start) / n


def _estimator_ns(config: FreqEstimatorConfig, n: int) -> float:
    fe = FreqEstimator(config, 44100, 8820.0)
    latencies = iter([8820.0 + (i % 37) for i in range(n)])
    return _per_call_ns(lambda: fe.update(next(latencies)), n)


def _control_costs() -> None:
    n = 200_000
    for name, config in (
        ("responsive", FreqEstimatorConfig.responsive()),
        ("gradual", FreqEstimatorConfig.gradual()),
    ):
        ns = _estimator_ns(config, n)
        print(f"estimator {name:10}: {ns / 1000:6.2f} us per update (one per 5 ms of stream)")
    tuner = LatencyTuner(LatencyConfig(target_ns=200_000_000), 44100)

    def frame() -> None:
        tuner.update(8820.0)
        tuner.advance(441)

    ns = _per_call_ns(frame, n // 2)
    print(
        f"tuner gradual        : {ns / 1000:6.2f} us per 10 ms frame "
        f"({ns / 10_000_000 * 100:.4f}% of a core per stream)"
    )


async def _main() -> None:
    print(f"UDP relay, 900-byte datagrams, {DURATION_S:g} s per run, one process")
    _, base, _ = await _direct(256)
    print(f"harness alone (source -> sink)  : {base:8.0f} datagrams/s")
    sent, plain, lost = await _through_relay(None, 256)
    print(f"relay, no impairment            : {plain:8.0f} datagrams/s forwarded (OS lost {lost})")
    impaired = ImpairmentConfig(seed=1, loss=0.05, jitter_ns=20_000_000)
    offered, delivered, lost = await _through_relay(impaired, 8192)
    print(
        f"relay, 5% loss + 20 ms jitter   : {offered:8.0f} datagrams/s in, {delivered:.0f}/s "
        f"delivered (OS lost {lost})"
    )
    for name, rate in (("no impairment", sent), ("loss + jitter", offered)):
        own = 1e6 / rate - 1e6 / base
        print(
            f"relay's own cost, {name}: {own:5.1f} us per datagram in "
            f"(~{1e6 / own:.0f}/s of a core)"
        )


def main() -> None:
    trio.run(_main)
    _control_costs()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
