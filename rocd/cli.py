"""The `rocd` command line.

    rocd serve [--config FILE] [--api HOST:PORT] [--state-dir DIR] [--name NAME] [-v]

Exit status: 0 after a clean stop (SIGINT/SIGTERM), 2 for a bad flag or config file (one
line naming the field), 1 when the daemon cannot start or fails (one line saying why; the
log has the details).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from rocd import __version__
from rocd.actors import StateError, is_cancellation
from rocd.config import DEFAULT_API_PORT, Config, ConfigError, load_config, with_overrides

log = logging.getLogger("rocd")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rocd", description="Real-time audio streaming daemon (Roc Toolkit 0.4 wire protocol)."
    )
    parser.add_argument("--version", action="version", version=f"rocd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the daemon (HTTP API, actors, streams)")
    serve.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file")
    serve.add_argument(
        "--api",
        metavar="HOST:PORT",
        help=f"where the HTTP API listens (default 127.0.0.1:{DEFAULT_API_PORT})",
    )
    serve.add_argument(
        "--state-dir", metavar="DIR", help="state directory (default: user data dir)"
    )
    serve.add_argument("--name", help="display name of this instance (kept across restarts)")
    serve.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return parser


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _root_error(exc: BaseException) -> BaseException:
    """The one meaningful error inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        real = [e for e in exc.exceptions if not is_cancellation(e)]
        if len(real) != 1:
            break
        exc = real[0]
    return exc


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = with_overrides(
            load_config(args.config),
            api=args.api,
            state_dir=args.state_dir,
            name=args.name,
            log_level="debug" if args.verbose else None,
        )
    except ConfigError as exc:
        print(f"rocd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(config.log_level)
    try:
        return trio.run(serve, config)
    except BaseException as exc:
        cause = _root_error(exc)
        if isinstance(cause, KeyboardInterrupt):
            return EXIT_OK
        if isinstance(cause, StateError):
            print(f"rocd: state file unusable: {cause}", file=sys.stderr)
        elif isinstance(cause, OSError):
            host, port = config.api.host, config.api.port
            print(
                f"rocd: cannot listen on {host}:{port}: {cause.strerror or cause}", file=sys.stderr
            )
        else:
            log.critical("rocd failed", exc_info=exc)
            print(f"rocd: failed: {cause!r}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
