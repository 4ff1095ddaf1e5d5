"""Logging set-up and error unwrapping shared by the subcommands."""

from __future__ import annotations

import logging
import sys

from rocd.actors import is_cancellation


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def root_error(exc: BaseException) -> BaseException:
    """The one meaningful error inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        real = [e for e in exc.exceptions if not is_cancellation(e)]
        if len(real) != 1:
            break
        exc = real[0]
    return exc
