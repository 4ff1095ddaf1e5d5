"""The `rocd` command line: one subcommand per module.

    rocd serve   run the daemon (HTTP API, actors, streams)
    rocd send    stream a file, tone or device to a Roc receiver (like roc-send)
    rocd recv    receive Roc streams into a file or device (like roc-recv)
    rocd relay   a seeded UDP impairment relay (loss, delay, jitter, reordering)
    rocd token   API tokens: create (with a role), list, revoke
    rocd ctl     drive the cluster through an instance's API (peers, devices, VADs, streams,
                 events); its own exit statuses say what failed (see _ctl_client)

Exit statuses: 0 clean end, 1 failure (one line says why), 2 bad usage (one line names it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from rocd import __version__

from . import _ctl, _recv, _relay, _send, _serve, _token


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rocd", description="Real-time audio streaming daemon (Roc Toolkit 0.4 wire protocol)."
    )
    parser.add_argument("--version", action="version", version=f"rocd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (_serve, _send, _recv, _relay, _token, _ctl):
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
