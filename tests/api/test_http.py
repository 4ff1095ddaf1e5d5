"""The HTTP API against a real hypercorn server: every route, error shapes, OpenAPI."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio
from openapi_spec_validator import validate

from rocd.actors import Registry, Supervisor
from rocd.api import API as ROCD_API
from rocd.api import Api, ApiContext, create_app, openapi_document

from .conftest import RunningDaemon


def assert_error_shape(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    assert "Traceback" not in response.text
    return body


async def test_health_and_version(rocd: RunningDaemon) -> None:
    health = (await rocd.http.get("/health")).json()
    assert health["status"] == "ok"
    assert health["uid"] == rocd.info.uid
    actors = health["actors"]
    assert {k: actors[k] for k in ("store", "events", "node", "audio")} == dict.fromkeys(
        ("store", "events", "node", "audio"), 1
    )
    assert actors["device"] >= 5  # the tone driver's sources and null sink
    assert health["drivers"] == [
        {"driver": "file", "up": True, "reason": ""},
        {"driver": "tone", "up": True, "reason": ""},
    ]
    assert health["crashes"] == 0
    assert health["uptime_s"] >= 0
    version = (await rocd.http.get("/version")).json()
    assert version["rocd"] == "0.1.0"
    assert version["api"] == "1"
    assert version["protocol"] == "roc-0.4"


async def test_health_tells_a_stalled_event_loop(
    rocd: RunningDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    before = (await rocd.http.get("/health")).json()["loop"]  # start-up may have had one
    assert (before["stalls"] == 0) == (before["last_stall_s_ago"] is None)
    await trio.sleep(0.1)
    time.sleep(0.25)  # noqa: ASYNC251  (the daemon runs in this thread: this holds its loop)
    await trio.sleep(0.1)
    after = (await rocd.http.get("/health")).json()["loop"]
    assert after["stalls"] >= before["stalls"] + 1  # (a loaded machine may add its own)
    assert after["worst_ms"] >= 200
    assert 0 <= after["last_stall_s_ago"] < 5
    logged = [*caplog.get_records("setup"), *caplog.records]  # (one per 10 s at most)
    assert any("event loop stalled" in r.getMessage() for r in logged)
    metrics = (await rocd.http.get("/metrics")).text
    stalls = re.search(r"^rocd_loop_stalls_total (\S+)$", metrics, re.M)
    worst = re.search(r"^rocd_loop_worst_lateness_seconds (\S+)$", metrics, re.M)
    assert stalls is not None
    assert worst is not None
    assert float(stalls.group(1)) >= after["stalls"]
    assert float(worst.group(1)) >= after["worst_ms"] / 1000


async def test_peers_lists_this_instance_as_self(rocd: RunningDaemon) -> None:
    peers = (await rocd.http.get("/peers")).json()
    assert len(peers) == 1
    me = peers[0]
    assert me["uid"] == rocd.info.uid
    assert me["self"] is True
    assert me["state"] == "online"
    assert me["api"] == rocd.url
    assert (await rocd.http.get(f"/peers/{rocd.info.uid}")).json() == me
    assert (await rocd.http.get("/peers/self")).json() == me


async def test_unknown_peer_is_404_with_the_error_shape(rocd: RunningDaemon) -> None:
    body = assert_error_shape(await rocd.http.get("/peers/0123456789ab"), 404, "not_found")
    assert "0123456789ab" in body["message"]
    r = await rocd.http.put("/peers/0123456789ab", json={"name": "x"})
    assert_error_shape(r, 404, "not_found")


async def test_an_error_quotes_at_most_a_bounded_message(rocd: RunningDaemon) -> None:
    long_id = "file:sink:" + "x" * 10_000
    r = await rocd.http.get(f"/peers/self/devices/{long_id}")
    body = assert_error_shape(r, 404, "not_found")
    assert len(body["message"]) < 600
    assert body["message"].endswith("more characters)")


async def test_rename_is_answered_and_persisted(rocd: RunningDaemon, tmp_path: Path) -> None:
    r = await rocd.http.put("/peers/self", json={"name": "Kitchen speaker"})
    assert r.status_code == 200
    assert r.json()["name"] == "Kitchen speaker"
    assert (await rocd.http.get("/peers/self")).json()["name"] == "Kitchen speaker"
    # The same state directory read by a fresh store sees the new name.
    from rocd.actors import StateDB

    db = StateDB(tmp_path / "state.db")
    assert db.get("node", "name") == "Kitchen speaker"
    db.close()


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        (b'{"name": 5}', "name", "Expected str, got int"),
        (b"{}", "name", "missing required field"),
        (b'{"name": "ok", "colour": "red"}', "colour", "unknown field"),
        (b'{"name": "   "}', "name", "Expected printable text, not only white space"),
        (b'{"name": "a\\u0007b"}', "name", "Expected printable text, not only white space"),
        (b'{"name": "\\ud800"}', None, "JSON is malformed"),
        (b'{"name": "' + b"x" * 65 + b'"}', "name", "Expected str of length <= 64"),
        (b"not json", None, "malformed"),
        # A string that is not UTF-8 (Latin-1 "Küche"): JSON is UTF-8.
        (b'{"name": "K\xfcche"}', None, "JSON is malformed: not UTF-8"),
        (b"", None, "must be a JSON object"),
        # Nesting deep enough to exhaust the decoder's recursion: an unclosed one, a
        # closed one, and one as a field's value.
        (b"[" * 100_000, None, "nested too deeply"),
        (b"[" * 5_000 + b"]" * 5_000, None, "nested too deeply"),
        (b'{"name": ' + b"[" * 600 + b"]" * 600 + b"}", None, "nested too deeply"),
    ],
)
async def test_bad_bodies_are_422_naming_the_field(
    rocd: RunningDaemon, body: bytes, field: str | None, fragment: str
) -> None:
    r = await rocd.http.put(
        "/peers/self", content=body, headers={"content-type": "application/json"}
    )
    err = assert_error_shape(r, 422, "invalid")
    assert fragment in err["message"]
    if field is not None:
        assert err["details"][0]["field"] == field


async def test_unknown_route_and_method_keep_the_error_shape(rocd: RunningDaemon) -> None:
    assert_error_shape(await rocd.http.get("/no/such/thing"), 404, "not_found")
    assert_error_shape(await rocd.http.patch("/peers/self"), 405, "method_not_allowed")


async def test_unknown_route_method_and_size_say_what_is_wrong(rocd: RunningDaemon) -> None:
    """The HTTP layer's own refusals name the path, the method and the limit."""
    err = assert_error_shape(await rocd.http.get("/no/such/thing"), 404, "not_found")
    assert "/no/such/thing" in err["message"]
    assert "/openapi.json" in err["message"]
    r = await rocd.http.patch("/peers/self", json={"name": "x"})
    err = assert_error_shape(r, 405, "method_not_allowed")
    assert "PATCH" in err["message"]
    assert "/peers/self" in err["message"]
    assert "GET" in err["message"]
    assert "PUT" in err["message"]
    assert err["details"] == [{"in": "method", "allowed": r.headers["allow"].split(", ")}]
    # Too large, known from the header: answered before the body is sent.
    host, port = rocd.url.removeprefix("http://").rsplit(":", 1)
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            await stream.send_all(
                b"PUT /peers/self HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                b"Content-Type: application/json\r\nContent-Length: 99999999\r\n\r\n"
            )
            answer = b""
            while chunk := await stream.receive_some():
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    err = msgspec.json.decode(body)
    assert err["error"] == "too_large"
    assert "1 MiB" in err["message"]


