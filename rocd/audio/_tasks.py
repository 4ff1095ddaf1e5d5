"""A nursery for context managers that run background tasks around their body.

Trio wraps every exception leaving a nursery in an ExceptionGroup. For a context manager
such as `open_capture`, whose nursery only holds the stream's own pump, that would turn
the caller's own `StreamBroken` (or any error in the `async with` body) into a group the
caller did not ask for. A lone exception is therefore passed on as itself; several stay
grouped.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio


@asynccontextmanager
async def open_service_nursery() -> AsyncIterator[trio.Nursery]:
    """`trio.open_nursery()`, but a single failure propagates unwrapped."""
    try:
        async with trio.open_nursery() as nursery:
            yield nursery
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
