"""Cross-site safety: what a web page open in the user's browser must not do to rocd.

The API listens on localhost, so any page the user opens can send it requests. Browsers
protect a site's answers from other sites' pages (CORS), but not the daemon from the
requests themselves. Three checks, before any handler runs:

1. Host (DNS rebinding): a page on evil.example whose name is made to resolve to
   127.0.0.1 reaches us as same-origin to itself; its requests still say
   `Host: evil.example`. Accepted: an IP literal that is the address the connection came
   in on (any loopback address for a loopback one), `localhost` (on loopback), this
   machine's host name (and NAME.local), and the names in `[api] allowed_hosts`.
2. Content type: a body must be `application/json`. A form or `text/plain` POST is a
   "simple" request a page sends without asking (no CORS preflight); a JSON one is not.
3. Origin: a WebSocket handshake or a state-changing request (POST, PUT, PATCH, DELETE)
   from a browser carries `Origin`. It must be this daemon's own (a web UI rocd serves
   itself is same-origin) or listed in `[api] allowed_origins`; `Origin: null` never is.
   Requests without Origin (curl, scripts, other daemons) are not from a page and pass.

Pages of the allowed origins also get the CORS headers that let them read answers and
send JSON (preflight included). Refusals are JSON errors: 403 `cross_site`, 415
`unsupported_media_type`. This module only guards; who may do what (authentication,
roles) is decided elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from quart import Quart, Response, request, websocket

from rocd.errors import RocdError

#: Methods that change state: their Origin is checked.
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Headers a page of an allowed origin may send (answer to its preflight).
_ALLOWED_HEADERS = "Content-Type, Authorization"
_PREFLIGHT_MAX_AGE_S = "600"


class CrossSiteRefused(RocdError):
    """A request a web page could have made behind the user's back (bad Host or Origin)."""

    status = 403
    code = "cross_site"


class NotJson(RocdError):
    """A body that is not declared as JSON."""

    status = 415
    code = "unsupported_media_type"


def guard_statuses(*, has_body: bool) -> tuple[int, ...]:
    """The answers the guard may give to an operation (for its OpenAPI document)."""
    return (403, 415) if has_body else (403,)


def _normal_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def machine_names() -> frozenset[str]:
    """This machine's own host names (a rebinding page cannot choose these)."""
    name = socket.gethostname().lower().rstrip(".")
    if not name:
        return frozenset()
    short = name.split(".", 1)[0]
    return frozenset({name, short, f"{short}.local"})


@dataclass(frozen=True)
class GuardPolicy:
    """What the guard accepts besides this daemon's own addresses."""

    allowed_origins: frozenset[str] = frozenset()  # "http://host:port", lower case
    allowed_hosts: frozenset[str] = frozenset()  # host names, lower case, no port
    machine_names: frozenset[str] = field(default_factory=machine_names)

    @classmethod
    def from_lists(cls, origins: Iterable[str], hosts: Iterable[str]) -> GuardPolicy:
        return cls(
            allowed_origins=frozenset(_normal_origin(o) for o in origins),
            allowed_hosts=frozenset(h.strip().lower().rstrip(".") for h in hosts),
        )

    def origin_allowed(self, origin: str) -> bool:
        return _normal_origin(origin) in self.allowed_origins


def split_host(host: str) -> str:
    """The name or address part of a Host header ('[::1]:4610' -> '::1'), lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host.rstrip(".")


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def host_allowed(policy: GuardPolicy, host: str, local_address: str | None) -> bool:
    """Whether `host` (a Host header) names this daemon on a connection that arrived at
    `local_address` (the address rocd is bound to, or one of a wildcard bind's)."""
    name = split_host(host)
    local = _ip(local_address) if local_address else None
    address = _ip(name)
    if address is not None:
        if local is None:
            return False
        return address == local or (address.is_loopback and local.is_loopback)
    if name == "localhost" or name.endswith(".localhost"):
        return local is not None and local.is_loopback
    return name in policy.allowed_hosts or name in policy.machine_names


def _check_host(policy: GuardPolicy, headers: Any, scope: Mapping[str, Any]) -> None:
    host = headers.get("host")
    if host is None:
        return  # HTTP/1.0 without Host: not a browser
    server = scope.get("server")
    local = str(server[0]) if server else None
    if not host_allowed(policy, host, local):
        raise CrossSiteRefused(
            f"Host {host!r} does not name this daemon; add the name to [api] allowed_hosts "
            "to use it",
            details=[{"in": "header", "field": "Host"}],
        )


def _check_origin(policy: GuardPolicy, headers: Any, scheme: str) -> None:
    origin = headers.get("origin")
    if origin is None:
        return
    own = f"{scheme}://{headers.get('host', '')}".lower()
    if _normal_origin(origin) == own or policy.origin_allowed(origin):
        return
    raise CrossSiteRefused(
        f"requests from pages of {origin!r} are refused; add it to [api] allowed_origins "
        "to allow them",
        details=[{"in": "header", "field": "Origin"}],
    )


def _check_content_type() -> None:
    has_body = (request.content_length or 0) > 0 or "transfer-encoding" in request.headers
    if has_body and request.mimetype != "application/json":
        got = request.headers.get("content-type", "none")
        raise NotJson(
            f"a request body must be JSON (Content-Type: application/json), not {got}",
            details=[{"in": "header", "field": "Content-Type"}],
        )


def install_guard(app: Quart, policy: GuardPolicy) -> None:
    """Check every request and WebSocket handshake of `app` (see the module docstring)."""

    async def guard_request() -> None:
        _check_host(policy, request.headers, request.scope)
        if request.method in STATE_CHANGING or request.method == "OPTIONS":
            # A preflight from a page not let in gets the same JSON refusal as the
            # request it asks about would (not an empty 200 without CORS headers).
            _check_origin(policy, request.headers, request.scheme)
        _check_content_type()

    async def guard_websocket() -> None:
        _check_host(policy, websocket.headers, websocket.scope)
        _check_origin(policy, websocket.headers, "https" if websocket.scheme == "wss" else "http")

    async def cors(response: Response) -> Response:
        origin = request.headers.get("origin")
        if origin is None or not policy.origin_allowed(origin):
            return response
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers.add("Vary", "Origin")
        if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
            response.headers["Access-Control-Allow-Headers"] = _ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = _PREFLIGHT_MAX_AGE_S
        return response

    app.before_request(guard_request)
    app.before_websocket(guard_websocket)
    app.after_request(cors)
