"""External ends against the reference Roc tools: roc-send into a stream that plays on a
device, and a device streamed to roc-recv, sample for sample (RS8M and LDPC); a stream to
a receiver (roc-recv, or `rocd recv`) that stops reporting shows it.

The tools are found through ROC_PREFIX or PATH; without them these tests are skipped
with the reason printed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from subprocess import Popen

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
    roc_tool,
    whole_packets,
    write_wav,
)

NOISE = l16_noise(2.5, seed=21)
#: `rocd` as this test session runs it.
ROCD = [sys.executable, "-m", "rocd.cli"]


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


def start_receiver(
    kind: str, roc_recv: str | None, ports: list[int], control: bool
) -> Popen[bytes]:
    """A receiver listening on `ports` (RS8M; with its control endpoint or without),
    playing into nothing: `roc-recv` or `rocd recv`."""
    command = [roc_recv] if kind == "roc-recv" and roc_recv else [*ROCD, "recv"]
    endpoints = uris(ports, "rs8m")[: 6 if control else 4]
    out = ["-o", "null"] if kind == "rocd recv" else ["-o", "file:/dev/null", "--output-format=wav"]
    return subprocess.Popen(
        [*command, *out, *endpoints], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def sender_heard_a_report(rocd: Rocd, uid: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (end,) = rocd.http.get(f"/streams/{uid}/metrics").json()["ends"]
        if end["sender"]["receivers"]:
            return
        time.sleep(0.1)
    raise AssertionError(f"no receiver report for stream {uid}")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["roc-recv", "rocd recv"])
def test_a_stream_to_a_receiver_that_stops_reporting_degrades_and_comes_back(
    rocd: Rocd, kind: str
) -> None:
    """A sender cannot see an external receiver play, but it hears its RTCP reports: once
    they stop for 5 s the stream is degraded, saying why, and active again when they
    come back. Without a control endpoint nothing comes back, and it stays active."""
    roc_recv = roc_tool("roc-recv")
    if kind == "roc-recv" and roc_recv is None:
        reason = "roc-recv not found: set ROC_PREFIX to a Roc Toolkit 0.4 prefix or PATH"
        print(f"\nSKIPPED: {reason}", file=sys.stderr)
        pytest.skip(reason)
    ports, blind_ports = free_ports(3), free_ports(3)
    receivers = [
        start_receiver(kind, roc_recv, ports, control=True),
        start_receiver(kind, roc_recv, blind_ports, control=False),
    ]
    streams: list[str] = []
    try:
        time.sleep(0.5)  # the receivers bind their ports
        heard = rocd.create(device("tone:sine"), external(ports))["uid"]
        blind = external(blind_ports)
        del blind["external"]["control"]
        unheard = rocd.create(device("tone:sine"), blind)["uid"]
        streams += [heard, unheard]
        rocd.wait_state(heard, "active")
        rocd.wait_state(unheard, "active")
        sender_heard_a_report(rocd, heard)

        for proc in receivers:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
        stopped = time.monotonic()
        stream = rocd.wait_state(heard, "degraded", timeout=10)
        took = time.monotonic() - stopped
        assert stream["reason"] == "sender: " + stream["ends"][0]["reason"]
        assert stream["ends"][0]["reason"].startswith(
            f"the receiver at rtcp://127.0.0.1:{ports[2]} stopped reporting (no RTCP for 5 s)"
        ), stream
        assert took < 7.0, took  # 5 s of silence, checked twice a second
        time.sleep(max(0.0, 6.0 - took))
        assert rocd.stream(unheard)["state"] == "active"  # it cannot know: as before

        receivers[0] = start_receiver(kind, roc_recv, ports, control=True)
        stream = rocd.wait_state(heard, "active", timeout=5)
        assert stream["reason"] == ""
    finally:
        for uid in streams:
            rocd.delete(uid)
        for proc in receivers:
            proc.kill()
            proc.wait()
