"""Devices and VADs through the REST API with the file and tone drivers (no sound server):
shapes, validation, ids in URLs, persistence, and audio round trips through rocd's devices.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import trio

from rocd.actors import DeviceEndpoint, GetEndpoint
from rocd.audio import SampleSpec, Tone, ToneGenerator
from rocd.config import AudioConfig
from tests.client import RunningDaemon, device_path, events, running_daemon

SPEC = SampleSpec(48000, 2)


@pytest.fixture
async def rocd(tmp_path: Path) -> Any:
    async with running_daemon(tmp_path) as daemon:
        yield daemon


def assert_invalid(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "invalid"
    assert body["details"][0]["field"] == field
    assert field in body["message"]


async def endpoint(rocd: RunningDaemon, device_id: str) -> DeviceEndpoint:
    return await rocd.daemon.registry.lookup("device", device_id).ask(GetEndpoint())


async def test_file_and_tone_devices_are_listed(rocd: RunningDaemon) -> None:
    listing = (await rocd.http.get("/peers/self/devices")).json()
    assert listing["drivers"] == [
        {"driver": "file", "up": True, "reason": ""},
        {"driver": "tone", "up": True, "reason": ""},
    ]
    by_id = {d["id"]: d for d in listing["devices"]}
    assert {"tone:sine", "tone:sweep", "tone:noise", "tone:silence", "tone:null"} <= set(by_id)
    sine = by_id["tone:sine"]
    assert (sine["direction"], sine["driver"], sine["peer"]) == ("source", "tone", rocd.info.uid)
    assert (sine["rate"], sine["channels"], sine["volume"], sine["config"]) == (48000, 2, 1.0, {})
    uid_path = f"/peers/{rocd.info.uid}/devices"
    assert (await rocd.http.get(uid_path)).json()["devices"] == listing["devices"]


@pytest.mark.parametrize(
    "name",
    ["take 1.wav", "50% mix #2?.wav", "a:b;c=d&e+f.wav", "été ☃.flac", "%2F..%2e.wav"],
)
async def test_any_device_id_works_in_a_url(rocd: RunningDaemon, tmp_path: Path, name: str) -> None:
    sf.write(tmp_path / "files" / name, np.zeros((480, 2), np.float32), 48000)
    listing = (await rocd.http.get("/peers/self/devices")).json()  # a listing rescans files
    device_id = f"file:source:{name}"
    assert device_id in {d["id"] for d in listing["devices"]}
    r = await rocd.http.get(device_path(device_id))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == device_id
    r = await rocd.http.put(device_path(device_id), json={"name": "Renamed"})
    assert (r.status_code, r.json()["name"]) == (200, "Renamed")


async def test_ids_with_a_slash_reach_the_device_route(rocd: RunningDaemon) -> None:
    for path in (device_path("pulse:sink:a/b"), "/peers/self/devices/pulse:sink:a/b"):
        r = await rocd.http.get(path)
        assert r.status_code == 404
        assert r.json()["error"] == "not_found"
        assert "'pulse:sink:a/b'" in r.json()["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"volume": 1.6}, "volume"),
        ({"volume": -0.1}, "volume"),
        ({"volume": "loud"}, "volume"),
        ({"channels": 0}, "channels"),
        ({"channels": 33}, "channels"),
        ({"rate": 10}, "rate"),
        ({"latency_ms": 0}, "latency_ms"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"mute": "yes"}, "mute"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_device_settings_are_422_naming_the_field(
    rocd: RunningDaemon, body: dict[str, Any], field: str
) -> None:
    assert_invalid(await rocd.http.put(device_path("tone:sine"), json=body), field)
    assert (await rocd.http.get(device_path("tone:sine"))).json()["config"] == {}


async def test_unknown_devices_peers_and_vads_are_404(rocd: RunningDaemon) -> None:
    for method, path, body in [
        ("GET", device_path("tone:nope"), None),
        ("PUT", device_path("pulse:sink:nope"), {"volume": 1.0}),
        ("GET", "/peers/0123456789ab/devices", None),
        ("GET", "/peers/0123456789ab/devices/tone:sine", None),
        ("GET", "/peers/0123456789ab/vads", None),
        ("GET", "/peers/self/vads/0123456789ab", None),
        ("PUT", "/peers/self/vads/0123456789ab", {"name": "x"}),
        ("DELETE", "/peers/self/vads/0123456789ab", None),
    ]:
        r = await rocd.http.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "kind": "subwoofer"}, "kind"),
        ({"name": "x", "kind": "speaker", "driver": "nope"}, "driver"),
        ({"name": "", "kind": "speaker"}, "name"),
        ({"name": "x" * 65, "kind": "speaker"}, "name"),
        ({"name": "x", "kind": "speaker", "channels": 0}, "channels"),
        ({"name": "x", "kind": "speaker", "rate": 999}, "rate"),
        ({"kind": "speaker"}, "name"),
    ],
)
async def test_bad_vads_are_422_naming_the_field(
    rocd: RunningDaemon, body: dict[str, Any], field: str
) -> None:
    assert_invalid(await rocd.http.post("/peers/self/vads", json=body), field)
    assert (await rocd.http.get("/peers/self/vads")).json() == []


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        # Valid requests this instance cannot do: its drivers (409 conflict / unsupported).
        ({"name": "x", "kind": "speaker", "driver": "pulse"}, 409, "conflict", "driver"),
        ({"name": "x", "kind": "microphone", "driver": "tone"}, 409, "unsupported", "kind"),
    ],
)
async def test_vads_this_instance_cannot_make_are_refused_naming_why(
    rocd: RunningDaemon, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    r = await rocd.http.post("/peers/self/vads", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"] == code
    assert r.json()["details"] == [{"in": "body", "field": field}]
    assert (await rocd.http.get("/peers/self/vads")).json() == []


async def test_vad_life_cycle_with_events(rocd: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with events(rocd, "vad.,device.") as feed:
            r = await rocd.http.post(
                "/peers/self/vads", json={"name": "Null", "kind": "speaker", "driver": "tone"}
            )
            assert r.status_code == 201, r.text
            vad = r.json()
            uid, device_id = vad["uid"], vad["device"]
            assert (vad["state"], vad["kind"], vad["driver"]) == ("ready", "speaker", "tone")
            assert (await feed.kind("vad.created", uid))["data"]["vad"] == vad
            added = await feed.kind("device.added", device_id)
            assert added["data"]["device"]["vad"] == uid
            assert (await rocd.http.get(f"/peers/self/vads/{uid}")).json() == vad
            assert (await rocd.http.get("/peers/self/vads")).json() == [vad]

            r = await rocd.http.put(
                f"/peers/self/vads/{uid}", json={"name": "Null 2", "rate": 44100}
            )
            assert r.status_code == 200, r.text
            assert (r.json()["name"], r.json()["rate"], r.json()["state"]) == (
                "Null 2",
                44100,
                "ready",
            )
            await feed.kind("vad.updated", uid)
            device = (await rocd.http.get(device_path(device_id))).json()
            assert (device["description"], device["native_rate"]) == ("Null 2", 44100)

            r = await rocd.http.delete(f"/peers/self/vads/{uid}")
            assert r.status_code == 204
            await feed.kind("vad.deleted", uid)
            await feed.kind("device.removed", device_id)
        assert (await rocd.http.get(f"/peers/self/vads/{uid}")).status_code == 404
        assert (await rocd.http.get(device_path(device_id))).status_code == 404


async def test_settings_and_vads_survive_a_restart(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_daemon(tmp_path) as rocd:
            r = await rocd.http.put(
                device_path("tone:sine"),
                json={"volume": 0.5, "mute": True, "name": "Test tone", "rate": 44100},
            )
            assert r.status_code == 200, r.text
            r = await rocd.http.post(
                "/peers/self/vads", json={"name": "Sink", "kind": "speaker", "driver": "tone"}
            )
            vad = r.json()
        async with running_daemon(tmp_path) as rocd:
            sine = (await rocd.http.get(device_path("tone:sine"))).json()
            assert (sine["volume"], sine["mute"], sine["name"], sine["rate"]) == (
                0.5,
                True,
                "Test tone",
                44100,
            )
            assert sine["native_rate"] == 48000
            # The tone driver keeps nothing across runs: the VAD is made again.
            assert (await rocd.http.get("/peers/self/vads")).json() == [vad]
            assert (await rocd.http.get(device_path(vad["device"]))).status_code == 200
            r = await rocd.http.put(device_path("tone:sine"), json={"rate": None, "name": None})
            assert (r.json()["rate"], r.json()["name"]) == (48000, "sine")
            assert r.json()["config"] == {"volume": 0.5, "mute": True}


async def test_tone_and_file_devices_round_trip(rocd: RunningDaemon) -> None:
    """A tone captured through rocd's device, at the volume set through REST, recorded
    into a file VAD, read back from the file device it becomes."""
    with trio.fail_after(10):
        r = await rocd.http.put(device_path("tone:sine"), json={"volume": 0.5})
        assert r.status_code == 200
        r = await rocd.http.post(
            "/peers/self/vads", json={"name": "Recorder", "kind": "speaker", "driver": "file"}
        )
        assert r.status_code == 201, r.text
        vad = r.json()
        sink_id = vad["device"]
        assert sink_id.startswith("file:sink:")
        assert sink_id.endswith(".wav")

        source = await endpoint(rocd, "tone:sine")
        sink = await endpoint(rocd, sink_id)
        assert source.spec == sink.spec == SPEC
        async with source.driver.open_capture(source.device_id, source.spec) as capture:
            tone = np.concatenate([await capture.read(480) for _ in range(100)])
        expected = ToneGenerator(Tone(kind="sine"), SPEC).generate(48000) * np.float32(0.125)
        assert np.allclose(tone, expected, atol=1e-6)  # volume 0.5 = amplitude 0.5**3
        async with sink.driver.open_playback(sink.device_id, sink.spec) as playback:
            await playback.write(tone)

        recorded_id = sink_id.replace("file:sink:", "file:source:")
        listing = (await rocd.http.get("/peers/self/devices")).json()
        assert recorded_id in {d["id"] for d in listing["devices"]}
        back = await endpoint(rocd, recorded_id)
        async with back.driver.open_capture(back.device_id, back.spec) as capture:
            replay = await capture.read(len(tone) + 1000)
        assert np.array_equal(replay, tone)  # float32 WAV: exact


async def test_a_disabled_device_is_not_opened(rocd: RunningDaemon) -> None:
    r = await rocd.http.put(device_path("tone:noise"), json={"enabled": False})
    assert r.json()["enabled"] is False
    from rocd.errors import Conflict

    with pytest.raises(Conflict, match="disabled"):
        await endpoint(rocd, "tone:noise")


async def test_no_sound_server_is_reported_and_vads_wait_for_it(tmp_path: Path) -> None:
    audio = AudioConfig(pulse="system", pulse_server=f"unix:{tmp_path}/nobody/native")
    with trio.fail_after(10):
        async with running_daemon(tmp_path, audio) as rocd:
            health = (await rocd.http.get("/health")).json()
            assert health["status"] == "degraded"
            (pulse,) = [d for d in health["drivers"] if d["driver"] == "pulse"]
            assert pulse["up"] is False
            assert pulse["reason"]  # what the driver saw (refused, or the subscription ended)
            listing = (await rocd.http.get("/peers/self/devices")).json()
            assert listing["drivers"][0]["driver"] == "pulse"
            assert listing["drivers"][0]["up"] is False
            r = await rocd.http.post("/peers/self/vads", json={"name": "Later", "kind": "speaker"})
            assert r.status_code == 201, r.text
            assert (r.json()["state"], r.json()["device"]) == ("pending", None)
            assert "down" in r.json()["reason"]


async def test_portaudio_is_a_driver_when_asked_for(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_daemon(tmp_path, AudioConfig(pulse="off", portaudio=True)) as rocd:
            drivers = (await rocd.http.get("/health")).json()["drivers"]
            assert {"driver": "portaudio", "up": True, "reason": ""} in drivers
            listing = (await rocd.http.get("/peers/self/devices")).json()
            for device in listing["devices"]:
                if device["driver"] == "portaudio":  # ALSA's plugins, no sound card here
                    assert device["id"].startswith("portaudio:")


async def test_integral_floats_are_integers(rocd: RunningDaemon) -> None:
    """JSON Schema's integer takes 48000.0, so the API does too; 48000.5 is refused."""
    r = await rocd.http.post(
        "/peers/self/vads",
        json={"name": "Floats", "kind": "speaker", "driver": "tone", "rate": 48000.0},
    )
    assert r.status_code == 201, r.text
    assert r.json()["rate"] == 48000
    r = await rocd.http.put(device_path("tone:sine"), json={"channels": 1.0, "volume": 1})
    assert r.status_code == 200, r.text
    assert (r.json()["channels"], r.json()["volume"]) == (1, 1.0)
    assert_invalid(await rocd.http.put(device_path("tone:sine"), json={"rate": 48000.5}), "rate")


