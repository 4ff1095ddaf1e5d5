"""Who may call the HTTP API: bearer tokens with a role, required off loopback.

Rules:
- An API listening on a loopback address (127.0.0.0/8, ::1, localhost) needs no token
  ([api] auth = "auto", the default): whoever reaches it is on this machine, and acts
  as admin. Listening on any other address, every request needs
  `Authorization: Bearer <token>`. [api] auth = "token" always asks for one, "none"
  never does.
- A token has a role (`rocd token create --role ...`, or POST /tokens): viewer may read
  (GET, the event WebSocket); operator may also change devices, VADs, streams and the
  instance's name; admin may also manage trust (pairing, invites, roles) and tokens.
- A missing or unknown token is 401, a role too low 403; both bodies name the role the
  request needs. GET /health stays open, for probes, and so do the web console's files
  (GET / and /console/...: they hold no data; the page asks for a token).
- A WebSocket (`WS /events`) may give its token as the query parameter `token` instead:
  browsers cannot set headers on a WebSocket. Plain HTTP requests must use the header
  (a token in a URL ends up in histories and logs): a `?token=` on one is refused (401).
- A token that a request presents is checked even where none is needed (on loopback, on
  GET /health): an unknown, revoked or empty one is 401, never served as if none had been
  given (a script whose token is wrong or whose variable is empty hears so at once), and
  a valid one acts with its own role. Only `Authorization: Bearer ...` presents a token;
  other schemes are ignored where no token is needed. [api] auth = "none" checks nothing.
- A refused request's body is read (and dropped) before the answer: hypercorn leaves the
  next request on a keep-alive connection unanswered when the app answers before the
  body has arrived.

Tokens are checked against the store (hashed there) and a valid one is remembered for
`CACHE_SECONDS`, so a token revoked from the command line stops working within that.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from quart import Quart, request, websocket
from quart.wrappers import Request, Websocket

from rocd.actors import ApiToken, CheckToken, Role, require
from rocd.config import ApiConfig
from rocd.errors import Forbidden, RocdError, Unauthorized, Unavailable

from ._console import CONSOLE_RULES
from ._context import ApiContext
from ._routes import json_response

#: Seconds a checked token is trusted without asking the store again.
CACHE_SECONDS = 2.0
_CACHE_MAX = 256

#: Routes open to anyone, and those that need admin (method, Quart rule).
PUBLIC: frozenset[tuple[str, str]] = frozenset(
    {("GET", "/health"), *(("GET", rule) for rule in CONSOLE_RULES)}
)
ADMIN: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/peers"),
        ("DELETE", "/peers/<uid>"),
        ("PUT", "/peers/<uid>/role"),
        ("POST", "/cluster/invites"),
        ("POST", "/cluster/join"),
        ("GET", "/tokens"),
        ("POST", "/tokens"),
        ("DELETE", "/tokens/<id>"),
    }
)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_required(api: ApiConfig) -> bool:
    """Whether the API as configured asks every request for a bearer token."""
    if api.auth == "token":
        return True
    if api.auth == "none":
        return False
    return not is_loopback(api.host)


def required_role(method: str, rule: str | None) -> Role | None:
    """The least role a request needs (None: open to anyone)."""
    method = "GET" if method in ("HEAD", "OPTIONS") else method
    if rule is not None and (method, rule) in PUBLIC:
        return None
    if rule is not None and (method, rule) in ADMIN:
        return "admin"
    return "viewer" if method == "GET" else "operator"


#: Where a request presented its token, for the details of a refusal.
_HEADER = {"in": "header", "field": "Authorization"}
_QUERY = {"in": "query", "field": "token"}


#: Routes that take a token in the URL (?token=): the WebSocket's (also when a plain
#: request, answered 426, comes to it).
QUERY_TOKEN_RULES = frozenset({"/events"})


def presented(req: Request | Websocket, need: Role | None) -> tuple[str, dict[str, str]] | None:
    """The token a request presents ("" when presented empty) and where; None if none.

    Raises Unauthorized for a token in a plain HTTP request's URL (see the rules)."""
    rule = req.url_rule.rule if req.url_rule is not None else None
    in_query = isinstance(req, Websocket) or rule in QUERY_TOKEN_RULES
    if "token" in req.args and not in_query:
        raise Unauthorized(
            "a plain HTTP request gives its token in the Authorization header (Bearer), "
            "not in the URL (?token= is for the event WebSocket only)" + _needs(need),
            details=[_QUERY | _required(need)],
        )
    header = req.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() == "bearer":
            return token.strip(), _HEADER
    if in_query and "token" in req.args:
        return req.args.get("token", "").strip(), _QUERY
    return None


