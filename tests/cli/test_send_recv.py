"""`rocd send` and `rocd recv` as processes, the way a user swaps them for roc-send/roc-recv."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from tests.e2e.relay import start_relay
from tests.e2e.signals import assert_exact_stream, whole_fec_blocks
from tests.pcap import VECTORS
from tests.ports import free_ports

ROCD = [sys.executable, "-m", "rocd.cli"]
INPUT = VECTORS / "sig2s_stereo.wav"


def uris(ports: list[int], fec: str = "rs8m") -> list[str]:
    return [
        "-s", f"rtp+{fec}://127.0.0.1:{ports[0]}",
        "-r", f"{fec}://127.0.0.1:{ports[1]}",
        "-c", f"rtcp://127.0.0.1:{ports[2]}",
    ]  # fmt: skip


def spawn(
    procs: list[subprocess.Popen[str]], *args: str, new_session: bool = False
) -> subprocess.Popen[str]:
    """`rocd ARGS` as a child (with `new_session`, in its own process group, as a shell
    runs a foreground job: for signals sent to the group)."""
    p = subprocess.Popen(
        [*ROCD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=new_session,
    )  # fmt: skip
    procs.append(p)
    return p


def wait_listening(p: subprocess.Popen[str]) -> None:
    """Until the receiver logs that it is bound."""
    assert p.stderr is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if "receiving on" in line:
            return
        if not line and p.poll() is not None:
            raise AssertionError(f"rocd recv exited {p.returncode}")
    raise AssertionError("rocd recv did not start")


def input_frames() -> npt.NDArray[np.float32]:
    data, rate = sf.read(INPUT, dtype="float32", always_2d=True)
    assert rate == 44100
    frames: npt.NDArray[np.float32] = data[: (len(data) // 221) * 221]
    return frames


@pytest.mark.parametrize("fec", ["rs8m", "ldpc"])
def test_a_file_arrives_sample_for_sample(
    tmp_path: Path, procs: list[subprocess.Popen[str]], fec: str
) -> None:
    ports = free_ports(3)
    out = tmp_path / "out.wav"
    recv = spawn(procs, "recv", "-o", f"file:{out}", *uris(ports, fec), "--oneshot",
                 "--target-latency", "100ms", "--drift-comp", "off")  # fmt: skip
    wait_listening(recv)
    send = spawn(procs, "send", "-i", f"file:{INPUT}", *uris(ports, fec))
    assert send.wait(timeout=30) == 0
    assert recv.wait(timeout=30) == 0  # --oneshot: ends once the sender has gone
    got, rate = sf.read(out, dtype="float32", always_2d=True)
    assert rate == 44100
    assert_exact_stream(input_frames(), got, expected_delay_s=(0.09, 10.0))  # + sender start-up


@pytest.mark.parametrize(
    ("target", "packet", "samples"), [("10ms", "5ms", 221), ("2.5ms", "2.5ms", 110)]
)
def test_a_small_target_latency_holds_sample_for_sample(
    tmp_path: Path, procs: list[subprocess.Popen[str]], target: str, packet: str, samples: int
) -> None:
    # Two processes with their own timers on a shared machine: the receiver reads on
    # nominal time at a fixed point of the sender's bursts, so neither one's late
    # wake-ups make a gap or push the queue out of its bounds.
    ports = free_ports(3)
    out = tmp_path / "out.wav"
    recv = spawn(procs, "recv", "-o", f"file:{out}", *uris(ports), "--oneshot",
                 "--target-latency", target, "--drift-comp", "off")  # fmt: skip
    wait_listening(recv)
    send = spawn(procs, "send", "-i", f"file:{INPUT}", *uris(ports), "--packet-len", packet)
    assert send.wait(timeout=30) == 0
    assert recv.wait(timeout=30) == 0
    assert recv.stderr is not None
    assert "out_of_bounds" not in recv.stderr.read()
    got, _ = sf.read(out, dtype="float32", always_2d=True)
    sent = input_frames()
    sent = sent[: len(sent) // samples * samples]  # the sender drops a partial last packet
    assert_exact_stream(sent, got, expected_delay_s=(0.0, 10.0))


def test_five_percent_loss_through_the_relay_is_repaired(
    tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    ports = free_ports(6)
    out = tmp_path / "out.wav"
    recv = spawn(procs, "recv", "-o", f"file:{out}", *uris(ports[:3]), "--oneshot",
                 "--target-latency", "100ms", "--drift-comp", "off")  # fmt: skip
    wait_listening(recv)
    routes = [f"--route=127.0.0.1:{ports[3 + i]}=127.0.0.1:{ports[i]}" for i in range(3)]
    relay = start_relay(*routes, "--loss", "5%", "--seed", "11", "--stats")
    procs.append(relay)
    send = spawn(procs, "send", "-i", f"file:{INPUT}", *uris(ports[3:]))
    assert send.wait(timeout=30) == 0
    assert recv.wait(timeout=30) == 0
    relay.send_signal(signal.SIGINT)
    assert relay.wait(timeout=10) == 0
    got, _ = sf.read(out, dtype="float32", always_2d=True)
    assert_exact_stream(whole_fec_blocks(input_frames()), got, expected_delay_s=(0.09, 10.0))


def test_one_sender_several_destinations(
    tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    ports = free_ports(6)
    outs = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for out, slot in zip(outs, (ports[:3], ports[3:]), strict=True):
        recv = spawn(procs, "recv", "-o", f"file:{out}", *uris(slot), "--oneshot",
                     "--target-latency", "100ms", "--drift-comp", "off")  # fmt: skip
        wait_listening(recv)
    send = spawn(procs, "send", "-i", f"file:{INPUT}", *uris(ports[:3]), *uris(ports[3:]))
    assert send.wait(timeout=30) == 0
    for recv in procs[:2]:
        assert recv.wait(timeout=30) == 0
    for out in outs:
        got, _ = sf.read(out, dtype="float32", always_2d=True)
        assert_exact_stream(input_frames(), got, expected_delay_s=(0.09, 10.0))


def test_adaptive_latency_comes_down_on_a_clean_link(procs: list[subprocess.Popen[str]]) -> None:
    ports = free_ports(3)
    recv = spawn(procs, "recv", "-o", "null", *uris(ports), "--oneshot", "--metrics",
                 "--target-latency", "auto", "--start-latency", "300ms")  # fmt: skip
    wait_listening(recv)
    send = spawn(procs, "send", "-i", "tone:440", "--duration", "8s", *uris(ports))
    assert send.wait(timeout=30) == 0
    stdout, _ = recv.communicate(timeout=30)
    targets = [
        s["target_ms"]
        for line in stdout.splitlines()
        for s in json.loads(line)["sessions"]
        if s["state"] == "playing"
    ]
    assert targets[0] == pytest.approx(300, abs=1)
    # After the 5 s start, the clean link lets it come down (2 ms a second, and on).
    assert targets[-1] < 297


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_receiver_leaves_a_complete_file(
    tmp_path: Path, procs: list[subprocess.Popen[str]], sig: signal.Signals
) -> None:
    ports = free_ports(3)
    out = tmp_path / "out.flac"
    recv = spawn(procs, "recv", "-o", f"file:{out}", *uris(ports))
    wait_listening(recv)
    send = spawn(procs, "send", "-i", "tone:sine:1000", "--duration", "10s", *uris(ports))
    time.sleep(1.5)
    recv.send_signal(sig)
    assert recv.wait(timeout=10) == 0
    send.kill()
    got, rate = sf.read(out, dtype="float32", always_2d=True)
    assert rate == 44100
    assert 1.0 < len(got) / rate < 3.0
    assert np.max(np.abs(got)) > 0.4  # the tone made it into the file
    assert not list(tmp_path.glob(".*.part"))


def test_send_stops_on_sigint_and_says_bye(
    tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    ports = free_ports(3)
    recv = spawn(procs, "recv", "-o", "null", *uris(ports), "--oneshot")
    wait_listening(recv)
    send = spawn(procs, "send", "-i", "tone:440", "--bye", *uris(ports))
    time.sleep(1.5)
    send.send_signal(signal.SIGINT)
    assert send.wait(timeout=10) == 0
    # BYE ends the session at once: the receiver does not wait for its watchdog.
    assert recv.wait(timeout=10) == 0
    assert recv.stderr is not None
    assert "ended: bye" in recv.stderr.read()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["send", "-i", "tone:440", "-s", "rtp+rs8m://127.0.0.1:1"], "repair"),
        (["send", "-i", "tone:440", "-s", "http://x:1"], "http"),
        (["send", "-i", "tone:440", "-s", "rtp://127.0.0.1:5", "--fec", "rs8m"], "contradicts"),
        (["send", "-i", "wave:440", "-s", "rtp://127.0.0.1:5"], "unknown input"),
        (["send", "-i", "tone:sine:x", "-s", "rtp://127.0.0.1:5"], "tone:sine:x"),
        (["send", "-i", "tone:440", "-s", "rtp+ldpc://127.0.0.1:5", "-r", "ldpc://127.0.0.1:6",
          "--nbrpr", "5"], "7"),
        (["send", "-i", "tone:440", "-s", "rtp://127.0.0.1:5", "--packet-len", "5"], "unit"),
        (["send", "-i", "tone:440", "-s", "rtp://127.0.0.1:5", "-s", "rtp://127.0.0.1:6",
          "-c", "rtcp://127.0.0.1:7"], "2 -s but 1 -c"),
        (["recv", "-o", "file:/tmp/x.wav", "-s", "rtp://127.0.0.1:5", "--target-latency", "x"],
         "unit"),
        (["recv", "-o", "speaker", "-s", "rtp://127.0.0.1:0"], "speaker"),
        (["send", "-i", "tone:sine:-5", "-s", "rtp://127.0.0.1:5"], "positive number of Hz"),
        (["send", "-i", "tone:0", "-s", "rtp://127.0.0.1:5"], "positive number of Hz"),
        (["send", "-i", "tone:sine:nan", "-s", "rtp://127.0.0.1:5"], "positive number of Hz"),
        (["send", "-i", "tone:30000", "-s", "rtp://127.0.0.1:5"], "cannot be played at 44100"),
        (["send", "-i", "tone:440", "-s", "rtp://127.0.0.1:5", "--rate", "7"], "7 Hz"),
        (["send", "-i", "tone:440", "-s", "rtp://127.0.0.1:5", "--nbsrc", "0"], "positive"),
        (["send", "-i", "tone:440", "-s", "rtp://127.0.0.1:5", "--duration", "1e999s"],
         "too long"),
        (["send", "-i", "file:", "-s", "rtp://127.0.0.1:5"], "expected file:PATH"),
        (["recv", "-o", "null", "-s", "rtp://127.0.0.1:5", "--rate", "7"],
         "sample rate 7 Hz is out of range"),
        (["recv", "-o", "null", "-s", "rtp://127.0.0.1:5", "--channels", "0"], "channel count"),
        (["recv", "-o", "file:/tmp/x.mp3", "-s", "rtp://127.0.0.1:5"], "cannot record MP3 files"),
        (["recv", "-o", "file:/tmp/x", "-s", "rtp://127.0.0.1:5"], "without an extension"),
        (["relay", "--route", ":1=:2", "--burst", "0.5"], "burst length"),
        (["relay", "--route", ":1=:2", "--rate", "-5"], "negative"),
        (["--bogus"], "rocd: unrecognized arguments: --bogus"),
        ([], "a COMMAND is required"),
        (["serve", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = subprocess.run([*ROCD, *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_runtime_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    missing = subprocess.run(
        [*ROCD, "send", "-i", f"file:{tmp_path}/none.wav", "-s", "rtp://127.0.0.1:5"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "none.wav" in missing.stderr
    assert "Traceback" not in missing.stderr
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [*ROCD, "recv", "-o", "null", "-s", f"rtp://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        # Of three endpoints, the line names the one whose port is taken.
        busy_repair = subprocess.run(
            [*ROCD, "recv", "-o", "null", "-s", "rtp+rs8m://127.0.0.1:0",
             "-r", f"rs8m://127.0.0.1:{port}", "-c", "rtcp://127.0.0.1:0"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert busy.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in busy.stderr
    assert "Traceback" not in busy.stderr
    assert busy_repair.returncode == 1
    assert len(busy_repair.stderr.strip().splitlines()) == 1, busy_repair.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in busy_repair.stderr


def _one_line_exit_1(args: list[str], message: str) -> None:
    done = subprocess.run([*ROCD, *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Group" not in done.stderr


def test_files_that_cannot_be_used_say_why(tmp_path: Path) -> None:
    _one_line_exit_1(
        ["recv", "-o", f"file:{tmp_path}/nonexistent/x.wav", "-s", "rtp://127.0.0.1:5"],
        f"cannot write {tmp_path}/nonexistent/x.wav: no such directory",
    )
    (tmp_path / "taken.wav").mkdir()
    _one_line_exit_1(
        ["recv", "-o", f"file:{tmp_path}/taken.wav", "-s", "rtp://127.0.0.1:5"],
        "it is a directory",
    )
    _one_line_exit_1(
        ["send", "-i", f"file:{tmp_path}", "-s", "rtp://127.0.0.1:5"],
        f"cannot read {tmp_path}: it is a directory",
    )
    (tmp_path / "notes.txt").write_text("not audio")
    _one_line_exit_1(
        ["send", "-i", f"file:{tmp_path}/notes.txt", "-s", "rtp://127.0.0.1:5"],
        "cannot read",
    )
    six = tmp_path / "six.wav"
    sf.write(six, np.zeros((441, 6), np.float32), 44100)
    _one_line_exit_1(
        ["send", "-i", f"file:{six}", "-s", "rtp://127.0.0.1:5"],
        "has 6 channels; a stream carries 1 or 2: mix it down first",
    )
    state = tmp_path / "state-file"
    state.write_text("x")
    _one_line_exit_1(
        ["serve", "--state-dir", str(state), "--api", "127.0.0.1:0"],
        f"state directory {state} is not a directory",
    )


def test_a_relay_on_a_busy_port_is_one_line() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        _one_line_exit_1(
            ["relay", "--route", f"127.0.0.1:{port}=127.0.0.1:9"],
            f"cannot listen on 127.0.0.1:{port}: Address already in use",
        )


def test_an_mp3_output_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "x.mp3"
    done = subprocess.run(
        [*ROCD, "recv", "-o", f"file:{out}", "-s", "rtp://127.0.0.1:5"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert not out.exists()
