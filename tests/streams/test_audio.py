"""Streams with real daemons (processes) and real audio through a real PulseAudio.

What a stream plays into a null sink is recorded from the sink's monitor and compared
with what it was given: sample for sample where the path is lossless (no resampling,
FEC-repaired loss), by spectrum where streams are mixed.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bench.stream_start import _PLAYING, _SET_UP
from tests.cluster.instances import wait_for
from tests.e2e.relay import start_relay
from tests.e2e.signals import assert_exact_stream, whole_fec_blocks
from tests.ports import free_ports
from tests.pulse_server import PulseServer

from .conftest import (
    EXACT,
    LOSSY,
    RATE,
    Frames,
    NullSink,
    Recorder,
    Rocd,
    device,
    external,
    l16_noise,
    ports_of,
    whole_packets,
    write_wav,
)

NOISE = l16_noise(3.0, seed=5)
TONES = {440.0: 0.15, 1000.0: 0.15, 2500.0: 0.15}


def sine(freq: float, amplitude: float, seconds: float) -> Frames:
    t = np.arange(round(seconds * RATE)) / RATE
    mono = np.round(amplitude * np.sin(2 * np.pi * freq * t) * 32768) / 32768
    return np.repeat(mono[:, None], 2, axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def daemons(
    pulse_server: PulseServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Rocd, Rocd]]:
    """Two daemons on the same sound server (different sinks), as two machines would be."""
    made = []
    try:
        for name in ("a", "b"):
            rocd = Rocd(tmp_path_factory.mktemp(f"rocd-{name}"), pulse_server)
            write_wav(rocd.files / "noise.wav", NOISE)
            for freq, amp in TONES.items():
                write_wav(rocd.files / f"sine{int(freq)}.wav", sine(freq, amp, 3.0))
            write_wav(rocd.files / "long.wav", sine(1000.0, 0.4, 4.0))
            made.append(rocd.start())
        yield made[0], made[1]
    finally:
        for rocd in made:
            rocd.kill()


def play_out(rocd: Rocd, uid: str, recorder: Recorder) -> Frames:
    """Wait for a file stream to end (its source ended) and its queue to play out."""
    rocd.wait_state(uid, "stopped", timeout=20)
    time.sleep(0.6)
    frames = recorder.stop()
    rocd.delete(uid)
    return frames


def test_a_file_plays_sample_for_sample_into_a_sink(
    daemons: tuple[Rocd, Rocd], pulse_server: PulseServer, tmp_path: Path
) -> None:
    a, _ = daemons
    sink = NullSink(pulse_server, "exact_a")
    try:
        a.wait_device(sink.device)
        recorder = Recorder(pulse_server, sink.name, tmp_path / "rec.raw")
        stream = a.create(device("file:source:noise.wav"), device(sink.device), **EXACT)
        assert [e["role"] for e in stream["ends"]] == ["receiver", "sender"]
        got = play_out(a, stream["uid"], recorder)
    finally:
        sink.unload()
    assert_exact_stream(whole_packets(NOISE), got, expected_delay_s=(0.0, 30.0))
    check_start_up_logged(a, stream["uid"], target_ms=EXACT["latency"]["target_ms"])


def check_start_up_logged(rocd: Rocd, uid: str, target_ms: float) -> None:
    """The log lines `bench.stream_start --breakdown` reads: the setup's steps with their
    times, and the receiver's start once it holds its target (not later)."""
    lines = rocd.log.read_text(errors="replace").splitlines()
    set_up = [m for line in lines if (m := _SET_UP.match(line)) and m.group(2) == uid]
    assert len(set_up) == 1, rocd.log_tail()
    steps = [part.rsplit(" ", 1)[0] for part in set_up[0].group(3).split(", ")]
    assert steps == ["prepare_receiver", "prepare_sender", "commit_receiver", "commit_sender"]
    waits = [
        float(line.rsplit("playing, ", 1)[1].split(" ")[0])
        for line in lines
        if _PLAYING.match(line)
    ]
    assert waits, rocd.log_tail()
    # At most its target (less the first packets it got) and a few read periods: the
    # first packet's read may come late, never the start once the target is held.
    assert waits[-1] <= target_ms + 100, waits


