"""`rocd ctl`'s exit statuses: each says what failed, so scripts can tell a missing
resource from a refused token or an unreachable daemon."""

from ._exit import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

#: The API did not answer: refused, unknown host, no answer within --timeout, or the
#: event stream was cut by the daemon going away.
EXIT_UNREACHABLE = 3
#: 401 / 403: no token, an unknown one, a role too low, or a cross-site refusal.
EXIT_DENIED = 4
#: 404: no such peer, device, VAD or stream.
EXIT_NOT_FOUND = 5
#: 409: the instance cannot do that now or this way (a driver off, a peer not reached).
EXIT_CONFLICT = 6
#: 5xx: the daemon or the cluster failed (an actor busy, a peer offline or too slow,
#: the state file full, a bug); trying again later may work.
EXIT_UNAVAILABLE = 7
#: `events`: fewer events than --count came within --within seconds.
EXIT_TIMEOUT = 8

#: What each exit status means (for --help and the README).
EXIT_STATUSES = {
    EXIT_OK: "done",
    EXIT_FAILED: "any other failure (an answer that is not rocd's)",
    EXIT_USAGE: "bad usage: a flag, or a value the API refuses (400, 422)",
    EXIT_UNREACHABLE: "the API cannot be reached, or did not answer in time",
    EXIT_DENIED: "not allowed: no token, an unknown one, a role too low (401, 403)",
    EXIT_NOT_FOUND: "no such peer, device, VAD or stream (404)",
    EXIT_CONFLICT: "the instance cannot do that now (409)",
    EXIT_UNAVAILABLE: "the daemon or a peer failed or is busy (5xx)",
    EXIT_TIMEOUT: "events: not enough events within --within",
    EXIT_INTERRUPTED: "interrupted by Ctrl-C (SIGINT; 143 for SIGTERM), quietly",
}

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_DENIED",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_STATUSES",
    "EXIT_TIMEOUT",
    "EXIT_UNAVAILABLE",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
]
