"""/streams through the HTTP API of in-process daemons (tone and file drivers, no sound
server): validation, events, metrics, expiry, and the cross-peer path through `Peers`.

Two daemons in one process stand for two instances of a cluster: each is given a handle
to the other that sends every request through msgpack and back (as the cluster's link
will), so the coordinator's remote path runs for real, without the cluster itself.
"""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from rocd.actors import (
    DEFAULT_ASK_TIMEOUT,
    AbortEnd,
    ListEnds,
    PrepareReceiver,
    Request,
    StreamSettings,
    StreamSpec,
)
from rocd.actors._stream_media import GetMediaPath
from rocd.actors._stream_types import END_REQUESTS, EndSpec
from tests.client import RunningDaemon, events, running_daemon

TONE = {"peer": "self", "device": "tone:sine"}
NULL = {"peer": "self", "device": "tone:null"}


@pytest.fixture
async def rocd(tmp_path: Path) -> AsyncIterator[RunningDaemon]:
    async with running_daemon(tmp_path) as daemon:
        yield daemon


async def create(rocd: RunningDaemon, **body: Any) -> dict[str, Any]:
    r = await rocd.http.post("/streams", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def wait_state(rocd: RunningDaemon, uid: str, state: str) -> dict[str, Any]:
    with trio.fail_after(10):
        while True:
            stream: dict[str, Any] = (await rocd.http.get(f"/streams/{uid}")).json()
            if stream["state"] == state:
                return stream
            await trio.sleep(0.05)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"source": TONE}, 422, "destination"),
        ({"source": {"peer": "self"}, "destination": NULL}, 422, "source"),
        ({"source": {"device": "tone:sine"}, "destination": NULL}, 422, "source"),
        ({"source": TONE, "destination": {"peer": "self", "device": "x", "vad": "y"}}, 422,
         "destination"),
        ({"source": TONE, "destination": {"external": {"source": "http://x:1"}}}, 422,
         "destination.external"),
        ({"source": TONE, "destination": {"external": {"source": "rtp+rs8m://h:1"}}}, 422,
         "destination.external"),
        ({"source": TONE, "destination": NULL, "settings": {"volume": 3}}, 422,
         "settings.volume"),
        ({"source": TONE, "destination": NULL, "settings": {"fec": {"scheme": "xor"}}}, 422,
         "settings.fec.scheme"),
        ({"source": TONE, "destination": NULL,
          "settings": {"latency": {"target_ms": 100, "min_ms": 150}}}, 422, "settings.latency"),
        ({"source": TONE, "destination": NULL,
          "settings": {"fec": {"source_packets": 200, "repair_packets": 100}}}, 422,
         "settings.fec"),
        ({"source": TONE, "destination": NULL, "extra": 1}, 422, "extra"),
        ({"source": {"peer": "nobody", "device": "tone:sine"}, "destination": NULL}, 404,
         "source.peer"),
        ({"source": {"external": {"source": "rtp://0.0.0.0:0"}},
          "destination": {"external": {"source": "rtp://127.0.0.1:9"}}}, 409, "source"),
    ],
)  # fmt: skip
async def test_bad_bodies_are_refused_naming_the_field(
    rocd: RunningDaemon, body: dict[str, Any], status: int, field: str
) -> None:
    r = await rocd.http.post("/streams", json=body)
    assert r.status_code == status, r.text
    details = r.json()["details"]
    assert any(d.get("field") == field for d in details), details
    assert (await rocd.http.get("/streams")).json() == []


@pytest.mark.parametrize(
    ("source", "destination", "message"),
    [
        ({"peer": "self", "device": "tone:nothing"}, NULL, "no device"),
        (NULL, NULL, "tone:null is a sink"),
        (TONE, TONE, "tone:sine is a source"),
        ({"peer": "self", "vad": "0123456789ab"}, NULL, "no vad"),
    ],
)
async def test_ends_that_cannot_be_refuse_the_whole_stream(
    rocd: RunningDaemon, source: dict[str, str], destination: dict[str, str], message: str
) -> None:
    r = await rocd.http.post("/streams", json={"source": source, "destination": destination})
    assert r.status_code in (404, 422), r.text
    assert message in r.json()["message"]
    assert (await rocd.http.get("/streams")).json() == []
    assert rocd.daemon.registry.of_kind("stream_end") == []