@pytest.mark.parametrize("fec", ["ldpc", "none"])
def test_two_daemons_joined_by_external_endpoints(
    daemons: tuple[Rocd, Rocd], pulse_server: PulseServer, tmp_path: Path, fec: str
) -> None:
    a, b = daemons
    sink = NullSink(pulse_server, f"ext_b_{fec}")
    try:
        b.wait_device(sink.device)
        recorder = Recorder(pulse_server, sink.name, tmp_path / "rec.raw")
        into_b = b.create(external([0, 0, 0], fec), device(sink.device), **EXACT)
        (end,) = into_b["ends"]
        assert end["role"] == "receiver"
        from_a = a.create(device("file:source:noise.wav"), external(ports_of(end), fec), **EXACT)
        a.wait_state(from_a["uid"], "stopped", timeout=20)
        a.delete(from_a["uid"])
        time.sleep(0.6)
        got = recorder.stop()
        b.delete(into_b["uid"])
    finally:
        sink.unload()
    assert_exact_stream(whole_packets(NOISE), got, expected_delay_s=(0.0, 30.0))


def test_five_percent_loss_through_the_relay_is_repaired(
    daemons: tuple[Rocd, Rocd], pulse_server: PulseServer, tmp_path: Path
) -> None:
    a, b = daemons
    sink = NullSink(pulse_server, "lossy_b")
    relay = None
    try:
        b.wait_device(sink.device)
        recorder = Recorder(pulse_server, sink.name, tmp_path / "rec.raw")
        into_b = b.create(external([0, 0, 0]), device(sink.device), **LOSSY)
        target = ports_of(into_b["ends"][0])
        listen = free_ports(3)
        pairs = zip(listen, target, strict=True)
        routes = [f"--route=127.0.0.1:{lp}=127.0.0.1:{tp}" for lp, tp in pairs]
        relay = start_relay(*routes, "--loss", "5%", "--seed", "3")
        from_a = a.create(device("file:source:noise.wav"), external(listen), **LOSSY)
        a.wait_state(from_a["uid"], "stopped", timeout=20)
        time.sleep(0.6)
        metrics = b.http.get(f"/streams/{into_b['uid']}/metrics").json()
        a.delete(from_a["uid"])
        got = recorder.stop()
        b.delete(into_b["uid"])
    finally:
        if relay is not None:
            relay.send_signal(signal.SIGINT)
            relay.communicate(timeout=10)
        sink.unload()
    (end,) = metrics["ends"]
    assert end["receiver"]["packetsLost"] > 0, metrics  # the relay did drop packets
    assert end["receiver"]["recovered_packets"] > 0, metrics
    assert_exact_stream(whole_fec_blocks(NOISE), got, expected_delay_s=(0.0, 30.0))


