"""GET / and GET /console/...: the web console, a static page that drives this API.

The console is a client of the API like any other (rocd/console: HTML, CSS and plain
JavaScript modules, no build step, nothing fetched from elsewhere), served by the daemon so
that it is same-origin with the API: its requests and its event WebSocket pass the
cross-site guard as the daemon's own.

These routes are deliberately outside the OpenAPI document: they serve the files of a
client, not the API; the document describes the API that client calls (tests/api checks
that every other route of the app is in it). They are open without a token, as
GET /health is: the files hold no data, and the page asks for a token when the API answers
401. The files are read once, when the app is made; each answer carries an ETag (a
revalidation is a 304) and headers that keep the page from being framed or from loading
anything but its own files (Content-Security-Policy).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quart import Quart, Response, request

from rocd.errors import NotFound

#: Where the console's files are (a folder of the rocd package).
CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
#: The page, and its files by their path under CONSOLE_DIR (Quart rules).
PAGE_RULE = "/"
ASSET_RULE = "/console/<path:name>"
CONSOLE_RULES = frozenset({PAGE_RULE, ASSET_RULE})
PAGE = "index.html"

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

#: Only this page's own files, styles and scripts; its API and WebSocket on this origin
#: ('self' covers ws:// and wss:// of the same host in CSP 3); never inside a frame.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",  # revalidate every time: a new rocd serves new files
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str  # quoted, as in the header


def load_assets(root: Path = CONSOLE_DIR) -> dict[str, Asset]:
    """Every file of the console under `root`, by its path relative to it ("js/app.js");
    files of other types are not served."""
    assets: dict[str, Asset] = {}
    for path in sorted(root.rglob("*")):
        content_type = _CONTENT_TYPES.get(path.suffix)
        if content_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        assets[path.relative_to(root).as_posix()] = Asset(body, content_type, etag)
    if PAGE not in assets:
        raise FileNotFoundError(f"the web console's {PAGE} is missing from {root}")
    return assets


def _answer(asset: Asset) -> Any:
    headers = {**_HEADERS, "etag": asset.etag, "content-type": asset.content_type}
    wanted = request.headers.get("if-none-match", "")
    if asset.etag in wanted or wanted.strip() == "*":  # "*": any version the client has
        # No Content-Length: a 304 may only carry the 200's, and a cache that took
        # "0" from it would keep an empty file (RFC 9110, 8.6).
        not_modified = Response(b"", 304, headers)
        del not_modified.headers["content-length"]
        return not_modified
    return asset.body, 200, headers


def install_console(app: Quart, root: Path = CONSOLE_DIR) -> None:
    """Serve the console at / and its files under /console/ (see the module docstring)."""
    assets = load_assets(root)

    async def page() -> Any:
        return _answer(assets[PAGE])

    async def asset(name: str) -> Any:
        found = assets.get(name)
        if found is None:
            raise NotFound(
                f"the web console has no file {name!r}", details=[{"in": "path", "field": "name"}]
            )
        return _answer(found)

    app.add_url_rule(PAGE_RULE, "console.page", page, methods=["GET"])
    app.add_url_rule(ASSET_RULE, "console.asset", asset, methods=["GET"])