async def test_a_stream_lives_through_the_api_with_its_events(rocd: RunningDaemon) -> None:
    async with events(rocd, "stream.") as feed:
        stream = await create(
            rocd, source=TONE, destination=NULL, settings={"latency": {"profile": "wifi"}}
        )
        uid = stream["uid"]
        assert stream["settings"]["latency"] == {
            "profile": "wifi", "target_ms": 120.0, "min_ms": 40.0, "max_ms": 500.0,
            "adaptive": True, "tuning": "default",
        }  # fmt: skip
        assert stream["settings"]["fec"] == {
            "scheme": "rs8m",
            "source_packets": 18,
            "repair_packets": 10,
        }
        created = await feed.kind("stream.created", uid)
        assert created["data"]["stream"]["uid"] == uid
        states: set[str] = set()
        while states != {"receiver", "sender"}:
            event = await feed.next(
                lambda e: e["kind"] == "stream.state" and e["data"]["state"] == "active"
            )
            states.add(event["data"]["role"])
        metrics_event = await feed.kind("stream.metrics", uid)
        roles = {end["role"] for end in metrics_event["data"]["ends"]}
        assert roles == {"receiver", "sender"}
        listed = (await rocd.http.get("/streams")).json()
        assert [s["uid"] for s in listed] == [uid]
        assert listed[0]["state"] == "active"

        r = await rocd.http.patch(
            f"/streams/{uid}", json={"volume": 0.5, "latency": {"min_ms": 30, "max_ms": 600}}
        )
        assert r.status_code == 200, r.text
        assert r.json()["settings"]["volume"] == 0.5
        assert r.json()["settings"]["latency"]["max_ms"] == 600
        r = await rocd.http.patch(f"/streams/{uid}", json={"packet_ms": 10})
        assert r.status_code == 422  # not a live change
        r = await rocd.http.patch(f"/streams/{uid}", json={"latency": {"min_ms": 700}})
        assert r.status_code == 422, r.text

        r = await rocd.http.delete(f"/streams/{uid}")
        assert r.status_code == 204
        await feed.kind("stream.deleted", uid)
    assert (await rocd.http.get(f"/streams/{uid}")).status_code == 404
    assert (await rocd.http.delete(f"/streams/{uid}")).status_code == 404
    assert (await rocd.http.get(f"/streams/{uid}/metrics")).status_code == 404
    assert rocd.daemon.registry.of_kind("stream_end") == []


async def test_metrics_in_json_and_in_prometheus_text(rocd: RunningDaemon) -> None:
    stream = await create(rocd, source=TONE, destination=NULL)
    uid = stream["uid"]
    await wait_state(rocd, uid, "active")
    await trio.sleep(1.2)
    r = await rocd.http.get(f"/streams/{uid}/metrics")
    assert r.status_code == 200
    body = r.json()
    assert body["state"] == "active"
    receiver = next(e["receiver"] for e in body["ends"] if e["role"] == "receiver")
    sender = next(e["sender"] for e in body["ends"] if e["role"] == "sender")
    assert receiver["packetsReceived"] > 100
    assert receiver["sessions"] == 1
    assert receiver["target_latency_ms"] == 200.0
    assert 100 < receiver["latency_ms"] < 300
    assert receiver["bitrate_bps"] > 1e6  # 44.1 kHz stereo L16: 1.4 Mbit/s and headers
    assert set(receiver["counters"]) >= {"malformed", "unknown_sender", "sessions_created"}
    assert receiver["session_metrics"][0]["state"] == "playing"
    assert sender["packetsSent"] > 100
    assert sender["fecPacketsSent"] > 0
    assert sender["bitrate_bps"] > receiver["bitrate_bps"]  # repair packets on top

    r = await rocd.http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    received = families["rocd_stream_packets_received"]
    assert received.type == "counter"
    (sample,) = received.samples
    uid_self = rocd.info.uid
    assert sample.labels == {"stream": uid, "peer": uid_self, "direction": "receive"}
    assert sample.value > 100
    assert families["rocd_stream_latency_seconds"].type == "gauge"
    assert families["rocd_stream_receiver_malformed"].samples[0].value == 0
    states = {
        s.labels["direction"]: s.labels["state"] for s in families["rocd_stream_state"].samples
    }
    assert states == {"receive": "active", "send": "active"}
    assert families["rocd_peer_stream_ends"].samples[0].value == 2
    for family in families.values():
        for s in family.samples:
            assert set(s.labels) <= {"stream", "peer", "direction", "state"}


