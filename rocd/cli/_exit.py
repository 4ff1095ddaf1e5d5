"""Exit statuses shared by every subcommand."""

#: Clean end (input finished, or stopped by SIGINT/SIGTERM).
EXIT_OK = 0
#: Could not start or failed while running (one line says why).
EXIT_FAILED = 1
#: A bad flag, URI or configuration value (one line names it).
EXIT_USAGE = 2
