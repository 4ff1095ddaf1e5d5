"""Running a subcommand under Trio, and turning what went wrong into one line + a status.

Whatever fails, the user sees one line naming what is wrong (never a traceback or an
exception group): status 2 for a bad option, URI or value (`UsageError`, or a ValueError
from checking a value), 1 for what the machine refused at run time (a port in use, a file
that cannot be read or written, `AudioError`, `OSError`). Anything else is a bug: one line
too, and the traceback in the log at critical level.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Awaitable, Callable

import trio

from rocd._exception_groups import is_cancellation, root_cause
from rocd.audio import AudioError
from rocd.net.roc import ListenError

from ._exit import EXIT_FAILED, EXIT_OK, EXIT_USAGE

log = logging.getLogger("rocd.cli")


class UsageError(ValueError):
    """A malformed option, URI or value (exit status 2)."""


def first_error(exc: BaseException) -> BaseException:
    """The error to report: the one real error inside (nested) exception groups, or the
    first of several (cancellations skipped)."""
    exc = root_cause(exc)
    while isinstance(exc, BaseExceptionGroup):
        real = [e for e in exc.exceptions if not is_cancellation(e)]
        exc = root_cause(real[0] if real else exc.exceptions[0])
    return exc


def describe_os_error(exc: OSError) -> str:
    """'Address already in use', or 'PATH: No such file or directory' when it names a file."""
    if isinstance(exc, ListenError):
        return str(exc)  # 'cannot listen on HOST:PORT: Address already in use'
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def run_command(
    command: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace
) -> int:
    """Run `command(args)` under Trio; its failures become one line and an exit status."""
    prog = f"rocd {args.command}"
    try:
        status: int = trio.run(command, args)
    except BaseException as exc:
        cause = first_error(exc)
        if isinstance(cause, KeyboardInterrupt):
            return EXIT_OK  # Ctrl-C before the command could catch it: nothing started
        if isinstance(cause, UsageError):
            print(f"{prog}: {cause}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(cause, AudioError):
            print(f"{prog}: {cause}", file=sys.stderr)
            return EXIT_FAILED
        if isinstance(cause, OSError):
            print(f"{prog}: {describe_os_error(cause)}", file=sys.stderr)
            return EXIT_FAILED
        log.critical("failed", exc_info=exc)
        print(f"{prog}: failed: {cause!r}", file=sys.stderr)
        return EXIT_FAILED
    return status