async def test_a_prepared_end_that_is_never_committed_expires(rocd: RunningDaemon) -> None:
    host = rocd.daemon.registry.lookup("streams", rocd.info.uid)
    spec = StreamSpec(
        uid="feedfeedfeed",
        source=EndSpec(peer=rocd.info.uid, device="tone:sine"),
        destination=EndSpec(peer=rocd.info.uid, device="tone:null"),
        settings=StreamSettings(),
        created=0.0,
        origin=rocd.info.uid,
    )
    async with events(rocd, "stream.state") as feed:
        prepared = await host.ask(PrepareReceiver(stream=spec, bind_host="127.0.0.1", ttl_s=0.8))
        assert prepared.endpoints.source.startswith("rtp+rs8m://127.0.0.1:")
        (end,) = await host.ask(ListEnds())
        assert (end.state, end.committed) == ("pending", False)
        listed = (await rocd.http.get("/streams")).json()
        assert [s["state"] for s in listed] == ["pending"]
        with trio.fail_after(5):
            event = await feed.kind("stream.state", "feedfeedfeed")
        assert event["data"] == {
            "stream": "feedfeedfeed", "role": "receiver", "state": "stopped",
            "reason": "not committed in time",
        }  # fmt: skip
    assert await host.ask(ListEnds()) == []
    assert await host.ask(AbortEnd(stream="feedfeedfeed", role="receiver")) is False


# -- two instances in one process, joined through their peer directories ----------------


class LoopbackPeer:
    """Another in-process daemon as a remote peer: each request and reply crosses msgpack,
    as it will cross the cluster's link."""

    def __init__(self, other: RunningDaemon) -> None:
        self.other = other
        self.media_host = "127.0.0.1"  # where its media is reached from here
        self.route = ("direct", "")  # as a peer actor's link says
        self.online = True

    @property
    def uid(self) -> str:
        return self.other.info.uid

    @property
    def local(self) -> bool:
        return False

    async def ask(
        self, kind: str, uid: str, request: Request[Any], *, within: float = DEFAULT_ASK_TIMEOUT
    ) -> Any:
        assert type(request) in (*END_REQUESTS, GetMediaPath), type(request)
        wire = msgspec.msgpack.decode(msgspec.msgpack.encode(request), type=type(request))
        reply = await self.other.daemon.registry.lookup(kind, uid).ask(wire, within=within)
        (base,) = [b for b in type(request).__orig_bases__ if typing.get_origin(b) is Request]  # type: ignore[attr-defined]
        (reply_type,) = typing.get_args(base)
        return msgspec.msgpack.decode(msgspec.msgpack.encode(reply), type=reply_type)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[RunningDaemon, RunningDaemon]]:
    async with (
        running_daemon(tmp_path / "a") as a,
        running_daemon(tmp_path / "b") as b,
    ):
        assert a.daemon.peers is not None
        assert b.daemon.peers is not None
        a.daemon.peers.add(LoopbackPeer(b))
        b.daemon.peers.add(LoopbackPeer(a))
        yield a, b


async def test_a_stream_across_two_instances(pair: tuple[RunningDaemon, RunningDaemon]) -> None:
    a, b = pair
    b_uid = b.info.uid
    stream = await create(
        a,
        source={"peer": "self", "device": "tone:sine"},
        destination={"peer": b_uid, "device": "tone:null"},
    )
    uid = stream["uid"]
    assert {(e["role"], e["peer"]) for e in stream["ends"]} == {
        ("receiver", b_uid),
        ("sender", a.info.uid),
    }
    await wait_state(a, uid, "active")
    # Any instance answers for the whole cluster's streams.
    from_b = (await b.http.get("/streams")).json()
    assert [s["uid"] for s in from_b] == [uid]
    assert [e["role"] for e in from_b[0]["ends"]] == ["receiver", "sender"]
    metrics = (await a.http.get(f"/streams/{uid}/metrics")).json()
    assert {e["peer"] for e in metrics["ends"]} == {a.info.uid, b_uid}
    r = await a.http.delete(f"/streams/{uid}")
    assert r.status_code == 204
    assert (await b.http.get("/streams")).json() == []


