"""Exit statuses shared by every subcommand."""

#: Clean end (input finished, or stopped by SIGINT/SIGTERM).
EXIT_OK = 0
#: Could not start or failed while running (one line says why).
EXIT_FAILED = 1
#: A bad flag, URI or configuration value (one line names it).
EXIT_USAGE = 2
#: Interrupted by SIGINT (Ctrl-C), the shell's status for it (see `exit_for_signal`).
EXIT_INTERRUPTED = 130


def exit_for_signal(signum: int) -> int:
    """The shell's status for a command a signal ended: 128 + its number (130 for
    SIGINT, 143 for SIGTERM)."""
    return 128 + signum
