"""Streams across a cluster of three daemons (processes paired over ZeroMQ) with real
audio: what each stream plays into a PulseAudio null sink is recorded from the sink's
monitor and compared with what was sent, sample for sample where the path is lossless.

Every combination of ends: the sender on the coordinating instance and the receiver on
another, the other way round, and both on instances other than the one asked; a VAD an
app plays into; three senders on three instances mixed in one sink; a peer killed with
-9 mid-stream and restarted (the stream plays again within 3 s, with no API call).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from tests.cluster.instances import Instance, wait_for
from tests.e2e.signals import assert_exact_stream
from tests.pulse_server import PulseServer

from .cluster import (
    after_lead,
    create,
    end,
    files_of,
    instance,
    mesh,
    stream_of,
    uids,
    wait_stream,
    with_lead,
)
from .conftest import EXACT, RATE, Frames, NullSink, Recorder, l16_noise, whole_packets, write_wav
from .test_audio import band_power, sine

pytestmark = pytest.mark.slow

NOISE = l16_noise(1.5, seed=21)
TONES = {"a": 440.0, "b": 1000.0, "c": 2500.0}


class Cluster:
    def __init__(self, a: Instance, b: Instance, c: Instance, pulse: PulseServer) -> None:
        self.a, self.b, self.c = a, b, c
        self.nodes = [a, b, c]
        self.pulse = pulse

    def sink(self, name: str) -> NullSink:
        sink = NullSink(self.pulse, name)
        for node in self.nodes:
            wait_for(
                f"{node.name} lists {name}",
                partial(device_ids, node),
                lambda ids: sink.device in ids,
            )
        return sink


def device_ids(node: Instance) -> list[str]:
    return [d["id"] for d in node.get("/peers/self/devices").json()["devices"]]


@pytest.fixture(scope="module")
def cluster(
    pulse_server: PulseServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster-audio")
    nodes = [instance(name, root, pulse_server) for name in ("a", "b", "c")]
    for node in nodes:
        write_wav(files_of(node) / "noise.wav", with_lead(NOISE))
        write_wav(files_of(node) / "tone.wav", sine(TONES[node.name], 0.15, 3.0))
    try:
        mesh(nodes)
        yield Cluster(nodes[0], nodes[1], nodes[2], pulse_server)
    finally:
        for node in nodes:
            node.stop()


def play_file(cluster: Cluster, coordinator: Instance, source: Instance, destination: Instance,
              tmp_path: Path, name: str) -> tuple[Frames, dict[str, object]]:  # fmt: skip
    """noise.wav on `source` to a new sink listed by `destination`, set up by
    `coordinator`; what the sink played, and the stream as created."""
    sink = cluster.sink(name)
    try:
        recorder = Recorder(cluster.pulse, sink.name, tmp_path / f"{name}.raw")
        stream = create(
            coordinator,
            end(source, "file:source:noise.wav"),
            end(destination, sink.device),
            **EXACT,
        )
        wait_stream(coordinator, stream["uid"], "stopped", timeout=15)
        time.sleep(0.5)
        got = recorder.stop()
        assert coordinator.delete(f"/streams/{stream['uid']}").status_code == 204
    finally:
        sink.unload()
    return got, stream


def test_a_file_on_a_plays_sample_for_sample_on_bs_sink(cluster: Cluster, tmp_path: Path) -> None:
    a, b = cluster.a, cluster.b
    got, stream = play_file(cluster, a, a, b, tmp_path, "x_a_to_b")
    ends = {e["role"]: e for e in stream["ends"]}  # type: ignore[attr-defined]
    assert (ends["sender"]["peer"], ends["receiver"]["peer"]) == (a.uid, b.uid)
    assert ends["sender"]["path"] == "direct"
    assert_exact_stream(
        after_lead(whole_packets(with_lead(NOISE))), got, expected_delay_s=(0.0, 30.0)
    )


@pytest.mark.parametrize(
    "asked", ["receiver", "third"], ids=["asked_where_it_plays", "asked_a_third_instance"]
)
def test_any_instance_sets_up_a_stream_between_any_two(
    cluster: Cluster, tmp_path: Path, asked: str
) -> None:
    """From C's sink's point of view: B's file played there, set up by C (the receiver
    local, the sender remote), or by A (neither end on the instance asked)."""
    coordinator = cluster.c if asked == "receiver" else cluster.a
    got, stream = play_file(cluster, coordinator, cluster.b, cluster.c, tmp_path, f"x_{asked}")
    assert {(e["role"], e["peer"]) for e in stream["ends"]} == {  # type: ignore[attr-defined]
        ("sender", cluster.b.uid),
        ("receiver", cluster.c.uid),
    }
    assert_exact_stream(
        after_lead(whole_packets(with_lead(NOISE))), got, expected_delay_s=(0.0, 30.0)
    )


def test_every_instance_lists_the_whole_clusters_streams(cluster: Cluster) -> None:
    a, b, c = cluster.a, cluster.b, cluster.c
    ab = create(c, end(a, "tone:sine"), end(b, "tone:null"))["uid"]
    ca = create(b, end(c, "tone:sine"), end(a, "tone:null"))["uid"]
    try:
        for node in cluster.nodes:
            assert sorted(uids(node)) == sorted([ab, ca]), node.name
            wait_stream(node, ab, "active")
        # C holds no end of A -> B, and answers for it all the same.
        metrics = c.get(f"/streams/{ab}/metrics").json()
        assert {(e["role"], e["peer"]) for e in metrics["ends"]} == {
            ("sender", a.uid),
            ("receiver", b.uid),
        }
    finally:
        for uid in (ab, ca):
            assert a.delete(f"/streams/{uid}").status_code == 204
    for node in cluster.nodes:
        assert uids(node) == []


def test_an_app_plays_into_a_vad_on_a_and_it_plays_on_bs_sink(
    cluster: Cluster, tmp_path: Path
) -> None:
    a, b = cluster.a, cluster.b
    r = a.post("/peers/self/vads", {"name": "Laptop", "kind": "speaker", "rate": RATE})
    assert r.status_code == 201, r.text
    vad = r.json()
    clip = tmp_path / "clip.wav"
    sent = l16_noise(1.5, seed=22)
    write_wav(clip, np.concatenate([sent, np.zeros((RATE // 5, 2), np.float32)]))
    sink = cluster.sink("x_from_vad")
    try:
        recorder = Recorder(cluster.pulse, sink.name, tmp_path / "rec.raw")
        # One call, to A: its VAD's audio to B's sink.
        stream = create(a, end(a, f"vad:{vad['uid']}"), end(b, sink.device), **EXACT)
        wait_stream(b, stream["uid"], "starting", "active")
        subprocess.run(
            ["paplay", f"--device=rocd_vad_{vad['uid']}", str(clip)],
            env=cluster.pulse.client_env(), check=True, timeout=20,
        )  # fmt: skip
        time.sleep(0.5)
        assert stream_of(b, stream["uid"])["state"] == "active"
        got = recorder.stop()
        assert a.delete(f"/streams/{stream['uid']}").status_code == 204
    finally:
        a.delete(f"/peers/self/vads/{vad['uid']}")
        sink.unload()
    assert_exact_stream(sent, got, expected_delay_s=(0.0, 30.0))


def test_three_senders_on_three_instances_mix_in_one_sink(cluster: Cluster, tmp_path: Path) -> None:
    sink = cluster.sink("x_mixed")
    try:
        recorder = Recorder(cluster.pulse, sink.name, tmp_path / "rec.raw")
        streams = [
            create(
                cluster.c, end(node, "file:source:tone.wav"), end(cluster.b, sink.device), **EXACT
            )["uid"]
            for node in cluster.nodes
        ]
        for uid in streams:
            wait_stream(cluster.b, uid, "active")
        time.sleep(1.0)
        got = recorder.stop()
        for uid in streams:
            assert cluster.c.delete(f"/streams/{uid}").status_code == 204
    finally:
        sink.unload()
    playing = got[-RATE:]  # the last second: all three play
    for freq in TONES.values():
        power, floor = band_power(playing, freq)
        assert power > 1e6 * floor, (freq, power, floor)
    powers = [band_power(playing, f)[0] for f in TONES.values()]
    assert max(powers) / min(powers) < 1.5  # each at its own level


class Listener:
    """Reads a sink's monitor as it plays; `loud_after(t)`: when sound was next heard."""

    def __init__(self, pulse: PulseServer, sink: str) -> None:
        self.proc = subprocess.Popen(
            ["parec", f"--device={sink}.monitor", "--raw", "--format=float32le",
             f"--rate={RATE}", "--channels=2", "--latency-msec=10"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=pulse.client_env(),
        )  # fmt: skip
        self.loud: list[float] = []  # read times of 10 ms blocks holding sound
        self.quiet: list[float] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while block := self.proc.stdout.read(441 * 8):
            now = time.monotonic()
            data = np.frombuffer(block, np.float32)
            (self.loud if np.max(np.abs(data)) > 0.05 else self.quiet).append(now)

    def loud_after(self, t: float, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            heard = [x for x in self.loud if x >= t]
            if heard:
                return heard[0]
            time.sleep(0.01)
        raise AssertionError("no sound at the sink")

    def silent_since(self, t: float) -> bool:
        """Only silence was read since `t` (and some was)."""
        return any(x >= t for x in self.quiet) and not any(x >= t for x in self.loud)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._thread.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.mark.parametrize("killed", ["receiver", "sender"])
def test_a_peer_killed_mid_stream_is_back_within_3_s_with_no_api_call(
    cluster: Cluster, killed: str
) -> None:
    a, b, c = cluster.a, cluster.b, cluster.c
    victim = b if killed == "receiver" else a
    sink = cluster.sink(f"x_kill_{killed}")
    listener = Listener(cluster.pulse, sink.name)
    try:
        stream = create(c, end(a, "tone:sine"), end(b, sink.device), **EXACT)
        uid = stream["uid"]
        wait_stream(c, uid, "active")
        listener.loud_after(time.monotonic() - 1)
        victim.kill9()
        # Every instance that lists it shows it degraded, naming the instance gone.
        for node in [n for n in cluster.nodes if n is not victim]:
            shown, took = wait_for(
                f"{node.name} shows the stream degraded because of {victim.name}",
                partial(stream_of, node, uid),
                lambda s: s["state"] == "degraded" and victim.uid in s["reason"],
                6.0,
            )
            print(f"{node.name} shows it degraded {took:.2f} s after the kill: {shown['reason']}")
        # Nothing plays meanwhile: the stream is down, not just quiet for a moment.
        quiet_from = time.monotonic()
        time.sleep(0.3)
        assert listener.silent_since(quiet_from)
        launched = time.monotonic()
        victim.start()
        back = time.monotonic()
        heard = listener.loud_after(launched, timeout=10)
        print(
            f"killed the {killed} ({victim.name}): serving again {back - launched:.2f} s after "
            f"the restart; sound at the sink {heard - launched:.2f} s after the restart, "
            f"{heard - back:+.2f} s from serving"
        )
        assert heard - back < 3.0
        for node in cluster.nodes:
            _, took = wait_stream(node, uid, "active", timeout=10)
            print(f"  {node.name} shows it active {time.monotonic() - back:.2f} s after serving")
            assert time.monotonic() - back < 3.0
        assert c.delete(f"/streams/{uid}").status_code == 204
    finally:
        listener.close()
        sink.unload()
