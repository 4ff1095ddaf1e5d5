"""SIGINT/SIGTERM for the whole life of a command, so a stop never loses what it finishes.

A stop signal rarely comes alone: `timeout N cmd` sends SIGTERM to the command and then to
its whole process group (the command gets it twice), and a user presses Ctrl-C twice when
the first seems slow. A handler that is removed once the first signal arrived (as
`trio.open_signal_receiver` is when its block ends) lets the second one kill the process
in the middle of its shutdown: a recording without its end, a sender without its BYE.

`catch_stop_signals` therefore keeps both signals caught from the start of the command to
its very end: the first one asks the command to stop (`on_signal(name, 1)`); every later
one is passed on too (`on_signal(name, n)`), for the command to hurry what may be hurried,
and is otherwise absorbed. Once the block is left (files finished, sockets closed) both
signals are ignored for the few milliseconds the process has left, so that even then a
late one cannot turn a clean exit into a killed one.

SIGKILL cannot be caught: it is what stops a command that hangs in its shutdown (a WAV
recording is still a valid file then, see `rocd.audio.Recording`).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

__all__ = ["OnSignal", "catch_stop_signals"]

log = logging.getLogger("rocd.signals")

#: on_signal(signal name, how many stop signals so far): called in the Trio thread.
OnSignal = Callable[[str, int], None]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@asynccontextmanager
async def catch_stop_signals(on_signal: OnSignal) -> AsyncIterator[None]:
    """Catch SIGINT and SIGTERM until the block is left, then ignore them (see the module
    docstring). Must be entered from the main thread, inside `trio.run`."""
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_dispatch, signals, on_signal)
            try:
                yield
            finally:
                nursery.cancel_scope.cancel(reason="command finished")
    # What the command had to finish is finished: nothing left for a signal to spoil.
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


async def _dispatch(signals: AsyncIterator[int], on_signal: OnSignal) -> None:
    count = 0
    async for signum in signals:
        count += 1
        name = signal.Signals(signum).name
        if count == 1:
            log.info("%s: stopping", name)
        else:
            log.info("%s again: still stopping (finishing what must be finished)", name)
        on_signal(name, count)