async def test_the_failing_side_answers_and_nothing_is_left(
    pair: tuple[RunningDaemon, RunningDaemon],
) -> None:
    a, b = pair
    r = await a.http.post(
        "/streams",
        json={
            "source": {"peer": "self", "device": "tone:sine"},
            "destination": {"peer": b.info.uid, "device": "tone:nothing"},
        },
    )
    assert r.status_code == 404, r.text
    body = r.json()
    assert body["message"].startswith("destination (prepare_receiver): ")
    assert {"end": "destination", "peer": b.info.uid, "step": "prepare_receiver"} in body["details"]
    r = await a.http.post(
        "/streams",
        json={
            "source": {"peer": b.info.uid, "device": "tone:null"},
            "destination": {"peer": "self", "device": "tone:null"},
        },
    )
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith("source (prepare_sender): ")
    for rocd in pair:
        assert rocd.daemon.registry.of_kind("stream_end") == []


@pytest.fixture
def fast_reconcile(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hosts check the other halves every 0.2 s (set before the daemons start)."""
    monkeypatch.setattr("rocd.actors._stream_host.RECONCILE_S", 0.2)


async def test_an_end_whose_other_half_is_gone_is_removed(
    fast_reconcile: None, pair: tuple[RunningDaemon, RunningDaemon]
) -> None:
    a, b = pair
    stream = await create(
        a,
        source={"peer": "self", "device": "tone:sine"},
        destination={"peer": b.info.uid, "device": "tone:null"},
    )
    host_a = a.daemon.registry.lookup("streams", a.info.uid)
    # As if A had lost its sender (a kill between the commits): B's receiver must go.
    assert await host_a.ask(AbortEnd(stream=stream["uid"], role="sender"))
    with trio.fail_after(5):
        while b.daemon.registry.of_kind("stream_end"):  # noqa: ASYNC110
            await trio.sleep(0.05)  # watching from outside, as a client would
    assert (await a.http.get("/streams")).json() == []


async def test_openapi_documents_the_stream_routes(rocd: RunningDaemon) -> None:
    doc = (await rocd.http.get("/openapi.json")).json()
    assert {"get", "post"} <= set(doc["paths"]["/streams"])
    assert {"get", "patch", "delete"} <= set(doc["paths"]["/streams/{uid}"])
    assert "get" in doc["paths"]["/streams/{uid}/metrics"]
    assert (
        "text/plain; version=0.0.4; charset=utf-8"
        in (doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"])
    )
    assert "StreamCreate" in doc["components"]["schemas"]


async def test_one_source_feeds_several_streams_through_one_reader(rocd: RunningDaemon) -> None:
    sinks = []
    for name in ("left", "right"):
        r = await rocd.http.post(
            "/peers/self/vads", json={"name": name, "kind": "speaker", "driver": "tone"}
        )
        assert r.status_code == 201, r.text
        sinks.append(r.json()["device"])
    uids = [
        (await create(rocd, source=TONE, destination={"peer": "self", "device": s}))["uid"]
        for s in sinks
    ]
    for uid in uids:
        await wait_state(rocd, uid, "active")
    host = rocd.daemon.stream_host
    assert host is not None
    assert host.plane is not None
    assert list(host.plane.inputs) == ["tone:sine"]  # opened once
    (bus,) = host.plane.inputs.values()
    assert bus.users == 2
    assert bus.fan is not None
    assert len(bus.fan.slots) == 2
    assert sorted(host.plane.outputs) == sorted(sinks)
    await rocd.http.delete(f"/streams/{uids[0]}")
    assert bus.users == 1
    await rocd.http.delete(f"/streams/{uids[1]}")
    assert host.plane.inputs == {}
    assert host.plane.outputs == {}