async def test_internal_failures_are_500_without_a_stack_trace(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    import hypercorn.config
    import hypercorn.trio

    api = Api()

    @api.route("GET", "/broken", summary="always fails", tag="test", response=dict[str, str])
    async def broken(ctx: ApiContext) -> dict[str, str]:
        raise ZeroDivisionError("secret internals")

    registry = Registry()
    ctx = ApiContext(registry, None, None, Supervisor("root", registry=registry), 0.0)  # type: ignore[arg-type]
    cfg = hypercorn.config.Config()
    cfg.bind = ["127.0.0.1:0"]
    cfg.accesslog = None
    with trio.fail_after(10):
        binds = await nursery.start(hypercorn.trio.serve, create_app(ctx, api), cfg)
        async with httpx.AsyncClient(base_url=binds[0]) as http:
            r = await http.get("/broken")
    body = assert_error_shape(r, 500, "internal")
    assert "secret internals" not in r.text
    assert "log" in body["message"]
    assert any("secret internals" in rec.getMessage() for rec in caplog.records)


async def test_openapi_document_is_valid_and_covers_every_route(rocd: RunningDaemon) -> None:
    doc = (await rocd.http.get("/openapi.json")).json()
    validate(doc)  # OpenAPI 3.1 schema validation
    assert doc["openapi"] == "3.1.0"
    declared = {(op.openapi_path, op.method.lower()) for op in ROCD_API.operations}
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert declared == documented
    for route in ("/health", "/version", "/peers", "/peers/{uid}", "/events", "/openapi.json"):
        assert route in doc["paths"]
    assert set(doc["paths"]["/peers/{peer}/devices/{uid}"]) == {"get", "put"}
    assert set(doc["paths"]["/peers/{peer}/vads"]) == {"get", "post"}
    assert set(doc["paths"]["/peers/{peer}/vads/{uid}"]) == {"get", "put", "delete"}
    assert "201" in doc["paths"]["/peers/{peer}/vads"]["post"]["responses"]
    update = doc["components"]["schemas"]["DeviceUpdate"]["properties"]
    assert update["volume"] == {
        "anyOf": [{"type": "number", "minimum": 0.0, "maximum": 1.5}, {"type": "null"}]
    }
    put = doc["paths"]["/peers/{uid}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PeerUpdate"
    }
    assert set(put["responses"]) == {
        *("200", "401", "403", "404", "409", "415", "422", "500", "503", "504")
    }
    assert "self" in doc["components"]["schemas"]["PeerInfo"]["properties"]
    assert doc == msgspec.json.decode(msgspec.json.encode(openapi_document(ROCD_API)))


async def test_docs_page_lists_every_operation(rocd: RunningDaemon) -> None:
    r = await rocd.http.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    for op in ROCD_API.operations:
        assert f"<code>{op.openapi_path}</code>" in r.text
    assert "<script" not in r.text  # works offline


@pytest.mark.parametrize("name", ["Küche", 'it\'s "quoted"', "👨\u200d👩\u200d👧", "x" * 64])
async def test_names_are_any_printable_text(rocd: RunningDaemon, name: str) -> None:
    r = await rocd.http.put("/peers/self", json={"name": name})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == name
    schema = (await rocd.http.get("/openapi.json")).json()["components"]["schemas"]
    prop = schema["PeerUpdate"]["properties"]["name"]
    assert (prop["minLength"], prop["maxLength"]) == (1, 64)
    assert re.search(prop["pattern"], name)


@pytest.mark.parametrize(
    ("path", "body", "field", "fragment"),
    [
        ("/peers", {"address": "nonsense", "key": "k" * 40}, "address", "tcp://HOST:PORT"),
        ("/peers", {"address": "tcp://h:99999", "key": "k" * 40}, "address", "port 1-65535"),
        ("/peers", {"address": "tcp://h:4611", "key": "short"}, "key", "40 characters"),
        ("/cluster/join", {"token": "garbage"}, "token", "rocd1-"),
    ],
)
async def test_a_value_of_the_wrong_form_is_described_in_words(
    rocd: RunningDaemon, path: str, body: dict[str, str], field: str, fragment: str
) -> None:
    """A value that fails a pattern is told what form it must take, not the regex."""
    err = assert_error_shape(await rocd.http.post(path, json=body), 422, "invalid")
    assert err["details"][0]["field"] == field
    assert fragment in err["message"]
    assert "regex" not in err["message"]
