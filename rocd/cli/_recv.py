"""`rocd recv`: receive Roc streams and play or record their mix, like roc-recv.

    rocd recv -o file:out.wav -s rtp+rs8m://0.0.0.0:10001 -r rs8m://0.0.0.0:10002 \\
              -c rtcp://0.0.0.0:10003

Runs until SIGINT/SIGTERM (or, with --oneshot, until every sender that came has gone),
then leaves a complete, valid output file and exits 0; 2 for a bad option or URI; 1 when
an endpoint cannot be bound (port in use) or the output cannot be opened.
"""

from __future__ import annotations

import argparse
import logging
import random

import msgspec
import trio

from rocd.audio import SampleSpec
from rocd.net.roc import (
    AdaptiveLatencyConfig,
    LatencyConfig,
    LatencyProfile,
    Receiver,
    ReceiverConfig,
    ReceiverReporter,
    RecvLink,
    Ticker,
)

from ._exit import EXIT_OK
from ._io import open_output
from ._logging import setup_logging
from ._run import UsageError, run_command
from ._send import add_endpoint_options, endpoints_from, print_metrics
from ._signals import catch_stop_signals
from ._units import channel_count, duration_ns, sample_rate

log = logging.getLogger("rocd.recv")

FILE_TICK_NS = 50_000_000
"""How often a receiver writing to a file (or `null`) wakes up: 50 ms, five 10 ms reads.

A file has no clock, so what it records does not depend on when the reads run: each read
is done on its nominal time, with the packets that had arrived by then (RecvLink), so
waking every 50 ms writes the very same file as waking every 10 ms, for a fifth of the
wake-ups. A wake-up of a Python process costs about as much as the 10 ms of receiving it
serves (cold caches), so this halves the CPU of `rocd recv -o file:...`. The price: the
file, RTCP reports and `--oneshot` lag up to 50 ms, and the sockets hold 50 ms of
datagrams between wake-ups (16 per sender; the default 200 KiB socket buffers hold those
of about ten senders, the 1 MiB asked for where net.core.rmem_max allows, fifty)."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("recv", help="receive Roc streams into a file or device")
    p.add_argument(
        "-o", "--output", required=True, metavar="OUTPUT", help="file:PATH, pulse:NAME or null"
    )
    add_endpoint_options(p, slots=False)
    p.add_argument(
        "--target-latency",
        type=latency_arg,
        default=200_000_000,
        metavar="TIME",
        help="latency to keep (default 200ms), or auto: follow the link's jitter",
    )
    p.add_argument(
        "--start-latency",
        type=duration_ns,
        metavar="TIME",
        help="with --target-latency auto: where to start (default 200ms)",
    )
    p.add_argument(
        "--min-latency",
        type=duration_ns,
        metavar="TIME",
        help="with --target-latency auto: lowest target (default min(15ms, start/5))",
    )
    p.add_argument(
        "--max-latency",
        type=duration_ns,
        metavar="TIME",
        help="with --target-latency auto: highest target (default 5 x start)",
    )
    p.add_argument(
        "--latency-tolerance",
        type=duration_ns,
        metavar="TIME",
        help="allowed deviation before a session restarts (default: Roc's formula)",
    )
    p.add_argument(
        "--latency-profile",
        choices=[p.value for p in LatencyProfile],
        default="default",
        help="latency tuning (default: responsive below 30ms)",
    )
    p.add_argument(
        "--drift-comp",
        choices=["on", "off"],
        default="on",
        help="resample to follow the sender's clock (default on)",
    )
    p.add_argument(
        "--no-play-timeout",
        type=duration_ns,
        metavar="TIME",
        help="end a silent session after this long (default 4/3 of the latency)",
    )
    p.add_argument(
        "--choppy-play-timeout",
        type=duration_ns,
        default=2_000_000_000,
        metavar="TIME",
        help="end a constantly broken session (default 2s)",
    )
    p.add_argument(
        "--rate", type=sample_rate, default=44100, help="output sample rate (default 44100)"
    )
    p.add_argument("--channels", type=channel_count, default=2, help="output channels (default 2)")
    p.add_argument("--miface", metavar="IP", help="join multicast groups on this interface")
    p.add_argument(
        "-1", "--oneshot", action="store_true", help="exit once every sender that came has gone"
    )
    p.set_defaults(run=run)


def latency_arg(text: str) -> int | None:
    """A TIME, or `auto` (None): an adaptive target."""
    return None if text == "auto" else duration_ns(text)


def receiver_config(args: argparse.Namespace, fec: object) -> ReceiverConfig:
    adaptive = args.target_latency is None
    if not adaptive and (args.start_latency or args.min_latency or args.max_latency):
        raise UsageError("--start/--min/--max-latency go with --target-latency auto")
    try:
        bounds = AdaptiveLatencyConfig(
            start_ns=args.start_latency or 200_000_000,
            min_ns=args.min_latency,
            max_ns=args.max_latency,
        )
        return ReceiverConfig(
            rate=args.rate,
            channels=args.channels,
            fec=fec,  # type: ignore[arg-type]
            latency=LatencyConfig(
                target_ns=bounds.start_ns if adaptive else args.target_latency,
                tolerance_ns=args.latency_tolerance,
                profile=LatencyProfile(args.latency_profile),
            ),
            adaptive=bounds if adaptive else None,
            drift_compensation=args.drift_comp == "on",
            no_playback_timeout_ns=args.no_play_timeout,
            choppy_playback_timeout_ns=args.choppy_play_timeout,
        )
    except (ValueError, msgspec.ValidationError) as exc:
        raise UsageError(str(exc)) from None


async def recv(args: argparse.Namespace) -> int:
    endpoints = endpoints_from(args, receiver=True)
    config = receiver_config(args, endpoints.fec_scheme)
    receiver = Receiver(config)
    reporter = ReceiverReporter(rng=random.Random())
    spec = SampleSpec(config.rate, config.channels)
    stop = trio.Event()
    # Caught from here to the end, so that a second SIGINT/SIGTERM (`timeout` sends two,
    # people press Ctrl-C twice) cannot kill the process before the file is finished.
    async with (
        catch_stop_signals(lambda _name, _count: stop.set()),
        open_output(args.output, spec) as sink,
        trio.open_nursery() as nursery,
    ):
        # A file or null output is paced by a kernel timer (see Ticker: os_timer), woken
        # every FILE_TICK_NS to read what fell due (see there).
        ticker = (
            None if sink.clocked else await nursery.start(Ticker(FILE_TICK_NS, os_timer=True).run)
        )
        link = RecvLink(
            receiver, endpoints, reporter=reporter, ticker=ticker, multicast_iface=args.miface
        )
        bound = await nursery.start(link.run, sink)
        where = ", ".join(f"{i.value} {a[0]}:{a[1]}" for i, a in bound.items())
        log.info("receiving on %s into %s", where, args.output)
        if args.metrics:
            nursery.start_soon(
                print_metrics,
                lambda: {
                    "sessions": receiver.metrics(),
                    "receiver": receiver.counters,
                    "rtcp": reporter.stats,
                },
            )
        await _wait_for_the_end(link, stop, oneshot=args.oneshot)
        nursery.cancel_scope.cancel()
    # Leaving open_output finished the file (shielded): it is complete and valid.
    return EXIT_OK


async def _wait_for_the_end(link: RecvLink, stop: trio.Event, *, oneshot: bool) -> None:
    """Until a stop signal, or with `oneshot` until every sender that came has gone."""
    async with trio.open_nursery() as waiters:

        async def on_stop() -> None:
            await stop.wait()
            waiters.cancel_scope.cancel()

        async def on_oneshot() -> None:
            await link.all_ended.wait()
            log.info("every sender has gone: stopping")
            waiters.cancel_scope.cancel()

        waiters.start_soon(on_stop)
        if oneshot:
            waiters.start_soon(on_oneshot)


def run(args: argparse.Namespace) -> int:
    setup_logging("debug" if args.verbose else "info")
    return run_command(recv, args)
