"""Bearer tokens: none needed on loopback, required (with a role) when the API listens on
any other address; made, listed and revoked by `rocd token` and by the API."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from rocd.config import ApiConfig, AudioConfig, Config
from rocd.daemon import Daemon
from tests.client import LOOPBACK_CLUSTER, RunningDaemon, open_websocket_url


@pytest.fixture
async def exposed(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[RunningDaemon]:
    """A daemon whose API listens on every address (reached here on 127.0.0.1)."""
    config = Config(
        state_dir=str(tmp_path),
        api=ApiConfig(host="0.0.0.0", port=0),
        audio=AudioConfig(pulse="off"),
        cluster=LOOPBACK_CLUSTER,
    )
    daemon = Daemon(config)
    with trio.fail_after(10):
        info = await nursery.start(daemon.run)
    port = info.api_url.rsplit(":", 1)[1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        yield RunningDaemon(daemon, info, http)
    daemon.request_stop()


async def rocd_token(state_dir: Path, *args: str, check: bool = True) -> tuple[int, str, str]:
    """Run `rocd token ...` on `state_dir`: (exit status, stdout, stderr)."""
    done = await trio.run_process(
        [sys.executable, "-m", "rocd.cli", "token", *args, "--state-dir", str(state_dir)],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(r: httpx.Response, status: int, required: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == ("unauthorized" if status == 401 else "forbidden")
    assert body["details"][0]["required"] == required
    assert required in body["message"]
    return body


async def test_loopback_needs_no_token(rocd: RunningDaemon) -> None:
    assert (await rocd.http.put("/peers/self", json={"name": "Den"})).status_code == 200
    assert (await rocd.http.get("/tokens")).status_code == 200


async def test_loopback_refuses_a_token_that_is_wrong(rocd: RunningDaemon) -> None:
    """No token is needed on loopback, but one that is given is checked: a wrong or empty
    one is a 401 (never served as if none had been given), a valid one keeps its role."""
    http = rocd.http
    for given in (bearer("rocd_00000000_nope"), {"Authorization": "Bearer"}, bearer("x")):
        r = await http.put("/peers/self", json={"name": "Wrong"}, headers=given)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == 'Bearer realm="rocd"'
        body = r.json()
        assert set(body) == {"error", "message", "details"}
        assert body["error"] == "unauthorized"
        assert "needs no token here" in body["message"]
        assert body["details"] == [{"in": "header", "field": "Authorization"}]
        assert (await http.get("/peers", headers=given)).status_code == 401
        assert (await http.get("/health", headers=given)).status_code == 401
    assert (await http.get("/peers/self")).json()["name"] != "Wrong"
    # A token in a plain request's URL is refused too (it belongs in the header).
    for path in ("/peers", "/streams", "/health"):
        r = await http.get(path, params={"token": "rocd_00000000_nope"})
        assert r.status_code == 401, (path, r.text)
        assert r.json()["details"][0] == {"in": "query", "field": "token"}
    # The event WebSocket's ?token=, checked the same way.
    port = int(http.base_url.port or 0)
    for bad in ("rocd_00000000_nope", ""):
        with trio.fail_after(10):
            async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                await stream.send_all(
                    f"GET /events?token={bad} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n".encode()
                )
                answer = await read_response(stream)
        assert answer.startswith(b"HTTP/1.1 401"), answer
        assert b'"error":"unauthorized"' in answer.replace(b" ", b"")
    # Another scheme is not a rocd token (a proxy's own): ignored where none is needed.
    assert (await http.get("/peers", headers={"Authorization": "Basic eDp5"})).status_code == 200
    # A valid token acts with its role; no token acts as before.
    r = await http.post("/tokens", json={"role": "viewer"})
    assert r.status_code == 201, r.text
    viewer = r.json()["token"]
    assert (await http.get("/peers", headers=bearer(viewer))).status_code == 200
    refused(
        await http.put("/peers/self", json={"name": "x"}, headers=bearer(viewer)), 403, "operator"
    )
    assert (await http.put("/peers/self", json={"name": "Den"})).status_code == 200


async def test_off_loopback_every_request_needs_a_token(exposed: RunningDaemon) -> None:
    http = exposed.http
    r = await http.get("/peers")
    refused(r, 401, "viewer")
    assert r.headers["www-authenticate"] == 'Bearer realm="rocd"'
    refused(await http.put("/peers/self", json={"name": "x"}), 401, "operator")
    refused(await http.post("/peers", json={}), 401, "admin")
    refused(await http.get("/peers", headers=bearer("rocd_nope")), 401, "viewer")
    refused(await http.get("/peers", headers={"Authorization": "Basic eDp5"}), 401, "viewer")
    assert (await http.get("/health")).status_code == 200  # probes need none
    r = await http.get("/health", headers=bearer("rocd_nope"))  # but a token given is checked
    assert r.status_code == 401, r.text
    assert r.json()["details"] == [{"in": "header", "field": "Authorization"}]


async def test_roles_of_tokens(exposed: RunningDaemon, tmp_path: Path) -> None:
    http = exposed.http
    _, viewer, said = await rocd_token(tmp_path, "create", "--role", "viewer", "--name", "ui")
    viewer = viewer.strip()
    assert viewer.startswith("rocd_")
    assert "shown only now" in said
    _, admin, _ = await rocd_token(tmp_path, "create", "--role", "admin")
    admin = admin.strip()

    assert (await http.get("/peers", headers=bearer(viewer))).status_code == 200
    body = refused(
        await http.put("/peers/self", json={"name": "x"}, headers=bearer(viewer)), 403, "operator"
    )
    assert body["details"][0]["role"] == "viewer"
    refused(
        await http.post("/tokens", json={"role": "viewer"}, headers=bearer(viewer)), 403, "admin"
    )

    r = await http.post(
        "/tokens", json={"role": "operator", "name": "mixer"}, headers=bearer(admin)
    )
    assert r.status_code == 201, r.text
    operator = r.json()["token"]
    operator_id = r.json()["id"]
    r = await http.put("/peers/self", json={"name": "Hall"}, headers=bearer(operator))
    assert r.status_code == 200, r.text
    refused(await http.post("/cluster/invites", json={}, headers=bearer(operator)), 403, "admin")

    listed = (await http.get("/tokens", headers=bearer(admin))).json()
    assert [(t["role"], t["name"]) for t in listed] == [
        ("viewer", "ui"),
        ("admin", ""),
        ("operator", "mixer"),
    ]
    assert all("token" not in t and "hash" not in t for t in listed)

    # Revoked through the API: refused at once.
    assert (await http.delete(f"/tokens/{operator_id}", headers=bearer(admin))).status_code == 204
    refused(await http.get("/peers", headers=bearer(operator)), 401, "viewer")
    assert (await http.delete(f"/tokens/{operator_id}", headers=bearer(admin))).status_code == 404

    # Revoked from the command line: refused within the checker's memory (2 s).
    _, listing, _ = await rocd_token(tmp_path, "list")
    viewer_id = next(line.split()[0] for line in listing.splitlines() if "ui" in line)
    await rocd_token(tmp_path, "revoke", viewer_id)
    with trio.fail_after(5):
        while (await http.get("/peers", headers=bearer(viewer))).status_code == 200:  # noqa: ASYNC110
            await trio.sleep(0.1)
    refused(await http.get("/peers", headers=bearer(viewer)), 401, "viewer")


async def test_the_event_websocket_needs_a_token_too(
    exposed: RunningDaemon, tmp_path: Path
) -> None:
    port = exposed.http.base_url.port
    url = f"ws://127.0.0.1:{port}/events"
    upgrade = (
        f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    with trio.fail_after(10):
        async with await trio.open_tcp_stream("127.0.0.1", int(port or 0)) as stream:
            await stream.send_all(upgrade.encode())
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += await stream.receive_some(4096)
        assert answer.startswith(b"HTTP/1.1 401"), answer
        _, token, _ = await rocd_token(tmp_path, "create", "--role", "viewer")
        headers = [(b"authorization", f"Bearer {token.strip()}".encode())]
        async with open_websocket_url(url, extra_headers=headers) as ws:
            exposed.daemon.publish("test.hello", "", {})
            assert "test.hello" in await ws.get_message()


async def test_token_command_line_mistakes(tmp_path: Path) -> None:
    status, _, err = await rocd_token(tmp_path, "create", "--role", "root", check=False)
    assert status == 2
    assert "invalid choice" in err
    await rocd_token(tmp_path, "create", "--role", "viewer")  # the state file, one token
    status, _, err = await rocd_token(tmp_path, "revoke", "deadbeef", check=False)
    assert status == 1
    assert err.strip() == "rocd: no token 'deadbeef'"
    status, out, _ = await rocd_token(tmp_path, "list")
    assert len(out.splitlines()) == 1  # the token made above, and nothing revoked


async def test_a_refused_request_leaves_its_connection_usable(exposed: RunningDaemon) -> None:
    """The body of a refused PUT arrives after its headers; the next request on the same
    keep-alive connection is still answered."""
    port = int(exposed.http.base_url.port or 0)
    body = b'{"name": "x"}'
    head = (
        f"PUT /peers/self HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with trio.fail_after(10):
        async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
            await stream.send_all(head)
            await trio.sleep(0.1)
            await stream.send_all(body)
            answer = await read_response(stream)
            assert answer.startswith(b"HTTP/1.1 401")
            await stream.send_all(
                f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
            )
            answer = await read_response(stream)
            assert answer.startswith(b"HTTP/1.1 200"), answer


async def read_response(stream: trio.SocketStream) -> bytes:
    """One whole response (headers and a content-length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive_some(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    while len(rest) < length:
        rest += await stream.receive_some(4096)
    return head + b"\r\n\r\n" + rest


async def test_a_browser_gives_the_event_websocket_its_token_in_the_query(
    exposed: RunningDaemon, tmp_path: Path
) -> None:
    """Browsers cannot set headers on a WebSocket: ?token= does the same as the header."""
    port = exposed.http.base_url.port
    _, token, _ = await rocd_token(tmp_path, "create", "--role", "viewer")
    token = token.strip()
    with trio.fail_after(10):
        url = f"ws://127.0.0.1:{port}/events?kind=peer.updated&token={token}"
        async with open_websocket_url(url) as ws:
            exposed.daemon.publish("peer.updated", "", {"name": "hello"})
            assert "peer.updated" in await ws.get_message()
        for bad in ("rocd_00000000_nope", ""):
            async with await trio.open_tcp_stream("127.0.0.1", int(port or 0)) as stream:
                await stream.send_all(
                    f"GET /events?token={bad} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n".encode()
                )
                answer = b""
                while b"\r\n\r\n" not in answer:
                    answer += await stream.receive_some(4096)
            assert answer.startswith(b"HTTP/1.1 401"), answer
    # Plain HTTP requests do not take a token from the URL.
    r = await exposed.http.get("/peers", params={"token": token})
    refused(r, 401, "viewer")
