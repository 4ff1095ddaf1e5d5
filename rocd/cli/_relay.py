"""`rocd relay`: the seeded impairment relay as a command, for trying a link by hand.

    rocd relay --route :20001=127.0.0.1:10001 --route :20002=127.0.0.1:10002 \\
               --route :20003=127.0.0.1:10003 --loss 5% --jitter 20ms --seed 7

Point a sender at the listen ports instead of the receiver's; everything one sender sends
leaves the relay from one socket, so Roc receivers still match repair packets to it.

With `--nfqueue N` instead of routes it impairs packets where they are (root): an
iptables rule `-j NFQUEUE --queue-num N --queue-bypass` picks the packets of a link,
and the same model gives each its verdict (drop, or accept when it is due).
"""

from __future__ import annotations

import argparse
import json
import logging

import msgspec
import trio

from rocd.net.roc import (
    GilbertElliott,
    ImpairmentConfig,
    QueueImpairment,
    RelayRoute,
    UdpRelay,
)

from ._exit import EXIT_OK
from ._logging import setup_logging
from ._run import UsageError, run_command
from ._signals import catch_stop_signals
from ._units import address, duration_ns, probability, whole

log = logging.getLogger("rocd.relay")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("relay", help="forward UDP with seeded loss, delay, jitter, reordering")
    p.add_argument(
        "--route",
        action="append",
        default=[],
        metavar="LISTEN=TARGET",
        help="listen address and where to forward (repeat per port)",
    )
    p.add_argument(
        "--nfqueue",
        type=whole,
        metavar="NUM",
        help="impair the packets iptables queues to netfilter queue NUM (no routes; root)",
    )
    p.add_argument("--seed", type=whole, default=0, help="random seed (same seed, same losses)")
    p.add_argument("--loss", type=probability, default=0.0, help="random loss (0.05 or 5%%)")
    p.add_argument(
        "--burst",
        type=burst_length,
        default=0.0,
        metavar="PACKETS",
        help="make the loss bursty, with this mean burst length",
    )
    p.add_argument("--delay", type=duration_ns, default=0, help="fixed delay (e.g. 20ms)")
    p.add_argument("--jitter", type=duration_ns, default=0, help="extra random delay 0..TIME")
    p.add_argument("--reorder", type=probability, default=0.0, help="share held back")
    p.add_argument("--reorder-delay", type=duration_ns, default=20_000_000, metavar="TIME")
    p.add_argument("--duplicate", type=probability, default=0.0, help="share sent twice")
    p.add_argument(
        "--rate", type=whole, default=0, metavar="BPS", help="link rate, bits/s (0: no limit)"
    )
    p.add_argument("--stats", action="store_true", help="print one JSON line of counters a second")
    p.set_defaults(run=run)


def impairment(args: argparse.Namespace) -> ImpairmentConfig:
    """The forward-direction model the flags describe (ValueError names a bad field)."""
    burst = None
    loss = args.loss
    if args.burst > 0 and loss > 0:
        burst = GilbertElliott.from_loss(loss, args.burst)
        loss = 0.0
    return ImpairmentConfig(
        seed=args.seed,
        loss=loss,
        burst=burst,
        delay_ns=args.delay,
        jitter_ns=args.jitter,
        reorder=args.reorder,
        reorder_delay_ns=args.reorder_delay if args.reorder else 0,
        duplicate=args.duplicate,
        rate_bps=args.rate,
    )


def routes(specs: list[str]) -> list[RelayRoute]:
    out = []
    for spec in specs:
        listen, sep, target = spec.partition("=")
        if not sep:
            raise ValueError(f"--route {spec!r}: expected LISTEN=TARGET")
        out.append(RelayRoute(listen=address(listen), target=address(target)))
    return out


def burst_length(text: str) -> float:
    """A mean burst length in packets: a number >= 1 (or 0: no bursts)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid burst length {text!r}") from None
    if not (value == 0 or 1 <= value < float("inf")):
        raise argparse.ArgumentTypeError(f"burst length {text!r}: expected 0 or >= 1 packets")
    return value


def _relay(args: argparse.Namespace) -> UdpRelay | QueueImpairment:
    """The relay the flags ask for: UDP routes, or a netfilter queue."""
    try:
        if args.nfqueue is not None:
            if args.route:
                raise ValueError("--nfqueue takes no --route (it acts on packets in place)")
            return QueueImpairment(args.nfqueue, impairment(args))
        if not args.route:
            raise ValueError("give --route LISTEN=TARGET (one or more) or --nfqueue NUM")
        return UdpRelay(routes(args.route), forward=impairment(args))
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise UsageError(str(exc)) from None


async def _serve(args: argparse.Namespace) -> int:
    relay = _relay(args)
    stop = trio.Event()
    async with catch_stop_signals(lambda _name, _count: stop.set()), trio.open_nursery() as nursery:
        if isinstance(relay, QueueImpairment):
            await nursery.start(relay.run)
            log.info("impairing the packets of netfilter queue %d", relay.queue)
            # A line on stdout once bound, for scripts that wait for it.
            print(f"nfqueue {relay.queue} bound", flush=True)
        else:
            bound = await nursery.start(relay.run)
            for route, where in zip(relay.routes, bound, strict=True):
                log.info("relaying %s:%d -> %s:%d", *where, *route.target)
        if args.stats:
            nursery.start_soon(_print_stats, relay)
        await stop.wait()
        nursery.cancel_scope.cancel()
    return EXIT_OK


async def _print_stats(relay: UdpRelay | QueueImpairment) -> None:
    while True:
        await trio.sleep(1.0)
        if isinstance(relay, QueueImpairment):
            print(json.dumps(msgspec.to_builtins(relay.counters)), flush=True)
            continue
        print(
            json.dumps(
                {
                    "forward": msgspec.to_builtins(relay.forward_counters),
                    "reverse": msgspec.to_builtins(relay.reverse_counters),
                }
            ),
            flush=True,
        )


def run(args: argparse.Namespace) -> int:
    setup_logging("info")
    return run_command(_serve, args)