async def test_null_puts_a_setting_back_to_the_device_own(rocd: RunningDaemon) -> None:
    sine = device_path("tone:sine")
    r = await rocd.http.put(sine, json={"volume": 0.5, "mute": True, "enabled": False})
    assert r.status_code == 200, r.text
    assert r.json()["config"] == {"volume": 0.5, "mute": True, "enabled": False}
    r = await rocd.http.put(sine, json={"volume": None, "mute": None, "enabled": None})
    assert r.status_code == 200, r.text
    device = r.json()
    assert device["config"] == {}  # nothing imposed any more
    assert device["enabled"] is True
    # The device keeps the values it has; rocd no longer sets them at each start.
    assert (device["volume"], device["mute"]) == (0.5, True)


async def test_a_vad_deleted_under_a_request_is_404_not_503(rocd: RunningDaemon) -> None:
    """Requests racing a delete of their VAD: each gets a clear answer, never a 5xx."""
    statuses: list[int] = []
    with trio.fail_after(30):
        for _ in range(15):
            r = await rocd.http.post(
                "/peers/self/vads", json={"name": "Racy", "kind": "speaker", "driver": "tone"}
            )
            uid = r.json()["uid"]

            async def call(method: str, body: Any = None, uid: str = uid) -> None:
                r = await rocd.http.request(method, f"/peers/self/vads/{uid}", json=body)
                statuses.append(r.status_code)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, "DELETE")
                for i in range(4):
                    nursery.start_soon(call, "PUT", {"name": f"Racy {i}", "channels": 1 + i % 2})
                    nursery.start_soon(call, "GET")
                nursery.start_soon(call, "DELETE")
    assert set(statuses) <= {200, 204, 404}, sorted(statuses)
    assert 404 in statuses  # the race did happen
