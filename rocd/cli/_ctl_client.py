"""The HTTP API from `rocd ctl`: requests built and answers read with the API's own models.

Bodies are checked against the model the API decodes them into (msgspec.convert, with the
API's own wording of a refusal) before they are sent, and answers are decoded into the
model the API encodes them from: one copy of the shapes, in rocd.actors and rocd.api.

Every failure is a CtlError carrying one line and the exit status that says what failed
(see _ctl_exit); an error answer's line is the API's own `message`.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, TypeVar

import msgspec

from rocd.api import ErrorBody
from rocd.api._routes import integral_floats_as_ints, validation_error

from ._ctl_exit import (
    EXIT_CONFLICT,
    EXIT_DENIED,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_UNAVAILABLE,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)

T = TypeVar("T")


class CtlError(Exception):
    """A failure to report in one line, with the exit status that says what failed."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def exit_status(http_status: int) -> int:
    """The exit status for an error answer of the API."""
    if http_status in (400, 413, 415, 422):
        return EXIT_USAGE
    if http_status in (401, 403):
        return EXIT_DENIED
    if http_status == 404:
        return EXIT_NOT_FOUND
    if http_status == 409:
        return EXIT_CONFLICT
    if http_status >= 500:
        return EXIT_UNAVAILABLE
    return EXIT_FAILED


def api_error(http_status: int, body: bytes) -> CtlError:
    """An error answer as one line: the API's message, its status and code."""
    try:
        error = msgspec.json.decode(body, type=ErrorBody)
    except (msgspec.MsgspecError, UnicodeDecodeError):  # msgspec's own, for non-UTF-8
        text = body.decode(errors="replace").strip().splitlines()
        return CtlError(
            f"HTTP {http_status}: {text[0][:200] if text else 'no body'} (not rocd's answer?)"
        )
    return CtlError(f"{error.message} ({http_status} {error.error})", exit_status(http_status))


def checked(value: dict[str, Any], model: type[T]) -> T:
    """`value` as the API's body model, refused with the API's own words (exit 2)."""
    try:
        return msgspec.convert(integral_floats_as_ints(value), type=model)
    except msgspec.ValidationError as exc:
        raise CtlError(validation_error(exc, "body").message, EXIT_USAGE) from None


def segment(text: str) -> str:
    """One path segment (a device id may hold any character, "/" included)."""
    return urllib.parse.quote(text, safe="")


class Client:
    """Requests to one rocd API (`base` like http://127.0.0.1:4610)."""

    def __init__(self, base: str, token: str | None, timeout: float) -> None:
        usage = CtlError(f"--api {base!r}: give the API's URL, like http://HOST:PORT", EXIT_USAGE)
        try:
            parts = urllib.parse.urlsplit(base.strip())
            parts.port  # noqa: B018 (a port that is no number, or beyond 65535, raises)
        except ValueError:
            raise usage from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise usage
        self.base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self.token = token or None
        self.timeout = timeout

    @property
    def ws_base(self) -> str:
        return "ws" + self.base[len("http") :]

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "rocd-ctl"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def call(
        self,
        method: str,
        path: str,
        into: type[T],
        *,
        body: msgspec.Struct | None = None,
        query: dict[str, str] | None = None,
    ) -> T:
        """One request; the answer decoded into `into` (None for an empty answer)."""
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None
        headers = self.headers()
        if body is not None:
            data = msgspec.json.encode(body)
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            with exc:
                raise api_error(exc.code, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            raise self.unreachable(exc) from None
        if not raw:
            return None  # type: ignore[return-value]
        try:
            return msgspec.json.decode(raw, type=into)
        except (msgspec.MsgspecError, UnicodeDecodeError) as exc:  # the latter: not UTF-8
            raise CtlError(f"{method} {path}: the answer is not rocd's: {exc}") from None

    def unreachable(self, exc: BaseException) -> CtlError:
        reason = getattr(exc, "reason", None) or exc  # urllib wraps the OSError
        while not str(reason) and reason.__cause__ is not None:  # trio-websocket's wrapping
            reason = reason.__cause__
        if isinstance(reason, socket.timeout | TimeoutError):
            return CtlError(
                f"the API at {self.base} did not answer within {self.timeout:g} s", EXIT_UNREACHABLE
            )
        why = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
        return CtlError(f"cannot reach the API at {self.base}: {why}", EXIT_UNREACHABLE)


def to_json(value: Any) -> str:
    """The API's JSON of a decoded answer (the same fields, indented for reading)."""
    return json.dumps(msgspec.to_builtins(value), indent=2, ensure_ascii=False)
