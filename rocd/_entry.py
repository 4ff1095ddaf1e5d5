"""The `rocd` command's entry point: a Ctrl-C at any moment ends it quietly.

The commands catch SIGINT themselves once they run, but the first half second of every
`rocd ...` goes to importing the project (Trio, msgspec, the actors): a Ctrl-C there, or
anywhere no command catches it, would print Python's traceback. This module imports
nothing but the command line itself, inside the guard, and ends such an interruption
with the shell's status for SIGINT (130) and no output.
"""

from __future__ import annotations

#: The shell's status for a command SIGINT ended (128 + 2); rocd.cli._exit has the same.
_INTERRUPTED = 130


def main() -> int:
    try:
        from rocd.cli import main as run

        return run()
    except KeyboardInterrupt:
        import signal  # not before: nothing is imported outside the guard

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C adds nothing
        return _INTERRUPTED
