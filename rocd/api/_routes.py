"""Declaring API operations once: the route, its models, its errors, its handler.

A handler is a plain async function over msgspec models: it receives the decoded body and
query and the path parameters, asks actors, and returns a model. The wrapper around it
does the HTTP part (decode, validate, encode, status), and the same declarations produce
the OpenAPI document, so the document cannot drift from what the server does.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from quart import Quart, request

from rocd.actors import NAME_PATTERN
from rocd.errors import InvalidRequest, bounded

from ._context import ApiContext

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_JSON = {"content-type": "application/json"}


class ErrorBody(msgspec.Struct):
    """The body of every 4xx/5xx answer."""

    error: str  # machine-readable code: not_found, invalid, busy, timeout, ...
    message: str  # one human-readable sentence
    details: list[dict[str, Any]] = []

    def __post_init__(self) -> None:
        self.message = bounded(self.message)


_PARAM = re.compile(r"{(\w+)(:path)?}")


@dataclass(frozen=True)
class Operation:
    method: str
    #: /peers/{uid}; a last parameter written {uid:path} also takes "/" (device ids).
    path: str
    summary: str
    tag: str
    handler: Callable[..., Awaitable[Any]]
    response: Any = None  # type of the success body (None: no body)
    status: int = 200
    body: type[msgspec.Struct] | None = None
    query: type[msgspec.Struct] | None = None
    errors: tuple[int, ...] = ()
    websocket: bool = False
    description: str = ""
    media_type: str = "application/json"  # anything else: the handler returns text
    #: The field of a created resource (201) that names it in `<path>/{uid}` (OpenAPI links).
    link_field: str = "uid"
    #: check(ctx, **kwargs): validation beyond the models, run before the handler (and, for
    #: a WebSocket, before answering a plain request that forgot the upgrade).
    check: Callable[..., Any] | None = None

    @property
    def path_params(self) -> list[str]:
        return [m.group(1) for m in _PARAM.finditer(self.path)]

    @property
    def openapi_path(self) -> str:
        """The path in OpenAPI's syntax (/peers/{peer}/devices/{uid})."""
        return _PARAM.sub(r"{\1}", self.path)

    @property
    def rule(self) -> str:
        """The same path in Quart's syntax."""
        return _PARAM.sub(
            lambda m: f"<path:{m.group(1)}>" if m.group(2) else f"<{m.group(1)}>", self.path
        )


