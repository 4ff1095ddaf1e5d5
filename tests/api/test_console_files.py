"""The web console's files: served at / and /console/..., complete (every file the page and
its modules name is there), cacheable, framed by no one, open without a token, and
deliberately outside the OpenAPI document (every other route is in it)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from rocd.actors import Registry, Supervisor
from rocd.api import API as ROCD_API
from rocd.api import ApiContext, create_app
from rocd.api._console import CONSOLE_DIR, CONSOLE_RULES, CONTENT_SECURITY_POLICY
from rocd.config import ApiConfig, AudioConfig, Config
from rocd.daemon import Daemon
from tests.client import LOOPBACK_CLUSTER, RunningDaemon

from .test_http import assert_error_shape

#: What the page and its modules load: <script src>, <link href>, <img src>, imports.
_REFERENCE = re.compile(r'(?:src|href)="(/console/[^"]+)"|from "\./([^"]+)"')


def references(path: str, text: str) -> set[str]:
    base = path.rsplit("/", 1)[0]
    found = set()
    for absolute, relative in _REFERENCE.findall(text):
        found.add(absolute or f"{base}/{relative}")
    return found


async def test_the_page_and_every_file_it_loads_are_served(rocd: RunningDaemon) -> None:
    page = await rocd.http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/console/js/app.js">' in page.text
    # Nothing from elsewhere: every file the page loads is one of its own.
    loaded = set(re.findall(r'(?:src|href)="([^"#][^"]*)"', page.text))
    assert loaded == references("/console/index.html", page.text)
    seen: set[str] = set()
    todo = references("/console/index.html", page.text)
    assert {"/console/js/app.js", "/console/console.css", "/console/icon.svg"} <= todo
    while todo:
        path = todo.pop()
        seen.add(path)
        r = await rocd.http.get(path)
        assert r.status_code == 200, path
        suffix = path.rsplit(".", 1)[1]
        assert r.headers["content-type"].startswith(
            {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}[suffix]
        ), path
        if suffix == "js":
            assert re.findall(r'(?:import|from) "(?!\./)', r.text) == [], path
            assert "import(" not in r.text, path
            todo |= references(path, r.text) - seen
        if suffix == "css":
            assert "url(" not in r.text, path
            assert "@import" not in r.text, path
    on_disk = {
        f"/console/{p.relative_to(CONSOLE_DIR).as_posix()}" for p in CONSOLE_DIR.rglob("*.*")
    }
    assert seen == on_disk - {"/console/index.html"}  # no file left unused, none missing


async def test_a_revalidation_is_a_304(rocd: RunningDaemon) -> None:
    first = await rocd.http.get("/console/js/app.js")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = await rocd.http.get("/console/js/app.js", headers={"if-none-match": etag})
    assert (again.status_code, again.content) == (304, b"")
    assert "content-length" not in again.headers  # "0" would not be the 200's length
    assert again.headers["etag"] == etag
    anything = await rocd.http.get("/console/js/app.js", headers={"if-none-match": "*"})
    assert anything.status_code == 304
    other = await rocd.http.get("/console/js/app.js", headers={"if-none-match": '"stale"'})
    assert other.status_code == 200
    assert other.content == first.content
    head = await rocd.http.head("/")
    assert head.status_code == 200
    assert head.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/console/nothing.js",
        "/console/../api/_app.py",
        "/console/%2e%2e/api/_app.py",
        "/console/js/../../api/_console.py",
        "/console/",
        "/console",
        "/index.html",
        "/static/console.css",  # Quart's own static route is off
    ],
)
async def test_anything_else_is_a_json_404(rocd: RunningDaemon, path: str) -> None:
    r = await rocd.http.get(path)
    assert_error_shape(r, 404, "not_found")


async def test_the_page_takes_no_writes(rocd: RunningDaemon) -> None:
    r = await rocd.http.post("/", json={})
    assert_error_shape(r, 405, "method_not_allowed")
    assert "GET" in r.headers["allow"]


@pytest.fixture
async def token_only(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[RunningDaemon]:
    config = Config(
        state_dir=str(tmp_path),
        api=ApiConfig(port=0, auth="token"),
        audio=AudioConfig(pulse="off"),
        cluster=LOOPBACK_CLUSTER,
    )
    daemon = Daemon(config)
    with trio.fail_after(10):
        info = await nursery.start(daemon.run)
    async with httpx.AsyncClient(base_url=info.api_url, timeout=10) as http:
        yield RunningDaemon(daemon, info, http)
    daemon.request_stop()


async def test_the_console_loads_without_a_token_the_api_does_not(
    token_only: RunningDaemon,
) -> None:
    for path in ("/", "/console/js/app.js", "/console/console.css"):
        assert (await token_only.http.get(path)).status_code == 200, path
    assert (await token_only.http.get("/peers")).status_code == 401
    r = await token_only.http.get("/console/missing.js")
    assert_error_shape(r, 404, "not_found")  # not a 401: the route is open, the file is not there


async def test_only_the_console_is_outside_the_openapi_document(rocd: RunningDaemon) -> None:
    doc = (await rocd.http.get("/openapi.json")).json()
    assert "/" not in doc["paths"]
    assert not any(path.startswith("/console") for path in doc["paths"])
    registry = Registry()
    ctx = ApiContext(registry, None, None, Supervisor("root", registry=registry), 0.0)  # type: ignore[arg-type]
    app = create_app(ctx)
    served = {rule.rule for rule in app.url_map.iter_rules()}
    declared = {op.rule for op in ROCD_API.operations}
    assert served - declared == CONSOLE_RULES
