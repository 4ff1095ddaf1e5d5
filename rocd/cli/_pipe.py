"""Output to a reader that may go away (`rocd ... | head -1`): no traceback, no second
error when the interpreter flushes stdout at exit, and the command carries on to its own
exit status (a scenario's verdict, a check of every file)."""

from __future__ import annotations

import os
import sys


def quiet_stdout() -> None:
    """After a broken pipe: send what is left of stdout nowhere (no second error at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def say(text: str) -> None:
    """Print a line on stdout now; a reader that went away only silences the rest."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        quiet_stdout()
