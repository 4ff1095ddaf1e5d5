"""Cross-site safety against a real server: JSON bodies only, Host and Origin checked."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest
import trio

from rocd.api import GuardPolicy
from rocd.api._guard import host_allowed
from rocd.config import ApiConfig, AudioConfig, Config, ConfigError, load_config
from rocd.daemon import Daemon
from tests.client import RunningDaemon, open_websocket_url, wait_subscribed

from .test_events_ws import WS_HEADERS

EVIL = "http://evil.example"


def refused(r: httpx.Response, status: int, code: str, field: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code
    assert body["details"] == [{"in": "header", "field": field}]


async def name_of(rocd: RunningDaemon) -> str:
    name: str = (await rocd.http.get("/peers/self")).json()["name"]
    return name


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_a_body_must_be_declared_json(rocd: RunningDaemon, content_type: str) -> None:
    before = await name_of(rocd)
    r = await rocd.http.put(
        "/peers/self", content=b'{"name": "Sneaky"}', headers={"content-type": content_type}
    )
    refused(r, 415, "unsupported_media_type", "Content-Type")
    assert content_type in r.json()["message"]
    assert await name_of(rocd) == before
    r = await rocd.http.put(
        "/peers/self",
        content=b'{"name": "Fine"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200
    # No body, no content type needed.
    assert (await rocd.http.get("/health", headers={"content-type": "text/plain"})).is_success


async def test_a_host_that_does_not_name_it_is_refused(rocd: RunningDaemon) -> None:
    port = rocd.url.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", "10.1.2.3", "0.0.0.0", "localhost.evil"):
        refused(await rocd.http.get("/health", headers={"host": host}), 403, "cross_site", "Host")
    machine = socket.gethostname()
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", "[::1]:1", "127.0.0.2"):
        assert (await rocd.http.get("/health", headers={"host": host})).status_code == 200, host
    assert (await rocd.http.get("/health", headers={"host": machine})).status_code == 200


async def test_a_foreign_origin_may_not_change_anything(rocd: RunningDaemon) -> None:
    before = await name_of(rocd)
    for origin in (EVIL, "null", "http://127.0.0.1:1"):
        r = await rocd.http.put("/peers/self", json={"name": "Owned"}, headers={"origin": origin})
        refused(r, 403, "cross_site", "Origin")
        assert origin in r.json()["message"]
    assert await name_of(rocd) == before
    # Reading is left to the browser's CORS rules: no header lets the page read the answer.
    r = await rocd.http.get("/peers/self", headers={"origin": EVIL})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
    # Its preflight is refused the same way (not an empty 200).
    ask = {"origin": EVIL, "access-control-request-method": "PUT"}
    refused(await rocd.http.options("/peers/self", headers=ask), 403, "cross_site", "Origin")
    # A page rocd serves itself is same-origin.
    r = await rocd.http.put("/peers/self", json={"name": "Own UI"}, headers={"origin": rocd.url})
    assert r.status_code == 200


async def test_a_foreign_origin_may_not_subscribe(rocd: RunningDaemon) -> None:
    r = await rocd.http.get("/events", headers={**WS_HEADERS, "origin": EVIL})
    refused(r, 403, "cross_site", "Origin")
    with trio.fail_after(10):
        async with open_websocket_url(
            f"{rocd.ws_url}/events?kind=peer.", extra_headers=[("Origin", rocd.url)]
        ):
            await wait_subscribed(rocd, 1)


@pytest.fixture
async def configured(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[RunningDaemon]:
    api = ApiConfig(port=0, allowed_origins=("http://localhost:3000",), allowed_hosts=("rocd.lan",))
    daemon = Daemon(Config(state_dir=str(tmp_path), api=api, audio=AudioConfig(pulse="off")))
    with trio.fail_after(10):
        info = await nursery.start(daemon.run)
    async with httpx.AsyncClient(base_url=info.api_url, timeout=10) as http:
        yield RunningDaemon(daemon, info, http)
    daemon.request_stop()


async def test_configured_origins_and_hosts_are_let_in(configured: RunningDaemon) -> None:
    rocd = configured
    page = {"origin": "http://localhost:3000"}
    preflight = await rocd.http.options(
        "/peers/self",
        headers={
            **page,
            "access-control-request-method": "PUT",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    assert "Content-Type" in preflight.headers["access-control-allow-headers"]
    r = await rocd.http.put("/peers/self", json={"name": "From the UI"}, headers=page)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
    r = await rocd.http.put("/peers/self", json={"name": "x"}, headers={"origin": EVIL})
    refused(r, 403, "cross_site", "Origin")
    assert (await rocd.http.get("/health", headers={"host": "rocd.lan:4610"})).status_code == 200
    refused(
        await rocd.http.get("/health", headers={"host": "other.lan"}), 403, "cross_site", "Host"
    )


def test_host_rules() -> None:
    policy = GuardPolicy.from_lists([], ["Rocd.LAN."])
    assert host_allowed(policy, "rocd.lan", "192.168.1.2")
    assert host_allowed(policy, "192.168.1.2:4610", "192.168.1.2")
    assert host_allowed(policy, "[::ffff:192.168.1.2]", "::ffff:192.168.1.2")
    assert not host_allowed(policy, "192.168.1.3", "192.168.1.2")
    assert not host_allowed(policy, "localhost", "192.168.1.2")  # not a loopback connection
    assert not host_allowed(policy, "127.0.0.1", "192.168.1.2")
    assert host_allowed(policy, "[::1]:4610", "127.0.0.1")
    assert not host_allowed(policy, "evil.example", "127.0.0.1")


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ('[api]\nallowed_origins = ["localhost:3000"]\n', "api.allowed_origins"),
        ('[api]\nallowed_origins = ["http://x/path"]\n', "api.allowed_origins"),
        ('[api]\nallowed_hosts = ["bad host"]\n', "api.allowed_hosts"),
    ],
)
def test_bad_guard_settings_name_the_field(tmp_path: Path, toml: str, field: str) -> None:
    cfg = tmp_path / "rocd.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(cfg)


def test_guard_settings_are_read(tmp_path: Path) -> None:
    cfg = tmp_path / "rocd.toml"
    cfg.write_text('[api]\nallowed_origins = ["https://ui.example:8443"]\n')
    assert load_config(cfg).api.allowed_origins == ("https://ui.example:8443",)
    assert msgspec.toml.decode(b"", type=Config).api.allowed_hosts == ()
