"""Devices and VADs through the REST API, against a real PulseAudio server.

Every test drives a real daemon (in-process, API on a free port) whose pulse driver
follows a real headless PulseAudio; what the API says is checked against `pactl`.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pulsectl
import pytest
import soundfile as sf
import trio

from rocd.actors import GetEndpoint, vad_system_name
from rocd.audio import SampleSpec
from rocd.config import AudioConfig
from tests.client import RunningDaemon, device_path, events, running_daemon
from tests.e2e.signals import assert_same_audio, s16_noise
from tests.pulse_server import PulseServer, record_paplay

from .conftest import pulse_config

SPEC = SampleSpec(48000, 2)
PAD = 0.2  # seconds of trailing silence: the tail of a playback can be cut


async def create_vad(rocd: RunningDaemon, **body: Any) -> dict[str, Any]:
    r = await rocd.http.post("/peers/self/vads", json=body)
    assert r.status_code == 201, r.text
    vad: dict[str, Any] = r.json()
    return vad


def sink_of(server: PulseServer, name: str) -> dict[str, Any]:
    (sink,) = [s for s in server.pactl_json("list", "sinks") if s["name"] == name]
    return sink  # type: ignore[no-any-return]


def raw_volumes(entry: dict[str, Any]) -> set[int]:
    return {v["value"] for v in entry["volume"].values()}


def unload_modules_of(server: PulseServer, text: str) -> int:
    """Unload every module whose arguments mention `text` (as a server restart loses it),
    newest first (a remap source goes before the sink it depends on)."""
    count = 0
    for line in reversed(server.pactl("list", "short", "modules").splitlines()):
        index, _, rest = line.partition("\t")
        if text in rest:
            server.pactl("unload-module", index)
            count += 1
    return count


async def test_a_virtual_speaker_made_through_rest_is_bit_exact(
    rocd: RunningDaemon, pulse_server: PulseServer, tmp_path: Path
) -> None:
    expected = s16_noise(0.5, SPEC.rate, SPEC.channels)
    wav = tmp_path / "known.wav"
    padded = np.concatenate([expected, np.zeros((SPEC.frames_for(PAD), 2), np.float32)])
    sf.write(wav, padded, SPEC.rate, subtype="PCM_16")
    with trio.fail_after(20):
        # Quotes and spaces in the user's name: it is only ever the description.
        vad = await create_vad(rocd, name="Living room 'A' \"B\"", kind="speaker")
        assert vad["state"] == "ready"
        sink = vad_system_name(vad["uid"])
        assert vad["device"] == f"pulse:sink:{sink}"
        assert "Living room" in sink_of(pulse_server, sink)["description"]
        device = (await rocd.http.get(device_path(vad["device"]))).json()
        assert (device["vad"], device["direction"], device["virtual"]) == (vad["uid"], "sink", True)
        assert device["state"] in ("running", "idle", "suspended")
        # Capture through rocd's own device, found by its REST id.
        ref = rocd.daemon.registry.lookup("device", vad["device"])
        endpoint = await ref.ask(GetEndpoint())
        assert endpoint.spec == SPEC
        try:
            async with endpoint.driver.open_capture(endpoint.device_id, endpoint.spec) as capture:
                recorded = await record_paplay(capture, pulse_server, sink, wav)
                assert capture.stats().overruns == 0
            assert_same_audio(recorded, expected)
        finally:
            r = await rocd.http.delete(f"/peers/self/vads/{vad['uid']}")
            assert r.status_code == 204
        assert sink not in pulse_server.pactl("list", "short", "sinks")


async def test_volume_and_mute_both_ways(rocd: RunningDaemon, pulse_server: PulseServer) -> None:
    with trio.fail_after(20):
        vad = await create_vad(rocd, name="Volume test", kind="speaker")
        sink, device_id = vad_system_name(vad["uid"]), vad["device"]
        try:
            async with events(rocd, "device.updated") as feed:
                r = await rocd.http.put(device_path(device_id), json={"volume": 0.5, "mute": True})
                assert r.status_code == 200, r.text
                assert (r.json()["volume"], r.json()["mute"]) == (0.5, True)
                assert r.json()["config"] == {"volume": 0.5, "mute": True}
                entry = sink_of(pulse_server, sink)
                assert raw_volumes(entry) == {32768}
                assert entry["mute"] is True
                ours = await feed.kind("device.updated", device_id)
                assert ours["data"]["origin"] == "api"
                assert ours["data"]["changed"] == ["mute", "volume"]

                pulse_server.pactl("set-sink-volume", sink, "98304")  # 150 %
                theirs = await feed.next(
                    lambda e: e["subject"] == device_id and "volume" in e["data"]["changed"]
                )
                # rocd's own change came back from the server too, but was not taken for
                # an outside one: the first volume event after the PUT is pactl's.
                assert theirs["data"]["origin"] == "driver"
                assert theirs["data"]["device"]["volume"] == 1.5
                assert theirs["data"]["device"]["config"]["volume"] == 1.5
                pulse_server.pactl("set-sink-mute", sink, "0")
                unmuted = await feed.next(
                    lambda e: e["subject"] == device_id and "mute" in e["data"]["changed"]
                )
                assert unmuted["data"]["device"]["mute"] is False
            device = (await rocd.http.get(device_path(device_id))).json()
            assert (device["volume"], device["mute"]) == (1.5, False)
            assert device["config"] == {"volume": 1.5, "mute": False}  # persisted
        finally:
            await rocd.http.delete(f"/peers/self/vads/{vad['uid']}")


async def test_devices_made_behind_its_back_come_and_go(
    rocd: RunningDaemon, pulse_server: PulseServer
) -> None:
    with trio.fail_after(20):
        async with events(rocd, "device.") as feed:
            module = pulse_server.pactl(
                "load-module", "module-null-sink", "sink_name=ext_sink", "rate=44100"
            ).strip()
            added = await feed.kind("device.added", "pulse:sink:ext_sink")
            device = added["data"]["device"]
            assert (device["native_rate"], device["vad"], device["peer"]) == (
                44100,
                None,
                rocd.info.uid,
            )
            r = await rocd.http.get(device_path("pulse:sink:ext_sink"))
            assert r.status_code == 200
            await feed.kind("device.added", "pulse:source:ext_sink.monitor")
            pulse_server.pactl("unload-module", module)
            await feed.kind("device.removed", "pulse:sink:ext_sink")
            await feed.kind("device.removed", "pulse:source:ext_sink.monitor")
        r = await rocd.http.get(device_path("pulse:sink:ext_sink"))
        assert r.status_code == 404


async def test_a_restart_brings_vads_and_settings_back(
    pulse_server: PulseServer, tmp_path: Path
) -> None:
    audio = pulse_config(pulse_server)
    with trio.fail_after(30):
        async with running_daemon(tmp_path, audio) as rocd:
            spk = await create_vad(rocd, name="Kitchen", kind="speaker", rate=44100)
            mic = await create_vad(rocd, name="Desk mic", kind="microphone", channels=1)
            r = await rocd.http.put(
                device_path(spk["device"]), json={"volume": 0.7, "name": "Kitchen speaker"}
            )
            assert r.status_code == 200, r.text
        # The daemon is gone; its devices stay in the server. Take them out, as a sound
        # server restart would: the next daemon must make them again.
        assert unload_modules_of(pulse_server, spk["uid"]) == 1
        assert unload_modules_of(pulse_server, mic["uid"]) == 2  # the source and its feed
        async with running_daemon(tmp_path, audio) as rocd:
            vads = {v["uid"]: v for v in (await rocd.http.get("/peers/self/vads")).json()}
            assert set(vads) == {spk["uid"], mic["uid"]}
            assert all(v["state"] == "ready" for v in vads.values())
            assert vads[spk["uid"]]["device"] == spk["device"]
            device = (await rocd.http.get(device_path(spk["device"]))).json()
            assert device["name"] == "Kitchen speaker"
            assert device["volume"] == 0.7
            assert device["native_rate"] == 44100
            entry = sink_of(pulse_server, vad_system_name(spk["uid"]))
            assert raw_volumes(entry) == {round(0.7 * 65536)}
            module = entry["owner_module"]
            sources = pulse_server.pactl("list", "short", "sources")
            assert vad_system_name(mic["uid"]) in sources
        # Left in place this time: the next daemon adopts them (apps stay attached).
        async with running_daemon(tmp_path, audio) as rocd:
            vads = {v["uid"]: v for v in (await rocd.http.get("/peers/self/vads")).json()}
            assert vads[spk["uid"]]["state"] == "ready"
            assert sink_of(pulse_server, vad_system_name(spk["uid"]))["owner_module"] == module
            for uid in vads:
                assert (await rocd.http.delete(f"/peers/self/vads/{uid}")).status_code == 204
        left = pulse_server.pactl("list", "short", "modules")
        assert spk["uid"] not in left
        assert mic["uid"] not in left


async def test_the_sound_server_dies_and_comes_back() -> None:
    server = PulseServer()  # its own: this one gets killed
    await trio.to_thread.run_sync(server.start)
    try:
        with trio.fail_after(30):
            state = server.root / "state"
            async with running_daemon(state, pulse_config(server)) as rocd:
                vad = await create_vad(rocd, name="Survivor", kind="speaker")
                device_id = vad["device"]
                r = await rocd.http.put(device_path(device_id), json={"volume": 0.6})
                assert r.status_code == 200
                async with events(rocd, "driver.,device.,vad.") as feed:
                    server.stop()  # SIGKILL
                    down = await feed.kind("driver.down", "pulse")
                    assert down["data"]["reason"]
                    await feed.kind("device.removed", device_id)
                    health = (await rocd.http.get("/health")).json()
                    assert health["status"] == "degraded"
                    (pulse,) = [d for d in health["drivers"] if d["driver"] == "pulse"]
                    assert pulse["up"] is False
                    assert pulse["reason"]
                    listing = (await rocd.http.get("/peers/self/devices")).json()
                    assert not [d for d in listing["devices"] if d["driver"] == "pulse"]
                    await feed.next(lambda e: e["kind"] == "vad.updated")
                    got = (await rocd.http.get(f"/peers/self/vads/{vad['uid']}")).json()
                    assert got["state"] == "pending"

                    await trio.to_thread.run_sync(server.start)  # same socket, no devices
                    await feed.kind("driver.up", "pulse")
                    # device.added comes once the device's settings are applied again.
                    await feed.kind("device.added", device_id)
                entry = sink_of(server, vad_system_name(vad["uid"]))
                assert raw_volumes(entry) == {round(0.6 * 65536)}
                got = (await rocd.http.get(f"/peers/self/vads/{vad['uid']}")).json()
                assert got["state"] == "ready"
                assert (await rocd.http.get("/health")).json()["status"] == "ok"
    finally:
        server.cleanup()


async def test_auto_runs_a_private_server_when_none_answers(tmp_path: Path) -> None:
    audio = AudioConfig(pulse="auto", pulse_server=f"unix:{tmp_path}/nobody/native")
    with trio.fail_after(30):
        async with running_daemon(tmp_path, audio) as rocd:
            private = rocd.daemon.pulse_server
            assert private is not None
            assert private.pid is not None
            first_pid = private.pid
            health = (await rocd.http.get("/health")).json()
            assert {"driver": "pulse", "up": True, "reason": ""} in health["drivers"]
            vad = await create_vad(rocd, name="Out of the box", kind="speaker")
            assert vad["state"] == "ready"
            async with events(rocd, "driver.,device.added") as feed:
                os.kill(first_pid, signal.SIGKILL)  # the daemon starts another one
                await feed.kind("driver.down", "pulse")
                await feed.kind("driver.up", "pulse")
                await feed.kind("device.added", vad["device"])
            assert private.starts == 2
            second_pid = private.pid
            assert second_pid is not None
            assert second_pid != first_pid
        # Stopped with the daemon, its directory removed.
        assert private.pid is None
        assert not await trio.Path(private.root).exists()
        assert not await trio.Path(f"/proc/{second_pid}").exists()


def server_descriptions(server: PulseServer) -> dict[str, str]:
    """Every sink's and source's description, read through libpulse (pactl's JSON says
    "(null)" for non-ASCII text)."""
    with pulsectl.Pulse("rocd-tests", server=server.env["PULSE_SERVER"]) as pulse:
        entries = [*pulse.sink_list(), *pulse.source_list()]
        return {e.name: e.description for e in entries}


@pytest.mark.parametrize("name", ["Küche", 'it\'s "quoted" \\ ok', "Salle à manger 🎵"])
async def test_any_vad_name_round_trips(
    rocd: RunningDaemon, pulse_server: PulseServer, name: str
) -> None:
    with trio.fail_after(20):
        vad = await create_vad(rocd, name=name, kind="speaker")
        assert vad["name"] == name
        sink = vad_system_name(vad["uid"])
        assert server_descriptions(pulse_server)[sink] == name  # what apps show
        device = (await rocd.http.get(device_path(vad["device"]))).json()
        assert (device["name"], device["description"]) == (name, name)
        assert (await rocd.http.get(f"/peers/self/vads/{vad['uid']}")).json()["name"] == name
        mic = await create_vad(rocd, name=name, kind="microphone")
        assert server_descriptions(pulse_server)[vad_system_name(mic["uid"])] == name
        for uid in (vad["uid"], mic["uid"]):
            assert (await rocd.http.delete(f"/peers/self/vads/{uid}")).status_code == 204


async def test_vad_created_comes_before_its_updates(rocd: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with events(rocd, "vad.") as feed:
            vad = await create_vad(rocd, name="Ordered", kind="speaker")
            r = await rocd.http.put(f"/peers/self/vads/{vad['uid']}", json={"name": "Ordered 2"})
            assert r.status_code == 200
            first = await feed.next(lambda e: e["subject"] == vad["uid"])
            assert first["kind"] == "vad.created"
            assert first["data"]["vad"] == vad
            second = await feed.next(lambda e: e["subject"] == vad["uid"])
            assert (second["kind"], second["data"]["changed"]) == ("vad.updated", ["name"])
        assert (await rocd.http.delete(f"/peers/self/vads/{vad['uid']}")).status_code == 204


async def test_renaming_a_vad_does_not_cut_off_apps_playing_into_it(
    rocd: RunningDaemon, pulse_server: PulseServer, tmp_path: Path
) -> None:
    wav = tmp_path / "long.wav"
    sf.write(wav, s16_noise(20.0, SPEC.rate, SPEC.channels), SPEC.rate, subtype="PCM_16")
    with trio.fail_after(30):
        vad = await create_vad(rocd, name="Before", kind="speaker")
        sink = vad_system_name(vad["uid"])
        module = sink_of(pulse_server, sink)["owner_module"]
        player = await trio.lowlevel.open_process(
            ["paplay", f"--device={sink}", str(wav)], env=pulse_server.client_env()
        )
        try:
            while not playing_into(pulse_server, sink):  # noqa: ASYNC110 - the server's view
                await trio.sleep(0.05)
            stream = playing_into(pulse_server, sink)
            async with events(rocd, "vad.updated,device.updated") as feed:
                r = await rocd.http.put(
                    f"/peers/self/vads/{vad['uid']}", json={"name": "After: Küche's"}
                )
                assert r.status_code == 200, r.text
                assert (r.json()["name"], r.json()["device"]) == ("After: Küche's", vad["device"])
                event = await feed.kind("vad.updated", vad["uid"])
                assert event["data"]["changed"] == ["name"]
                # (The stream starting may still announce a state change first.)
                changed = await feed.next(
                    lambda e: (
                        e["kind"] == "device.updated"
                        and e["subject"] == vad["device"]
                        and "description" in e["data"]["changed"]
                    )
                )
                assert changed["data"]["device"]["description"] == "After: Küche's"
            # The same sink (same module), the same stream in it, still playing.
            assert sink_of(pulse_server, sink)["owner_module"] == module
            assert playing_into(pulse_server, sink) == stream
            assert player.poll() is None
            assert server_descriptions(pulse_server)[sink] == "After: Küche's"
        finally:
            player.kill()
            await player.wait()
        assert (await rocd.http.delete(f"/peers/self/vads/{vad['uid']}")).status_code == 204


def playing_into(server: PulseServer, sink: str) -> list[int]:
    """Indexes of the streams playing into `sink` now."""
    with pulsectl.Pulse("rocd-tests", server=server.env["PULSE_SERVER"]) as pulse:
        (target,) = [s.index for s in pulse.sink_list() if s.name == sink]
        return sorted(i.index for i in pulse.sink_input_list() if i.sink == target)
