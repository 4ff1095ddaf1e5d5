"""One connection to a sound server through libpulse (pulsectl), on its own thread.

Why libpulse and not `pactl -f json`: pactl's JSON writer prints "(null)" for every string
holding a non-ASCII character (PulseAudio 16.1, any locale), so a device named "Küche"
could not be read; libpulse hands the strings over as they are. It is also ~30x cheaper
than spawning pactl (0.3 ms against 10 ms a listing).

libpulse (and pulsectl over it) is blocking and not thread-safe, so one dedicated thread
owns the connection: it runs the calls Trio tasks hand it, one at a time, and in between
waits in libpulse's poll for server events (sinks and sources added, changed, removed),
which it passes on to Trio without blocking. A call wakes the thread through an eventfd
added to libpulse's poll set (pulsectl's own `event_listen_stop` can be lost when it comes
just before the poll starts). When the server goes away the thread ends: pending and later
calls raise DriverUnavailable and the `changes` channel closes.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import outcome
import pulsectl
import trio
from pulsectl import _pulsectl as _pa

from ._errors import AudioError, DriverUnavailable

T = TypeVar("T")


class _SinkEntry(pulsectl.PulseSinkInfo):  # type: ignore[misc]
    def _init_from_struct(self, struct: Any) -> None:
        super()._init_from_struct(struct)
        self.rate = int(struct.sample_spec.rate)  # read while libpulse's memory is valid


class _SourceEntry(pulsectl.PulseSourceInfo):  # type: ignore[misc]
    def _init_from_struct(self, struct: Any) -> None:
        super()._init_from_struct(struct)
        self.rate = int(struct.sample_spec.rate)


class RocdPulse(pulsectl.Pulse):  # type: ignore[misc]
    """pulsectl.Pulse whose sink and source entries copy their sample rate at once.

    pulsectl keeps `sample_spec` as a ctypes view into the info struct libpulse frees when
    its callback returns; read later, the rate was garbage (32640 for 44100, now and then).
    Entries made here carry `rate` (and pulsectl's own `channel_count`) instead.
    """

    sink_list = pulsectl.Pulse._pulse_get_list(
        _pa.PA_SINK_INFO_CB_T, _pa.pa.context_get_sink_info_list, _SinkEntry
    )
    source_list = pulsectl.Pulse._pulse_get_list(
        _pa.PA_SOURCE_INFO_CB_T, _pa.pa.context_get_source_info_list, _SourceEntry
    )


#: Seconds leaving `open_pulse_link` waits for the thread to end.
CLOSE_WAIT_S = 0.25
#: Server events that change what a driver lists.
_FACILITIES = ("sink", "source")


class PulseLink:
    """Calls into one server, and the facilities of its events; see the module docstring."""

    def __init__(self, server: str | None, *, client_name: str = "rocd") -> None:
        self.server = server
        self.client_name = client_name
        self._token = trio.lowlevel.current_trio_token()
        self._queue: collections.deque[tuple[Callable[[pulsectl.Pulse], Any], Any]] = (
            collections.deque()
        )
        self._lock = threading.Lock()  # guards _queue and _dead between the two threads
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._dead: str | None = None  # why the connection is gone
        self._send, self.changes = trio.open_memory_channel[str](1)
        self._thread: threading.Thread | None = None
        self._wake_closed = False
        self._done = trio.Event()
        self._pulse: pulsectl.Pulse | None = None

    # -- Trio side -----------------------------------------------------------------------

    async def start(self, connect_within: float) -> None:
        """Connect (in the thread); DriverUnavailable if the server does not answer."""
        connected = trio.Event()
        result: list[BaseException | None] = []

        def report(error: BaseException | None) -> None:
            result.append(error)
            connected.set()

        self._thread = threading.Thread(
            target=self._main, args=(report,), name="rocd-pulse", daemon=True
        )
        self._thread.start()
        with trio.move_on_after(connect_within):
            await connected.wait()
        if not result:
            self.close()  # the thread ends when libpulse gives up
            raise DriverUnavailable(
                f"Connection timed out after {connect_within:g} s at {self._where}"
            )
        if result[0] is not None:
            raise DriverUnavailable(str(result[0]) or "sound server unreachable")

    async def call(self, fn: Callable[[pulsectl.Pulse], T]) -> T:
        """`fn(pulse)` run on the link's thread. Raises DriverUnavailable when the server
        is gone, AudioError when the server refused. On cancellation the call may still
        run; its result is dropped."""
        done = trio.Event()
        box: list[outcome.Outcome[T]] = []

        def deliver(result: outcome.Outcome[T]) -> None:
            box.append(result)
            done.set()

        with self._lock:
            if self._dead is not None:
                raise DriverUnavailable(self._dead)
            self._queue.append((fn, deliver))
        os.eventfd_write(self._wake_fd, 1)
        await done.wait()
        return box[0].unwrap()

    def close(self) -> None:
        """Stop the thread (it closes the connection); returns at once."""
        with self._lock:
            if self._dead is None:
                self._dead = "the sound server connection was closed"
        if not self._wake_closed:
            os.eventfd_write(self._wake_fd, 1)

    # -- the link's thread ----------------------------------------------------------------

    @property
    def _where(self) -> str:
        return self.server or "the default address"

    def _main(self, report: Callable[[BaseException | None], None]) -> None:
        reason = "the sound server closed the connection"
        try:
            pulse = RocdPulse(self.client_name, server=self.server, connect=False)
        except Exception as exc:  # libpulse missing or broken
            self._to_trio(report, DriverUnavailable(f"libpulse: {exc}"))
            self._finish(f"libpulse: {exc}")
            return
        try:
            try:
                # No timeout here: pulsectl's own polls until its deadline even once
                # connected (5 s lost at every start); the Trio side waits with one.
                pulse.connect(autospawn=False, wait=False)
                pulse.set_poll_func(self._poll)
                pulse.event_mask_set(*_FACILITIES)
                pulse.event_callback_set(self._on_event)
            except Exception:
                reason = f"Connection failure: no sound server answers at {self._where}"
                self._to_trio(report, DriverUnavailable(reason))
                return
            self._pulse = pulse
            self._to_trio(report, None)
            reason = self._serve(pulse)
        finally:
            with contextlib.suppress(Exception):
                pulse.close()
            self._finish(reason)

    def _serve(self, pulse: pulsectl.Pulse) -> str:
        while True:
            while True:
                with self._lock:
                    if self._dead is not None:
                        return self._dead
                    if not self._queue:
                        break
                    fn, deliver = self._queue.popleft()
                try:
                    result: outcome.Outcome[Any] = outcome.Value(fn(pulse))
                except pulsectl.PulseDisconnected:
                    self._to_trio(deliver, outcome.Error(DriverUnavailable("gone")))
                    return "the sound server closed the connection"
                except pulsectl.PulseError as exc:
                    error = AudioError(f"sound server refused: {exc or type(exc).__name__}")
                    result = outcome.Error(error)
                except Exception as exc:
                    result = outcome.Error(exc)
                self._to_trio(deliver, result)
                if not pulse.connected:
                    return "the sound server closed the connection"
            try:
                pulse.event_listen()
            except pulsectl.PulseDisconnected:
                return "the sound server closed the connection"

    def _poll(self, fds: list[Any], timeout: float) -> int:
        """libpulse's poll, plus the wake-up eventfd (see the module docstring)."""
        poller = select.poll()
        for entry in fds:
            entry.revents = 0
            poller.register(entry.fd, entry.events)
        poller.register(self._wake_fd, select.POLLIN)
        ready = poller.poll(None if timeout < 0 else timeout * 1000)
        count = 0
        for fd, events in ready:
            if fd == self._wake_fd:
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(self._wake_fd)
                if self._pulse is not None:
                    self._pulse.event_listen_stop()  # after the poll began: never lost
                continue
            for entry in fds:
                if entry.fd == fd:
                    entry.revents = events
                    count += 1
        return count

    def _on_event(self, event: Any) -> None:
        self._to_trio(self._changed, str(event.facility))

    def _changed(self, facility: str) -> None:  # on the Trio thread
        with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
            self._send.send_nowait(facility)  # one pending change is as good as many

    def _finish(self, reason: str) -> None:
        with self._lock:
            if self._dead is None:
                self._dead = reason
            pending = list(self._queue)
            self._queue.clear()
        for _, deliver in pending:
            self._to_trio(deliver, outcome.Error(DriverUnavailable(reason)))
        self._to_trio(self._closed)

    def _to_trio(self, fn: Callable[..., object], *args: Any) -> None:
        """Run `fn(*args)` on the Trio thread soon (nothing if Trio has finished)."""
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(fn, *args)

    def _closed(self) -> None:  # on the Trio thread, once the link's thread is done
        self._send.close()
        os.close(self._wake_fd)
        self._wake_closed = True
        self._done.set()

    async def wait_closed(self) -> None:
        """Until the link's thread has ended (after `close`, or the server went away)."""
        await self._done.wait()


@asynccontextmanager
async def open_pulse_link(
    server: str | None, connect_within: float = 5.0
) -> AsyncIterator[PulseLink]:
    """A connected link while the context is open (DriverUnavailable if it cannot be)."""
    link = PulseLink(server)
    try:
        await link.start(connect_within)
        yield link
    finally:
        link.close()
        # Normally a few ms (the thread is woken and closes the connection). A call still
        # waiting on a server that does not answer keeps its thread until the server
        # answers or goes; shutdown does not wait for that (it is a daemon thread).
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_WAIT_S):
            await link.wait_closed()
