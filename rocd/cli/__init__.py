"""The `rocd` command line: one subcommand per module.

    rocd serve   run the daemon (HTTP API, actors, streams)
    rocd send    stream a file, tone or device to a Roc receiver (like roc-send)
    rocd recv    receive Roc streams into a file or device (like roc-recv)
    rocd relay   a seeded UDP impairment relay (loss, delay, jitter, reordering)
    rocd token   API tokens: create (with a role), list, revoke
    rocd ctl     drive the cluster through an instance's API (peers, devices, VADs, streams,
                 events); its own exit statuses say what failed (see _ctl_client)
    rocd scenario  run a multi-instance scenario file and get a verdict (or check it)

Exit statuses: 0 clean end, 1 failure (one line says why), 2 bad usage (one line names it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from rocd import __version__

from . import _ctl, _recv, _relay, _scenario, _send, _serve, _token
from ._exit import EXIT_OK, EXIT_USAGE
from ._pipe import quiet_stdout

COMMANDS = (_serve, _send, _recv, _relay, _token, _ctl, _scenario)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what is wrong, where to look) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rocd", description="Real-time audio streaming daemon (Roc Toolkit 0.4 wire protocol)."
    )
    parser.add_argument("--version", action="version", version=f"rocd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Unknown options are reported before a missing command: `rocd --bogus` is about
    # --bogus, not about the command it lacks.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        where = parser if args.command is None else _subparser(parser, args.command)
        where.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.error("a COMMAND is required: serve, send, recv or relay")
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except BrokenPipeError:  # the reader went away (`| head -1`): done, quietly
        quiet_stdout()
        return EXIT_OK


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub: argparse.ArgumentParser = action.choices[command]
            return sub
    return parser


if __name__ == "__main__":
    sys.exit(main())
