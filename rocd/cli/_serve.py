"""`rocd serve`: run the daemon until SIGINT/SIGTERM.

Exit status: 0 after a clean stop, 2 for a bad flag or config file (one line naming the
field), 1 when the daemon cannot start or fails (one line saying why; the log has more).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import trio

from rocd.actors import ClusterListenError, StateError, root_cause
from rocd.config import (
    DEFAULT_API_PORT,
    DEFAULT_CLUSTER_PORT,
    Config,
    ConfigError,
    load_config,
    with_overrides,
)

from ._exit import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ._logging import setup_logging

log = logging.getLogger("rocd")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the daemon (HTTP API, actors, streams)")
    serve.add_argument("--config", metavar="FILE", help="TOML configuration file")
    serve.add_argument(
        "--api",
        metavar="HOST:PORT",
        help=f"where the HTTP API listens (default 127.0.0.1:{DEFAULT_API_PORT})",
    )
    serve.add_argument(
        "--state-dir", metavar="DIR", help="state directory (default: the user's data dir)"
    )
    serve.add_argument("--name", help="display name of this instance (kept across restarts)")
    serve.add_argument(
        "--cluster",
        metavar="HOST:PORT",
        help=f"where the cluster listener listens (default 0.0.0.0:{DEFAULT_CLUSTER_PORT})",
    )
    serve.add_argument(
        "--join",
        metavar="TOKEN",
        help="join another instance with a token from its POST /cluster/invites",
    )
    serve.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    serve.set_defaults(run=run)


async def serve(config: Config) -> int:
    """Run the daemon until SIGINT/SIGTERM; a second signal stops it at once."""
    from rocd.daemon import Daemon

    daemon = Daemon(config)
    async with trio.open_nursery() as nursery:

        async def watch_signals() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                first = True
                async for signum in signals:
                    log.info("%s received", signal.Signals(signum).name)
                    if first:
                        daemon.request_stop()  # graceful: takes effect once started
                        first = False
                    else:
                        nursery.cancel_scope.cancel(reason="second signal")

        nursery.start_soon(watch_signals)
        await daemon.run()
        nursery.cancel_scope.cancel()
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        config = with_overrides(
            load_config(Path(args.config) if args.config else None),
            api=args.api,
            state_dir=args.state_dir,
            name=args.name,
            log_level="debug" if args.verbose else None,
            cluster=args.cluster,
            join=args.join,
        )
    except ConfigError as exc:
        print(f"rocd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(config.log_level)
    try:
        return trio.run(serve, config)
    except BaseException as exc:
        cause = root_cause(exc)
        if isinstance(cause, KeyboardInterrupt):
            return EXIT_OK
        if isinstance(cause, StateError):
            print(f"rocd: state file unusable: {cause}", file=sys.stderr)
        elif isinstance(cause, ClusterListenError):
            print(f"rocd: {cause.strerror}", file=sys.stderr)
        elif isinstance(cause, OSError):
            where = f"{config.api.host}:{config.api.port}"
            print(f"rocd: cannot listen on {where}: {cause.strerror or cause}", file=sys.stderr)
        else:
            log.critical("rocd failed", exc_info=exc)
            print(f"rocd: failed: {cause!r}", file=sys.stderr)
        return EXIT_FAILED
