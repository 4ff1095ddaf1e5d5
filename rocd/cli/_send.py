"""`rocd send`: stream an input to a Roc receiver, like roc-send.

    rocd send -i file:song.wav -s rtp+rs8m://HOST:10001 -r rs8m://HOST:10002 -c rtcp://HOST:10003

Exits 0 when the input ends (a file) or on SIGINT/SIGTERM (the last packets, a last
report, and with --bye a BYE, go out first); 2 for a bad option or URI; 1 when the input
cannot be opened or the sender fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from typing import Any

import msgspec
import trio

from rocd.audio import SampleSpec, Tee, Unsupported
from rocd.net.roc import (
    EndpointError,
    EndpointSet,
    FecScheme,
    Sender,
    SenderConfig,
    SendLink,
    Ticker,
    sender_endpoints,
)

from ._exit import EXIT_OK
from ._io import open_input
from ._logging import setup_logging
from ._run import UsageError, run_command
from ._signals import catch_stop_signals
from ._units import count, duration_ns, sample_rate

log = logging.getLogger("rocd.send")

FILE_TICK_NS = 200_000_000
"""How often a sender of a file or tone wakes Trio up (its send thread keeps the 10 ms
beat of the packets): to read and encode what falls due next, take the receivers' reports
and send its own, due every 200 ms (REPORT_INTERVAL_NS). A Python process pays for every
wake-up about as much as roc-send spends per packet burst, so twenty times fewer of them
than packet bursts is much of what makes `rocd send` light (measured: Trio's share of the
process, 1.05 % of a core at 100 ms, 0.73 % at 200 ms)."""

FEC_NAMES = {"rs8m": FecScheme.RS8M, "ldpc": FecScheme.LDPC_STAIRCASE, "none": None}


def add_endpoint_options(p: argparse.ArgumentParser, *, slots: bool) -> None:
    more = " (repeat -s/-r/-c for more destinations)" if slots else ""
    p.add_argument(
        "-s",
        "--source",
        required=True,
        action="append" if slots else "store",
        metavar="URI",
        help=f"source endpoint: rtp://, rtp+rs8m:// or rtp+ldpc://HOST:PORT{more}",
    )
    p.add_argument(
        "-r",
        "--repair",
        action="append" if slots else "store",
        metavar="URI",
        help="repair endpoint: rs8m:// or ldpc://",
    )
    p.add_argument(
        "-c",
        "--control",
        action="append" if slots else "store",
        metavar="URI",
        help="control endpoint: rtcp://HOST:PORT",
    )
    p.add_argument(
        "--fec",
        choices=sorted(FEC_NAMES),
        help="check the FEC scheme the URIs imply (the URIs decide it)",
    )
    p.add_argument("--metrics", action="store_true", help="print one JSON line of metrics a second")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("send", help="stream a file, tone or device to a Roc receiver")
    p.add_argument(
        "-i",
        "--input",
        required=True,
        metavar="INPUT",
        help="file:PATH, tone:sine[:FREQ], tone:sweep|noise|silence, pulse:NAME",
    )
    add_endpoint_options(p, slots=True)
    p.add_argument("--nbsrc", type=count, default=18, help="source packets per FEC block")
    p.add_argument("--nbrpr", type=count, default=10, help="repair packets per FEC block")
    p.add_argument(
        "--packet-len",
        type=duration_ns,
        default=5_000_000,
        metavar="TIME",
        help="audio per packet (default 5ms)",
    )
    p.add_argument("--rate", type=sample_rate, default=44100, help="sample rate of tone inputs")
    p.add_argument(
        "--duration",
        type=duration_ns,
        metavar="TIME",
        help="stop after this much audio (tones and devices never end)",
    )
    p.add_argument(
        "--bye",
        action="store_true",
        help="say RTCP BYE at the end (the receiver ends the session at once)",
    )
    p.set_defaults(run=run)


def endpoints_from(args: argparse.Namespace, *, receiver: bool) -> EndpointSet:
    """The one endpoint set the -s/-r/-c options of a receiver name."""
    return _slot(args.source, args.repair, args.control, args.fec, receiver=True)


def slots_from(args: argparse.Namespace) -> list[EndpointSet]:
    """A sender's slots: the i-th -s goes with the i-th -r and -c. As in roc-send, the
    number of -r (and of -c) is 0 or the number of -s."""
    sources: list[str] = args.source
    for flag, given in (("-r", args.repair), ("-c", args.control)):
        if given is not None and len(given) != len(sources):
            raise UsageError(f"{len(sources)} -s but {len(given)} {flag}: give one per -s, or none")
    repairs = args.repair or [None] * len(sources)
    controls = args.control or [None] * len(sources)
    return [
        _slot(s, r, c, args.fec, receiver=False)
        for s, r, c in zip(sources, repairs, controls, strict=True)
    ]


def _slot(
    source: str, repair: str | None, control: str | None, fec: str | None, *, receiver: bool
) -> EndpointSet:
    from rocd.net.roc import receiver_endpoints

    make = receiver_endpoints if receiver else sender_endpoints
    try:
        endpoints = make(source, repair, control)
    except EndpointError as exc:
        raise UsageError(str(exc)) from None
    if fec is not None and FEC_NAMES[fec] is not endpoints.fec_scheme:
        implied = endpoints.fec_scheme.value if endpoints.fec_scheme else "none"
        raise UsageError(f"--fec {fec} contradicts {endpoints}, which uses {implied}")
    return endpoints


def sender_config(args: argparse.Namespace, endpoints: EndpointSet) -> SenderConfig:
    try:
        return SenderConfig(
            fec=endpoints.fec_scheme,
            fec_source_packets=args.nbsrc,
            fec_repair_packets=args.nbrpr,
            packet_length_ns=args.packet_len,
            bye_on_stop=args.bye,
        )
    except (ValueError, msgspec.ValidationError) as exc:
        raise UsageError(str(exc)) from None


async def print_metrics(snapshot: Any) -> None:
    """One JSON line a second, for scripts and humans tailing the output."""
    while True:
        await trio.sleep(1.0)
        line = {"time": round(time.time(), 3), **msgspec.to_builtins(snapshot())}
        print(json.dumps(line), flush=True)


async def send(args: argparse.Namespace) -> int:
    slots = slots_from(args)
    configs = [sender_config(args, endpoints) for endpoints in slots]
    tone_spec = SampleSpec(args.rate, 2)
    stop = trio.Event()
    # Caught from here to the end: a second signal (`timeout`, two Ctrl-C) must not cut
    # the last packets, report and BYE short (see _signals).
    async with (
        catch_stop_signals(lambda _name, _count: stop.set()),
        open_input(args.input, spec=tone_spec, duration_ns=args.duration) as source,
    ):
        # One sender and one socket per destination, all fed the same frames (a lone
        # destination reads the source itself: a Tee costs a copy per read).
        readers = [source] if len(slots) == 1 else Tee(source, len(slots)).readers
        try:
            senders = [
                Sender(
                    config,
                    input_rate=source.spec.rate,
                    input_channels=source.spec.channels,
                    rng=random.Random(),
                )
                for config in configs
            ]
        except ValueError as exc:
            if "no channel mapping" in str(exc):  # the input, not an option, is the problem
                raise Unsupported(
                    f"{args.input} has {source.spec.channels} channels; a stream carries 1"
                    " or 2: mix it down first (say, sox IN.wav -c 2 OUT.wav)"
                ) from None
            raise UsageError(str(exc)) from None
        async with trio.open_nursery() as nursery:
            # Each destination's packets leave from a send thread at their times; one
            # kernel timer (see Ticker: os_timer) wakes Trio every 200 ms to read, encode
            # and queue ahead, and for RTCP (see SendLink: send_thread, FILE_TICK_NS).
            ticker = await nursery.start(Ticker(FILE_TICK_NS, os_timer=True).run)
            links = [
                SendLink(sender, endpoints, ticker=ticker, send_thread=not source.clocked)
                for sender, endpoints in zip(senders, slots, strict=True)
            ]
            for link, reader in zip(links, readers, strict=True):
                local = await nursery.start(link.run, reader)
                log.info("sending %s from %s:%d to %s", args.input, *local, link.endpoints)
            nursery.start_soon(_stop_on, stop, links)
            if args.metrics:
                nursery.start_soon(
                    print_metrics,
                    lambda: {"senders": [link.sender.metrics() for link in links]},
                )
            for link in links:
                await link.done.wait()
            nursery.cancel_scope.cancel()
    sent = sum(sender.metrics().source_packets for sender in senders)
    log.info("done: %d packets sent", sent)
    return EXIT_OK


async def _stop_on(stop: trio.Event, links: list[SendLink]) -> None:
    """End every stream as if its input had ended (flush, last report, BYE) on `stop`."""
    await stop.wait()
    for link in links:
        link.request_stop()


def run(args: argparse.Namespace) -> int:
    setup_logging("debug" if args.verbose else "info")
    return run_command(send, args)
