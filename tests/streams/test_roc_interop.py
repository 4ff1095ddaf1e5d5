"""External ends against the reference Roc tools: roc-send into a stream that plays on a
device, and a device streamed to roc-recv, sample for sample (RS8M and LDPC).

The tools are found through ROC_PREFIX or PATH; without them these tests are skipped
with the reason printed.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf

from tests.e2e.signals import assert_exact_stream
from tests.ports import free_ports
from tests.pulse_server import PulseServer

from .conftest import (
    EXACT,
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

NOISE = l16_noise(2.5, seed=21)


@pytest.fixture(scope="module")
def rocd(pulse_server: PulseServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rocd]:
    daemon = Rocd(tmp_path_factory.mktemp("rocd-interop"), pulse_server)
    write_wav(daemon.files / "noise.wav", NOISE)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.kill()


def uris(ports: list[int], fec: str) -> list[str]:
    return [
        "-s", f"rtp+{fec}://127.0.0.1:{ports[0]}",
        "-r", f"{fec}://127.0.0.1:{ports[1]}",
        "-c", f"rtcp://127.0.0.1:{ports[2]}",
    ]  # fmt: skip


@pytest.mark.parametrize("fec", ["rs8m", "ldpc"])
def test_roc_send_into_a_stream_that_plays_on_a_device(
    rocd: Rocd,
    pulse_server: PulseServer,
    roc_tools: tuple[str, str],
    tmp_path: Path,
    fec: str,
) -> None:
    roc_send, _ = roc_tools
    clip = tmp_path / "clip.wav"
    write_wav(clip, NOISE)
    sink = NullSink(pulse_server, f"from_roc_{fec}")
    try:
        rocd.wait_device(sink.device)
        recorder = Recorder(pulse_server, sink.name, tmp_path / "rec.raw")
        stream = rocd.create(external([0, 0, 0], fec), device(sink.device), **EXACT)
        ports = ports_of(stream["ends"][0])
        done = subprocess.run(
            [roc_send, "-i", f"file:{clip}", *uris(ports, fec)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        time.sleep(0.6)
        metrics = rocd.http.get(f"/streams/{stream['uid']}/metrics").json()
        got = recorder.stop()
        rocd.delete(stream["uid"])
    finally:
        sink.unload()
    (end,) = metrics["ends"]
    assert end["receiver"]["packetsReceived"] > 400, metrics
    assert end["receiver"]["device_underruns"] == 0, metrics
    assert_exact_stream(whole_packets(NOISE), got, expected_delay_s=(0.0, 30.0))


@pytest.mark.parametrize("fec", ["rs8m", "ldpc"])
def test_a_device_streamed_to_roc_recv(
    rocd: Rocd, roc_tools: tuple[str, str], tmp_path: Path, fec: str
) -> None:
    _, roc_recv = roc_tools
    ports = free_ports(3)
    out = tmp_path / "out.wav"
    recv = subprocess.Popen(
        [roc_recv, "-o", f"file:{out}", *uris(ports, fec), "--latency-profile=intact",
         "--target-latency=100ms"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(0.5)  # roc-recv binds its ports
        stream = rocd.create(device("file:source:noise.wav"), external(ports, fec))
        assert stream["settings"]["fec"]["scheme"] == fec
        rocd.wait_state(stream["uid"], "stopped", timeout=20)
        time.sleep(0.5)
        rocd.delete(stream["uid"])
    finally:
        recv.send_signal(signal.SIGTERM)
        _, err = recv.communicate(timeout=10)
    got, rate = sf.read(out, dtype="float32", always_2d=True)
    assert rate == 44100, err
    # roc-recv starts once it holds its target and drops the excess by whole packets: its
    # first 10 ms read may find up to one read and one tick of our sender (10 ms, two
    # packets) beyond the target, so up to 4 packets of the start may be dropped.
    assert_exact_stream(whole_packets(NOISE), got, trim=4 * 221, expected_delay_s=(0.0, 30.0))