def _needs(need: Role | None) -> str:
    return f" (this request needs role {need} or above)" if need is not None else ""


def _required(need: Role | None) -> dict[str, str]:
    return {"required": need} if need is not None else {}


class TokenChecker:
    """Tokens to roles, through the store, with a short memory (see CACHE_SECONDS)."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx
        self._known: dict[str, tuple[ApiToken, float]] = {}

    def forget(self) -> None:
        self._known.clear()

    async def check(self, token: str) -> ApiToken | None:
        now = time.monotonic()
        known = self._known.get(token)
        if known is not None and known[1] > now:
            return known[0]
        store = self._ctx.registry.find("store", "state")
        if store is None:
            raise Unavailable("the state store is not running")
        entry = await store.ask(CheckToken(token))
        if entry is not None:
            if len(self._known) >= _CACHE_MAX:
                self._known.clear()
            self._known[token] = (entry, now + CACHE_SECONDS)
        return entry


async def authorize(
    checker: TokenChecker, req: Request | Websocket, *, required: bool = True
) -> None:
    """Raise 401/403 unless the request's token allows it (see the rules).

    `required`: whether the API needs a token at all; where it does not, only a token
    the request presents is checked, and not on a request that matched no route (its 404
    or 405 says more)."""
    if not required and req.routing_exception is not None:
        return
    rule = req.url_rule.rule if req.url_rule is not None else None
    need = required_role(req.method, rule)
    given = presented(req, need if required else None)
    if given is None:
        if need is None or not required:
            return
        raise Unauthorized(
            f"this API needs a bearer token (Authorization: Bearer ...) with role {need} or above"
            + (" (or ?token=... on a WebSocket)" if isinstance(req, Websocket) else ""),
            details=[{"required": need}],
        )
    token, where = given
    entry = await checker.check(token) if token else None
    if entry is None:
        why = "unknown or revoked token" if token else "an empty token"
        if required:
            raise Unauthorized(why + _needs(need), details=[where | _required(need)])
        raise Unauthorized(
            why + " (this API needs no token here: give a valid one, or none)",
            details=[dict(where)],
        )
    if need is not None:
        require(entry.role, need, f"token {entry.id}")


class _Refused(Exception):
    """A 401/403 of the auth check itself (answered before the request body is read)."""

    def __init__(self, error: RocdError) -> None:
        super().__init__(error.message)
        self.error = error


async def _checked(checker: TokenChecker, req: Request | Websocket, required: bool) -> None:
    try:
        await authorize(checker, req, required=required)
    except (Unauthorized, Forbidden) as exc:
        if isinstance(req, Request):
            await req.get_data(cache=False)  # bounded by MAX_CONTENT_LENGTH
        raise _Refused(exc) from None


def install_auth(app: Quart, ctx: ApiContext) -> TokenChecker | None:
    """Check every request's token before its handler: every request's when the API
    requires tokens, else those a request presents (none at all with auth "none")."""
    if not ctx.token_required and not ctx.token_checked:
        return None
    checker = TokenChecker(ctx)
    app.extensions["rocd_tokens"] = checker
    required = ctx.token_required

    @app.before_request
    async def check_request() -> None:
        await _checked(checker, request, required)

    @app.before_websocket
    async def check_websocket() -> None:
        await _checked(checker, websocket, required)

    @app.errorhandler(_Refused)
    async def refused(exc: _Refused) -> Any:
        body, status, headers = json_response(exc.error.to_json(), exc.error.status)
        if isinstance(exc.error, Unauthorized):
            headers["www-authenticate"] = 'Bearer realm="rocd"'
        return body, status, headers

    return checker


def forget_tokens(app: Quart) -> None:
    """Drop remembered tokens at once (after one was revoked through the API)."""
    checker = app.extensions.get("rocd_tokens")
    if isinstance(checker, TokenChecker):
        checker.forget()
