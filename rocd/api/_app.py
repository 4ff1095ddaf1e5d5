"""The Quart-Trio application: routes from the resource modules, one error mapping.

Errors (rule: one place per adapter):
- a RocdError from an actor or a handler -> its own status and JSON body;
- an unknown route or method -> 404 / 405 with the same JSON shape;
- anything else -> 500 "internal" with a log line carrying the traceback; the client never
  sees a stack trace.
Cancellation is never turned into an error response (quart-trio lets it through).
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Quart, current_app, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from rocd.errors import RocdError

from . import _cluster as _cluster_routes  # noqa: F401  (routes)
from . import (  # noqa: F401  (routes)
    _devices,
    _events_ws,
    _metrics,
    _openapi,
    _peers,
    _streams,
    _system,
    _vads,
)
from ._auth import install_auth
from ._console import install_console
from ._context import ApiContext
from ._guard import install_guard
from ._routes import API, Api, ErrorBody, json_response

log = logging.getLogger("rocd.api")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "too_large"}


def create_app(ctx: ApiContext, api: Api = API) -> Quart:
    """The app serving `api`'s operations (all of rocd's unless told otherwise)."""
    # No Quart static folder: the web console serves its own files (install_console).
    app = QuartTrio("rocd", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = 1 << 20  # 1 MiB: API bodies are small JSON documents
    # "//" in a path is not merged with a redirect (an HTML 308): a device id that starts
    # with "/" (percent-encoded) is a 404 like any unknown id.
    app.url_map.merge_slashes = False
    api.install(app, ctx)
    install_console(app)
    install_auth(app, ctx)
    install_guard(app, ctx.guard)

    @app.errorhandler(RocdError)
    async def rocd_error(exc: RocdError) -> Any:
        return json_response(exc.to_json(), exc.status)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        body = ErrorBody(_HTTP_CODES.get(status, "http_error"), exc.description or exc.name)
        content, _, headers = json_response(_http_error_words(body, exc), status)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers = {**headers, "allow": ", ".join(sorted(exc.valid_methods))}
        return content, status, headers

    @app.errorhandler(Exception)
    async def internal_error(exc: Exception) -> Any:
        log.error("internal error while serving a request: %r", exc, exc_info=exc)
        body = ErrorBody("internal", "internal error; the daemon's log has the details")
        return json_response(body, 500)

    return app


def _http_error_words(body: ErrorBody, exc: HTTPException) -> ErrorBody:
    """`body` saying what was wrong with this request (the path, the method and what it
    takes, the size limit) instead of the HTTP layer's generic sentence."""
    path, method = request.path, request.method
    if body.error == "not_found":
        body.message = f"no such path {path} (GET /openapi.json lists the API)"
    elif isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        allowed = sorted(exc.valid_methods)
        body.message = f"{method} is not allowed on {path}; it takes {', '.join(allowed)}"
        body.details = [{"in": "method", "allowed": allowed}]
    elif body.error == "too_large":
        limit = current_app.config["MAX_CONTENT_LENGTH"] >> 20
        body.message = f"the request body is larger than {limit} MiB"
        body.details = [{"in": "body"}]
    return body