class Api:
    """The set of operations; `install` puts them on a Quart app."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        response: Any = None,
        status: int = 200,
        body: type[msgspec.Struct] | None = None,
        query: type[msgspec.Struct] | None = None,
        errors: tuple[int, ...] = (),
        websocket: bool = False,
        description: str = "",
        media_type: str = "application/json",
        check: Callable[..., Any] | None = None,
        link_field: str = "uid",
    ) -> Callable[[F], F]:
        def register(fn: F) -> F:
            self.operations.append(
                Operation(
                    method.upper(),
                    path,
                    summary,
                    tag,
                    fn,
                    response,
                    status,
                    body,
                    query,
                    errors,
                    websocket,
                    description or (fn.__doc__ or "").strip(),
                    media_type,
                    link_field=link_field,
                    check=check,
                )
            )
            return fn

        return register

    def install(self, app: Quart, ctx: ApiContext) -> None:
        for op in self.operations:
            view = _websocket_view(op, ctx) if op.websocket else _http_view(op, ctx)
            name = f"{op.tag}.{op.handler.__name__}"
            if op.websocket:
                app.add_websocket(op.rule, name, view)
                app.add_url_rule(op.rule, f"{name}.http", _upgrade_view(op, ctx), methods=["GET"])
            else:
                app.add_url_rule(op.rule, name, view, methods=[op.method])


#: Regular expressions of the models, in words (msgspec's message quotes the expression).
#: Patterns of the API's models, with the words a 422 says instead of the regex.
_PATTERN_WORDS = {NAME_PATTERN: "printable text, not only white space"}


def worded_pattern(pattern: str, words: str) -> str:
    """`pattern`, noted so that a value which fails it is told `words`, not the regex."""
    _PATTERN_WORDS[pattern] = words
    return pattern


def validation_error(
    exc: msgspec.ValidationError | msgspec.DecodeError, where: str
) -> InvalidRequest:
    """A msgspec complaint as a 422 whose details name the offending field."""
    text = str(exc)
    match = re.match(r"(.*) - at `\$\.?(.*)`$", text, re.DOTALL)
    message, field = (match.group(1), match.group(2)) if match else (text, "")
    if "matching regex" in message:
        for pattern, words in _PATTERN_WORDS.items():
            if pattern in message or repr(pattern) in message:
                message = f"Expected {words}"
    malformed = not isinstance(exc, msgspec.ValidationError)  # a DecodeError proper
    if malformed and "malformed" not in message:
        message = f"JSON is malformed: {message}"
    named = re.match(r"Object (?:missing required|contains unknown) field `(\w+)`", message)
    if named:
        field = f"{field}.{named.group(1)}" if field else named.group(1)
    detail: dict[str, Any] = {"in": where, "message": message.replace("`", "")}
    if field:
        detail["field"] = field
    prefix = f"{field}: " if field else ""
    return InvalidRequest(f"invalid {where}: {prefix}{detail['message']}", details=[detail])


def integral_floats_as_ints(value: Any) -> Any:
    """`value` with every float that has no fractional part made an int: JSON does not
    tell 48000 from 48000.0 (JSON Schema's "integer" takes both), Python does."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral_floats_as_ints(v) for v in value]
    return value


def decode_body(data: bytes, model: type[msgspec.Struct]) -> Any:
    if not data.strip():
        raise InvalidRequest(
            "request body must be a JSON object", details=[{"in": "body", "message": "empty"}]
        )
    try:
        return msgspec.convert(integral_floats_as_ints(msgspec.json.decode(data)), type=model)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise validation_error(exc, "body") from None
    except UnicodeDecodeError as exc:  # a string's bytes are not UTF-8 (msgspec's own error)
        message = f"JSON is malformed: not UTF-8 (byte {exc.start})"
        raise InvalidRequest(
            f"invalid body: {message}", details=[{"in": "body", "message": message}]
        ) from None
    except RecursionError:
        # Arrays or objects nested hundreds deep exhaust the decoder's (and the
        # conversion's) recursion; no body of this API nests more than a few levels.
        message = "JSON is nested too deeply"
        raise InvalidRequest(
            f"invalid body: {message}", details=[{"in": "body", "message": message}]
        ) from None


def decode_query(args: dict[str, str], model: type[msgspec.Struct]) -> Any:
    try:
        return msgspec.convert(args, type=model, strict=False)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, "query") from None


def json_response(value: Any, status: int = 200) -> tuple[bytes, int, dict[str, str]]:
    return msgspec.json.encode(value), status, _JSON


def _http_view(op: Operation, ctx: ApiContext) -> Callable[..., Awaitable[Any]]:
    async def view(**path: str) -> Any:
        kwargs: dict[str, Any] = dict(path)
        if op.body is not None:
            kwargs["body"] = decode_body(await request.get_data(True, False, False), op.body)
        if op.query is not None:
            kwargs["query"] = decode_query(dict(request.args), op.query)
        result = await op.handler(ctx, **kwargs)
        if op.response is None:
            return b"", op.status, {}
        if op.media_type != "application/json":
            return result, op.status, {"content-type": op.media_type}
        return json_response(result, op.status)

    return view


def _checked_handshake(
    op: Operation, ctx: ApiContext, path: dict[str, str], args: dict[str, str]
) -> dict[str, Any]:
    """The handler's arguments for a WebSocket handshake (query decoded, `check` run):
    the same for the handshake and for a plain GET that forgot the upgrade."""
    kwargs: dict[str, Any] = dict(path)
    if op.query is not None:
        kwargs["query"] = decode_query(args, op.query)
    if op.check is not None:
        op.check(ctx, **kwargs)
    return kwargs


def _websocket_view(op: Operation, ctx: ApiContext) -> Callable[..., Awaitable[Any]]:
    async def view(**path: str) -> None:
        from quart import websocket

        await op.handler(ctx, **_checked_handshake(op, ctx, path, dict(websocket.args)))

    return view


def _upgrade_view(op: Operation, ctx: ApiContext) -> Callable[..., Awaitable[Any]]:
    """A plain GET of a WebSocket endpoint: its query is checked as for the handshake
    (422 naming the parameter), then 426 says the upgrade is missing."""

    async def view(**path: str) -> Any:
        _checked_handshake(op, ctx, path, dict(request.args))
        body = ErrorBody(
            "upgrade_required",
            f"{request.path} is a WebSocket endpoint: send the upgrade (Upgrade: websocket)",
        )
        content, status, headers = json_response(body, 426)
        return content, status, {**headers, "upgrade": "websocket", "connection": "Upgrade"}

    return view


#: The operations of the rocd API; resource modules add theirs at import.
API = Api()