def test_an_app_plays_into_a_vad_that_streams_to_a_sink(
    daemons: tuple[Rocd, Rocd], pulse_server: PulseServer, tmp_path: Path
) -> None:
    a, _ = daemons
    sink = NullSink(pulse_server, "from_vad")
    r = a.http.post("/peers/self/vads", json={"name": "Laptop", "kind": "speaker", "rate": RATE})
    assert r.status_code == 201, r.text
    vad = r.json()
    clip = tmp_path / "clip.wav"
    sent = l16_noise(2.0, seed=9)
    write_wav(clip, np.concatenate([sent, np.zeros((RATE // 5, 2), np.float32)]))
    try:
        a.wait_device(sink.device)
        recorder = Recorder(pulse_server, sink.name, tmp_path / "rec.raw")
        stream = a.create({"peer": "self", "vad": vad["uid"]}, device(sink.device), **EXACT)
        a.wait_state(stream["uid"], "starting", "active")
        subprocess.run(
            ["paplay", f"--device=rocd_vad_{vad['uid']}", str(clip)],
            env=pulse_server.client_env(), check=True, timeout=20,
        )  # fmt: skip
        time.sleep(0.6)
        assert a.stream(stream["uid"])["state"] == "active"
        got = recorder.stop()
        a.delete(stream["uid"])
    finally:
        a.http.delete(f"/peers/self/vads/{vad['uid']}")
        sink.unload()
    assert_exact_stream(sent, got, expected_delay_s=(0.0, 30.0))


def band_power(x: Frames, freq: float, width: float = 15.0) -> tuple[float, float]:
    """(power within `width` Hz of `freq`, mean power per bin elsewhere above 50 Hz)."""
    mono = x[:, 0].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(mono * np.blackman(len(mono)))) ** 2
    freqs = np.fft.rfftfreq(len(mono), 1 / RATE)
    near = np.abs(freqs - freq) <= width
    return float(spectrum[near].sum()), float(np.median(spectrum[freqs > 50]))


def test_three_senders_mix_into_one_sink(
    daemons: tuple[Rocd, Rocd], pulse_server: PulseServer, tmp_path: Path
) -> None:
    a, _ = daemons
    sink = NullSink(pulse_server, "mixed")
    try:
        a.wait_device(sink.device)
        recorder = Recorder(pulse_server, sink.name, tmp_path / "rec.raw")
        uids = [
            a.create(device(f"file:source:sine{int(freq)}.wav"), device(sink.device), **EXACT)[
                "uid"
            ]
            for freq in TONES
        ]
        for uid in uids:
            a.wait_state(uid, "active")
        time.sleep(1.0)
        got = recorder.stop()
        for uid in uids:
            a.delete(uid)
    finally:
        sink.unload()
    playing = got[-RATE:]  # the last second: all three play
    assert np.max(np.abs(playing)) > 0.3  # more than any one tone alone
    for freq in TONES:
        power, floor = band_power(playing, freq)
        assert power > 1e6 * floor, (freq, power, floor)
    # Each at its own level: three equal tones make three equal peaks.
    powers = [band_power(playing, f)[0] for f in TONES]
    assert max(powers) / min(powers) < 1.5


def test_volume_changes_live_without_a_gap(
    daemons: tuple[Rocd, Rocd], pulse_server: PulseServer, tmp_path: Path
) -> None:
    a, _ = daemons
    sink = NullSink(pulse_server, "patched")
    try:
        a.wait_device(sink.device)
        recorder = Recorder(pulse_server, sink.name, tmp_path / "rec.raw")
        stream = a.create(device("file:source:long.wav"), device(sink.device), **EXACT)
        a.wait_state(stream["uid"], "active")
        time.sleep(1.0)
        r = a.http.patch(f"/streams/{stream['uid']}", json={"volume": 0.5})
        assert r.status_code == 200, r.text
        assert r.json()["settings"]["volume"] == 0.5
        got = play_out(a, stream["uid"], recorder)
    finally:
        sink.unload()
    mono = np.abs(got[:, 0])
    loud = np.nonzero(mono > 0.01)[0]
    body = got[loud[0] : loud[-1], 0]
    # Peak level per 10 ms: 0.4 before, 0.4 * 0.5^3 = 0.05 after, never a silent block.
    blocks = np.abs(body[: len(body) // 441 * 441]).reshape(-1, 441).max(axis=1)
    assert blocks.min() > 0.04, "a gap in the audio"
    assert np.isclose(blocks[:50].max(), 0.4, atol=0.01)
    assert np.isclose(np.median(blocks[-50:]), 0.05, atol=0.005)


def test_a_vad_remade_or_deleted_under_a_stream_takes_its_audio_nowhere_else(
    daemons: tuple[Rocd, Rocd], pulse_server: PulseServer
) -> None:
    """The sound server moves the streams of a sink it unloads to its fallback sink (a
    real speaker on a desktop). A VAD remade (a new rate) or deleted under a playing
    stream ends rocd's playback first: remade, the stream plays into the new one;
    deleted, the stream is degraded and plays nowhere."""
    a, _ = daemons
    r = a.http.post("/peers/self/vads", json={"name": "Fallback", "kind": "speaker"})
    assert r.status_code == 201, r.text
    fallback = r.json()["uid"]
    pulse_server.pactl("set-default-sink", f"rocd_vad_{fallback}")  # where the server moves
    r = a.http.post("/peers/self/vads", json={"name": "Doomed", "kind": "speaker"})
    assert r.status_code == 201, r.text
    vad = r.json()["uid"]
    sink = f"rocd_vad_{vad}"

    def playing() -> list[str]:
        """The sinks rocd's playback into the VAD plays into now."""
        sinks = {s["index"]: s for s in pulse_server.pactl_json("list", "sinks")}
        return [
            f"{sinks[i['sink']]['name']} {sinks[i['sink']]['sample_specification']}"
            for i in pulse_server.pactl_json("list", "sink-inputs")
            if i["properties"].get("media.name") == f"playback pulse:sink:{sink}"
        ]

    uid = a.create(device("tone:sine"), {"peer": "self", "vad": vad})["uid"]
    try:
        a.wait_state(uid, "active")
        wait_for("playing into the VAD", playing, lambda p: p == [f"{sink} float32le 2ch 48000Hz"])
        assert a.http.put(f"/peers/self/vads/{vad}", json={"rate": 32000}).status_code == 200
        # Into the new sink (whose rate the server matches to the stream's 48 kHz).
        wait_for("playing into the remade VAD", playing,
                 lambda p: len(p) == 1 and p[0].startswith(f"{sink} "))  # fmt: skip
        assert a.http.delete(f"/peers/self/vads/{vad}").status_code == 204
        stream = a.wait_state(uid, "degraded")
        assert f"pulse:sink:{sink}" in stream["reason"]
        for _ in range(10):  # and it stays so
            assert playing() == []
            time.sleep(0.15)
        assert a.stream(uid)["state"] == "degraded"
    finally:
        a.delete(uid)
        a.http.delete(f"/peers/self/vads/{fallback}")
