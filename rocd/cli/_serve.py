"""`rocd serve`: run the daemon until SIGINT/SIGTERM.

Exit status: 0 after a clean stop, 2 for a bad flag or config file (one line naming the
field), 1 when the daemon cannot start or fails (one line saying why; the log has more).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import trio

from rocd.actors import ClusterListenError, StateDirBusy, StateError
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
from ._run import describe_os_error, first_error
from ._signals import catch_stop_signals

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
    """Run the daemon until SIGINT/SIGTERM. A later signal hurries the stop (open requests
    lose their grace) but never skips what keeps data: state and recordings are flushed
    whatever comes; see `catch_stop_signals`."""
    from rocd.daemon import Daemon

    daemon = Daemon(config)
    start_scope = trio.CancelScope()
    starting: trio.CancelScope | None = start_scope

    def on_signal(_name: str, count: int) -> None:
        if count == 1:
            daemon.request_stop()  # graceful: takes effect once started
        elif starting is not None:
            # Still starting (a sound server that does not come up...): give up the
            # start. Actors already running still get their shielded on_stop.
            starting.cancel(reason="second signal while starting")
        else:
            daemon.hurry_stop()

    async with catch_stop_signals(on_signal), trio.open_nursery() as nursery:
        with start_scope:
            await nursery.start(daemon.run)
        starting = None
    return EXIT_OK


def check_state_dir(path: Path) -> str | None:
    """Why the state directory `path` cannot be used (made if missing), or None."""
    if path.exists() and not path.is_dir():
        return f"state directory {path} is not a directory"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create state directory {path}: {exc.strerror or exc}"
    return None


def run(args: argparse.Namespace) -> int:
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
    problem = check_state_dir(config.state_path)
    if problem is not None:
        print(f"rocd: {problem}", file=sys.stderr)
        return EXIT_FAILED
    try:
        return trio.run(serve, config)
    except BaseException as exc:
        cause = first_error(exc)
        if isinstance(cause, KeyboardInterrupt):
            return EXIT_OK
        if isinstance(cause, StateDirBusy):
            print(f"rocd: {cause}", file=sys.stderr)
        elif isinstance(cause, StateError):
            print(f"rocd: state file unusable: {cause}", file=sys.stderr)
        elif isinstance(cause, ClusterListenError):
            print(f"rocd: {cause.strerror}", file=sys.stderr)
        elif isinstance(cause, OSError) and cause.filename:
            print(f"rocd: {describe_os_error(cause)}", file=sys.stderr)
        elif isinstance(cause, OSError):
            where = f"{config.api.host}:{config.api.port}"
            print(f"rocd: cannot listen on {where}: {cause.strerror or cause}", file=sys.stderr)
        else:
            log.critical("rocd failed", exc_info=exc)
            print(f"rocd: failed: {cause!r}", file=sys.stderr)
        return EXIT_FAILED
