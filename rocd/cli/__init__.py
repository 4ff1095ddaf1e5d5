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
import importlib
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import NoReturn

from rocd import __version__

from ._exit import EXIT_OK, EXIT_USAGE
from ._pipe import quiet_stdout

COMMANDS = {
    "serve": "_serve",
    "send": "_send",
    "recv": "_recv",
    "relay": "_relay",
    "token": "_token",
    "ctl": "_ctl",
    "scenario": "_scenario",
}
"""Command -> its module. Only the module of the command given is imported: each pulls in
what it runs (the daemon, the transport, the scenario runner), and a start-up that
imports them all costs `rocd send` and every `rocd ctl` call a few hundred ms."""


def _modules(argv: Sequence[str]) -> list[ModuleType]:
    """The modules whose parsers `argv` needs: its command's, or all (help, errors)."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command is None and "--version" in argv:
        return []
    names = [COMMANDS[command]] if command in COMMANDS else list(COMMANDS.values())
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what is wrong, where to look) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser with every command, or only the one `argv` names."""
    parser = Parser(
        prog="rocd", description="Real-time audio streaming daemon (Roc Toolkit 0.4 wire protocol)."
    )
    parser.add_argument("--version", action="version", version=f"rocd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in _modules([] if argv is None else argv):
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    # Unknown options are reported before a missing command: `rocd --bogus` is about
    # --bogus, not about the command it lacks.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        where = parser if args.command is None else _subparser(parser, args.command)
        where.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.error(f"a COMMAND is required: {', '.join(COMMANDS)}")
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
