"""Reading Trio's exception groups: the one real error inside, or only cancellation.

Kept apart from the actors that use them most so the command line can import them
without the daemon."""

from __future__ import annotations

import trio

__all__ = ["is_cancellation", "root_cause"]


def root_cause(exc: BaseException) -> BaseException:
    """The one real error inside nested single-exception groups (for logs and events)."""
    while isinstance(exc, BaseExceptionGroup):
        real = [e for e in exc.exceptions if not is_cancellation(e)]
        if len(real) != 1:
            break
        exc = real[0]
    return exc


def is_cancellation(exc: BaseException) -> bool:
    """True for trio.Cancelled and for exception groups made only of cancellations."""
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(is_cancellation(e) for e in exc.exceptions)
    return False
