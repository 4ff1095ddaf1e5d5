"""An answer sent before the request's body arrived closes the connection, for real.

Why (hypercorn 0.18 with h11 0.16 and quart-trio 0.12, the newest on the registry): when
the app answers before the body has arrived (404, 405, 413, a refusal by the guard),
hypercorn cannot take the next request on that connection and means to close it. But it
closes it from the task that sends the answer's last message, after telling the app the
stream is over; quart-trio reacts to that by cancelling its own nursery, which holds that
very task, so the close (`send_eof`, a checkpoint) is cancelled before the socket is
closed. The connection is left open answering nothing: the rest of the body and the next
request are read and dropped, the reader parks for good, and after the client goes the
socket stays in CLOSE-WAIT (one file descriptor leaked per connection).

The wrapper around the ASGI app does two things for HTTP requests:
- an answer that starts while a request body is still unread says `connection: close`,
  so clients know not to send another request on that connection;
- the last message of every answer is sent shielded from cancellation, so the close that
  follows it completes (hypercorn already shields its socket writes; the close is a
  shutdown and a close, no waiting on the peer).
A refused WebSocket handshake (an HTTP answer instead of the upgrade) is the same case:
the connection cannot carry another request, and its close was cancelled the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import trio
from hypercorn.typing import (
    ASGIFramework,
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
    Scope,
)


def _expects_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        name = name.lower()
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            try:
                return int(value) > 0
            except ValueError:
                return True
    return False


class CloseEarlyAnswers:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: ASGIFramework) -> None:
        self.app = app

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "websocket":
            await self.app(scope, receive, _refusals_closing(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        unread = _expects_body(scope["headers"])

        async def receive_noting() -> ASGIReceiveEvent:
            nonlocal unread
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                unread = False
            return message

        async def send_closing(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.start" and unread:
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = cast(ASGISendEvent, {**cast(dict[str, Any], message), "headers": headers})
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with trio.CancelScope(shield=True):
                    await send(message)
                return
            await send(message)

        await self.app(scope, receive_noting, send_closing)


def _refusals_closing(send: ASGISendCallable) -> ASGISendCallable:
    """The same for a refused WebSocket handshake (an HTTP answer instead of the upgrade):
    hypercorn cannot reuse that connection either, and closes it the same way."""

    async def send_closing(message: ASGISendEvent) -> None:
        if message["type"] == "websocket.http.response.start":
            headers = [*message.get("headers", []), (b"connection", b"close")]
            message = cast(ASGISendEvent, {**cast(dict[str, Any], message), "headers": headers})
        last = message["type"] == "websocket.close" or (
            message["type"] == "websocket.http.response.body"
            and not message.get("more_body", False)
        )
        if last:
            with trio.CancelScope(shield=True):
                await send(message)
            return
        await send(message)

    return send_closing
