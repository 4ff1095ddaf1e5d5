"""`rocd ctl`: the cluster from a terminal, through any instance's HTTP API.

    rocd ctl [--api URL] [--token T] [--json] [--timeout S] RESOURCE VERB ...

    peers    list [--state S] | get PEER | create (--address A --key K | --uid UID) [--role R]
             | set PEER [--name N] [--role R] | delete PEER | invite [--role R] | join TOKEN
    devices  list | get ID | set ID [--name N] [--volume V] [--mute|--unmute] ...   [--peer P]
    vads     list | get UID | create --name N --kind K [--driver D] | set UID | delete UID
    streams  list | get UID | metrics UID | create -s DEVICE -d DEVICE ... | set UID | delete UID
    events   [--kind K,...] [--peer P] [--follow | --count N] [--within S]

A PEER is `self`, a uid, a key fingerprint, or an instance's name. `--api` defaults to
$ROCD_API, else http://127.0.0.1:4610; `--token` to $ROCD_TOKEN (better than the command
line, which other users of the machine can read). People get tables, `--json` gives
scripts the API's own JSON (one event per line for `events`). Exit statuses: see
EXIT_STATUSES in _ctl_exit (0 done, 2 bad usage, 3 unreachable, 4 denied, 5 not
found, 6 conflict, 7 daemon or peer failed, 8 events timed out, 130 interrupted by
SIGINT and 143 by SIGTERM, 1 anything else).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from rocd.config import DEFAULT_API_PORT

from ._ctl_exit import EXIT_STATUSES
from ._exit import EXIT_INTERRUPTED, EXIT_OK, exit_for_signal
from ._units import count, seconds

DEFAULT_API = f"http://127.0.0.1:{DEFAULT_API_PORT}"
ROLES = ("viewer", "operator", "admin")


# -- the parser -------------------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    """Options taken before or after the resource and verb."""
    common = argparse.ArgumentParser(add_help=False)
    s = argparse.SUPPRESS
    common.add_argument(
        "--api", metavar="URL", default=s, help=f"the API (default $ROCD_API or {DEFAULT_API})"
    )
    common.add_argument("--token", metavar="T", default=s, help="API token (default $ROCD_TOKEN)")
    common.add_argument("--json", action="store_true", default=s, help="print the API's JSON")
    common.add_argument(
        "--timeout",
        metavar="S",
        type=seconds,
        default=s,
        help="seconds to wait for an answer (15)",
    )
    return common


def _exit_help() -> str:
    return "exit statuses:\n" + "\n".join(f"  {k}  {v}" for k, v in EXIT_STATUSES.items())


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = _common()
    ctl = commands.add_parser(
        "ctl",
        parents=[common],
        help="drive the cluster through an instance's API: peers, devices, VADs, streams, events",
        description="Drive the cluster through any instance's HTTP API.",
        epilog=_exit_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    resources = ctl.add_subparsers(dest="resource", required=True, metavar="RESOURCE")

    def verb(group: Any, name: str, run: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = group.add_parser(name, parents=[common], help=help)
        p.set_defaults(verb=run)
        return p

    def with_peer(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--peer", default="self", help="the instance (uid, name or self; default self)"
        )
        return p

    peers = resources.add_parser("peers", help="instances of the cluster, pairing, roles")
    pv = peers.add_subparsers(dest="verb_name", required=True, metavar="VERB")
    p = verb(pv, "list", "peers_list", "list every instance the cluster knows")
    p.add_argument("--state", choices=("online", "offline", "refused", "discovered"))
    verb(pv, "get", "peers_get", "one instance").add_argument("peer", metavar="PEER")
    p = verb(
        pv,
        "create",
        "peers_create",
        "pair: trust an instance (address and key, or a discovered uid)",
    )
    p.add_argument("--address", help="its cluster listener, tcp://HOST:PORT")
    p.add_argument("--key", help="its public key (the key of its GET /peers/self)")
    p.add_argument("--uid", help="instead: the uid of an instance discovered on the LAN")
    p.add_argument("--role", choices=ROLES, default="operator")
    p = verb(pv, "set", "peers_set", "rename an instance, or change a peer's role here")
    p.add_argument("peer", metavar="PEER")
    p.add_argument("--name")
    p.add_argument("--role", choices=ROLES)
    verb(pv, "delete", "peers_delete", "revoke a peer's trust").add_argument("peer", metavar="PEER")
    p = verb(pv, "invite", "peers_invite", "make a one-time join token (printed on stdout)")
    p.add_argument("--role", choices=ROLES, default="operator")
    p.add_argument(
        "--ttl", type=float, default=600.0, metavar="S", help="seconds it may be used (600)"
    )
    verb(pv, "join", "peers_join", "join the instance that made an invite").add_argument(
        "invite", metavar="TOKEN"
    )

    devices = resources.add_parser("devices", help="audio devices of an instance")
    dv = devices.add_subparsers(dest="verb_name", required=True, metavar="VERB")
    with_peer(verb(dv, "list", "devices_list", "list the devices and the drivers' state"))
    with_peer(verb(dv, "get", "devices_get", "one device")).add_argument("id", metavar="ID")
    p = with_peer(verb(dv, "set", "devices_set", "change a device's settings (persisted)"))
    p.add_argument("id", metavar="ID")
    p.add_argument("--name")
    p.add_argument("--volume", type=float, help="0..1.5 (1.0 nominal)")
    mute = p.add_mutually_exclusive_group()
    mute.add_argument("--mute", dest="mute", action="store_true", default=None)
    mute.add_argument("--unmute", dest="mute", action="store_false")
    enabled = p.add_mutually_exclusive_group()
    enabled.add_argument("--enable", dest="enabled", action="store_true", default=None)
    enabled.add_argument("--disable", dest="enabled", action="store_false")
    p.add_argument("--rate", type=int, help="frames per second rocd streams it at")
    p.add_argument("--channels", type=int)
    p.add_argument("--latency-ms", type=int)
    p.add_argument(
        "--reset",
        action="append",
        default=[],
        choices=("name", "enabled", "volume", "mute", "rate", "channels", "latency_ms"),
        help="put a setting back to the device's own (repeat for several)",
    )

    vads = resources.add_parser("vads", help="virtual speakers and microphones of an instance")
    vv = vads.add_subparsers(dest="verb_name", required=True, metavar="VERB")
    with_peer(verb(vv, "list", "vads_list", "list the virtual devices"))
    with_peer(verb(vv, "get", "vads_get", "one virtual device")).add_argument("uid", metavar="UID")
    p = with_peer(verb(vv, "create", "vads_create", "make a virtual speaker or microphone"))
    p.add_argument("--name", required=True)
    p.add_argument("--kind", required=True, choices=("speaker", "microphone"))
    p.add_argument("--driver", help="pulse (default), file or tone")
    p.add_argument("--rate", type=int)
    p.add_argument("--channels", type=int)
    p = with_peer(verb(vv, "set", "vads_set", "rename or re-format a virtual device"))
    p.add_argument("uid", metavar="UID")
    p.add_argument("--name")
    p.add_argument("--rate", type=int)
    p.add_argument("--channels", type=int)
    with_peer(verb(vv, "delete", "vads_delete", "delete a virtual device")).add_argument(
        "uid", metavar="UID"
    )

    streams = resources.add_parser("streams", help="streams of the cluster")
    sv = streams.add_subparsers(dest="verb_name", required=True, metavar="VERB")
    verb(sv, "list", "streams_list", "list the cluster's streams")
    verb(sv, "get", "streams_get", "one stream, its ends and settings").add_argument(
        "uid", metavar="UID"
    )
    verb(sv, "metrics", "streams_metrics", "a stream's metrics now").add_argument(
        "uid", metavar="UID"
    )
    p = verb(
        sv, "create", "streams_create", "play a source on a destination, anywhere in the cluster"
    )
    for side, short in (("source", "-s"), ("destination", "-d")):
        p.add_argument(short, f"--{side}", metavar="DEVICE", help=f"the {side} device's id")
        p.add_argument(f"--{side}-vad", metavar="UID", help=f"instead: a VAD as the {side}")
        p.add_argument(
            f"--{side}-external",
            nargs="+",
            metavar="URI",
            help=f"instead: a Roc endpoint as the {side} (source, repair and control URIs)",
        )
        p.add_argument(f"--{side}-peer", metavar="PEER", help="its instance (default self)")
    p.add_argument("--profile", choices=("lan", "wifi", "internet"), help="latency profile")
    p.add_argument("--latency", type=float, metavar="MS", help="target latency, milliseconds")
    p.add_argument("--fec", choices=("rs8m", "ldpc", "none"))
    p.add_argument("--volume", type=float, help="0..1.5 (1.0)")
    p.add_argument("--settings", metavar="JSON", help="any other settings, as the API takes them")
    p = verb(sv, "set", "streams_set", "change a stream live: volume, latency bounds")
    p.add_argument("uid", metavar="UID")
    p.add_argument("--volume", type=float)
    p.add_argument("--min-latency", type=float, metavar="MS")
    p.add_argument("--max-latency", type=float, metavar="MS")
    verb(sv, "delete", "streams_delete", "stop and remove a stream").add_argument(
        "uid", metavar="UID"
    )

    ev = resources.add_parser("events", parents=[common], help="print cluster events as they come")
    ev.set_defaults(verb="events")
    ev.add_argument("--kind", help="kinds or families, comma-separated (stream.,peer.joined)")
    ev.add_argument("--peer", help="only this instance's events")
    ev.add_argument("--follow", "-f", action="store_true", help="until interrupted")
    ev.add_argument("--count", type=count, default=1, metavar="N", help="stop after N events (1)")
    ev.add_argument("--within", type=seconds, metavar="S", help="give up after S seconds (exit 8)")
    ctl.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # The common options may come before or after the verb; absent, they take these.
    for name, default in (("api", None), ("token", None), ("json", False), ("timeout", 15.0)):
        if not hasattr(args, name):
            setattr(args, name, default)
    from ._ctl_client import Client, CtlError, to_json
    from ._ctl_events import Interrupted
    from ._ctl_verbs import VERBS
    from ._pipe import quiet_stdout

    try:
        client = Client(
            args.api or os.environ.get("ROCD_API") or DEFAULT_API,
            args.token or os.environ.get("ROCD_TOKEN"),
            args.timeout,
        )
        result, show = VERBS[args.verb](client, args)
    except CtlError as exc:
        print(f"rocd: {exc.message}", file=sys.stderr)
        return exc.status
    except Interrupted as exc:  # events: the signal ended it, quietly
        return exit_for_signal(exc.signum)
    except KeyboardInterrupt:  # Ctrl-C while waiting for an answer
        return EXIT_INTERRUPTED
    if result is None:
        return EXIT_OK
    try:
        print(to_json(result) if args.json else show(result), flush=True)
    except BrokenPipeError:
        quiet_stdout()
    return EXIT_OK
