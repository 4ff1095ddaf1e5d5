"""`rocd ctl events`: WS /events printed as it comes, one event per line.

The connection is this module's own TCP stream, closed whatever happens (trio-websocket's
client leaves it open when the handshake is refused, or when the daemon closes first).
The token goes in the Authorization header, never in the URL (which logs keep). A refused
handshake carries the API's error body, shown as any other error answer.
"""

from __future__ import annotations

import signal
import urllib.parse

import msgspec
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, HandshakeError, wrap_client_stream

from rocd.actors import Event

from . import _ctl_views as views
from ._ctl_client import Client, CtlError, api_error
from ._ctl_exit import EXIT_TIMEOUT, EXIT_UNAVAILABLE, EXIT_UNREACHABLE
from ._pipe import quiet_stdout

#: WebSocket close codes the daemon uses: shutting down, and "you read too slowly".
CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013


async def _connect(c: Client) -> trio.SocketStream | trio.SSLStream[trio.SocketStream]:
    parts = urllib.parse.urlsplit(c.base)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "localhost"
    if parts.scheme == "https":
        return await trio.open_ssl_over_tcp_stream(host, port)
    return await trio.open_tcp_stream(host, port)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _failure(c: Client, exc: BaseException) -> CtlError | None:
    """What to tell the user of a connection that failed (None: a bug, let it through)."""
    for leaf in _leaves(exc):
        if isinstance(leaf, ConnectionRejected):
            return api_error(leaf.status_code, leaf.body or b"")
        if isinstance(leaf, ConnectionClosed):
            reason = leaf.reason
            code = reason.code if reason else 1006
            why = f"{(reason.reason or reason.name) if reason else 'cut'} ({code})"
            status = EXIT_UNAVAILABLE if code == CLOSE_TRY_AGAIN_LATER else EXIT_UNREACHABLE
            return CtlError(f"the daemon closed the event stream: {why}", status)
        if isinstance(leaf, trio.TooSlowError):
            return CtlError(
                f"the API at {c.base} did not answer within {c.timeout:g} s", EXIT_UNREACHABLE
            )
        if isinstance(leaf, HandshakeError | OSError):
            return c.unreachable(leaf)
        if isinstance(leaf, msgspec.MsgspecError):
            return CtlError(f"a message that is not a rocd event: {leaf}")
    return None


class Interrupted(Exception):
    """SIGINT or SIGTERM ended the command (quietly, with the shell's status for it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


async def follow_events(
    c: Client, query: dict[str, str], wanted: int | None, within: float | None, as_json: bool
) -> None:
    """Print events as they come, until `wanted` of them or `within` seconds (a CtlError,
    EXIT_TIMEOUT). SIGINT or SIGTERM ends it at once with Interrupted (after what was
    printed)."""
    parts = urllib.parse.urlsplit(c.base)
    resource = f"{parts.path}/events" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    headers = [(k.lower().encode(), v.encode()) for k, v in c.headers().items()]
    decoder, encode = msgspec.json.Decoder(Event), msgspec.json.encode
    printed = 0
    failure: CtlError | None = None

    async def read(done: trio.CancelScope) -> None:
        nonlocal printed, failure
        try:
            async with trio.open_nursery() as inner:
                with trio.fail_after(c.timeout):
                    stream = await _connect(c)
                try:
                    with trio.fail_after(c.timeout):
                        ws = await wrap_client_stream(
                            inner, stream, parts.netloc, resource, extra_headers=headers
                        )
                    while wanted is None or printed < wanted:
                        event = decoder.decode(await ws.get_message())
                        line = encode(event).decode() if as_json else views.event(event)
                        try:
                            print(line, flush=True)
                        except BrokenPipeError:
                            quiet_stdout()
                            break  # the reader went away (| head): done
                        printed += 1
                    await ws.aclose()
                finally:
                    await stream.aclose()
        except Exception as exc:  # a refusal raised in trio-websocket's reader: a group
            failure = _failure(c, exc)
            if failure is None:
                raise
        done.cancel()

    stopped_by: int | None = None

    async def stop_on_signal(done: trio.CancelScope) -> None:
        nonlocal stopped_by
        # Caught only while events are read, then given back: a late second Ctrl-C is a
        # KeyboardInterrupt that the `rocd` entry point ends quietly (rocd._entry).
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                stopped_by = signum if stopped_by is None else stopped_by
                done.cancel()

    with trio.CancelScope() as scope:
        if within is not None:
            scope.deadline = trio.current_time() + within
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_on_signal, nursery.cancel_scope)
            nursery.start_soon(read, nursery.cancel_scope)
    if stopped_by is not None:
        raise Interrupted(stopped_by)
    if failure is not None:
        raise failure
    if scope.cancelled_caught and wanted is not None and printed < wanted:
        raise CtlError(f"{printed} of {wanted} events within {within:g} s", EXIT_TIMEOUT)
