"""Stop signals as `timeout` and a terminal send them, and recordings that survive kill -9.

`timeout N cmd` sends SIGTERM to the command and then to its whole process group; two
quick Ctrl-C reach the whole foreground group twice. Whatever the count, a recording ends
complete, a sender ends with its last packets, and the daemon flushes its state.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.cli.test_send_recv import ROCD, spawn, uris, wait_listening
from tests.ports import free_ports


def wait_for_file(path: Path, seconds: float, timeout: float = 20, *, tone: bool = False) -> None:
    """Until `path` is a WAV holding at least `seconds` of audio (with `tone`, and the
    sender's tone already: a receiver records silence until a sender's packets come, and
    a sender process may take a second to start on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 100:
            info = sf.info(str(path))
            if info.frames >= seconds * info.samplerate and (not tone or tone_peak(path)[1] > 0.4):
                return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {seconds} s" + (" of a tone" if tone else ""))


def signal_group_twice(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    """What `timeout` and a double Ctrl-C do: the signal to the process group, twice, at
    once (then once more while it is stopping)."""
    os.killpg(proc.pid, sig)
    os.killpg(proc.pid, sig)
    time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, sig)


def tone_peak(path: Path) -> tuple[float, float]:
    """(seconds of audio, peak level) of a recording."""
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    return len(data) / rate, float(np.max(np.abs(data))) if len(data) else 0.0


@pytest.mark.parametrize("sig", ["TERM", "INT"])
def test_timeout_leaves_a_complete_recording(tmp_path: Path, sig: str) -> None:
    out = tmp_path / "q.wav"
    ports = free_ports(3)
    # The real `timeout`, as people record N seconds: SIGTERM (or SIGINT) to the child,
    # then to its process group.
    done = subprocess.run(
        ["timeout", "-s", sig, "4", *ROCD, "recv", "-o", f"file:{out}", *uris(ports)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 124, done.stderr  # timeout's status: it had to stop it
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.wav"]
    seconds, _ = tone_peak(out)  # no sender came: silence, paced in real time
    assert 1.5 < seconds < 4.0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_two_quick_signals_to_the_group_leave_a_complete_recording(
    tmp_path: Path, procs: list[subprocess.Popen[str]], sig: signal.Signals
) -> None:
    ports = free_ports(3)
    out = tmp_path / "out.wav"
    recv = spawn(procs, "recv", "-o", f"file:{out}", *uris(ports), new_session=True)
    wait_listening(recv)
    spawn(procs, "send", "-i", "tone:sine:1000", "--duration", "20s", *uris(ports))
    wait_for_file(out, 1.0, tone=True)
    signal_group_twice(recv, sig)
    assert recv.wait(timeout=10) == 0
    assert recv.stderr is not None
    log = recv.stderr.read()
    assert "Traceback" not in log
    seconds, peak = tone_peak(out)
    assert seconds >= 1.0
    assert peak == pytest.approx(0.5, abs=0.01)  # the tone, to the end of the file
    data, _ = sf.read(out, dtype="float32", always_2d=True)
    assert np.max(np.abs(data[-4410:])) > 0.4  # written up to the stop, not cut short


def test_two_quick_signals_to_a_sender_still_say_bye(procs: list[subprocess.Popen[str]]) -> None:
    ports = free_ports(3)
    recv = spawn(procs, "recv", "-o", "null", *uris(ports), "--oneshot")
    wait_listening(recv)
    send = spawn(procs, "send", "-i", "tone:440", "--bye", *uris(ports), new_session=True)
    time.sleep(1.5)
    signal_group_twice(send, signal.SIGINT)
    assert send.wait(timeout=10) == 0
    assert recv.wait(timeout=10) == 0  # ended by the BYE, not by its watchdog
    assert recv.stderr is not None
    assert "ended: bye" in recv.stderr.read()


def test_a_recording_killed_with_sigkill_is_a_valid_wav(
    tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    ports = free_ports(3)
    out = tmp_path / "k.wav"
    recv = spawn(procs, "recv", "-o", f"file:{out}", *uris(ports))
    wait_listening(recv)
    spawn(procs, "send", "-i", "tone:sine:1000", "--duration", "20s", *uris(ports))
    wait_for_file(out, 2.0, tone=True)
    time.sleep(0.3)  # mid-way between two flushes
    started = sf.info(str(out)).frames / 44100
    recv.send_signal(signal.SIGKILL)
    recv.wait(timeout=10)
    seconds, peak = tone_peak(out)
    assert seconds >= started  # everything up to the last flush (half a second)
    assert peak == pytest.approx(0.5, abs=0.01)
    assert out.stat().st_size >= seconds * 44100 * 8  # header sizes match the data


DRIVER_RECORDER = textwrap.dedent(
    """
    import sys, trio
    from rocd.audio import FileDriver, SampleSpec, Tone, ToneGenerator

    async def main() -> None:
        spec = SampleSpec(48000, 2)
        files = FileDriver(sys.argv[1])
        sink = await files.create_virtual("speaker", "vad.wav", spec)
        tone = ToneGenerator(Tone(kind="sine", frequency=1000.0), spec)
        async with files.open_playback(sink.id) as out:
            while True:
                await out.write(tone.generate(480))
                await trio.sleep(0.01)

    trio.run(main)
    """
)


def test_the_daemons_file_devices_survive_sigkill_too(tmp_path: Path) -> None:
    out = tmp_path / "vad.wav"
    proc = subprocess.Popen([sys.executable, "-c", DRIVER_RECORDER, str(tmp_path)])
    try:
        wait_for_file(out, 1.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seconds, peak = tone_peak(out)
    assert seconds >= 1.0
    assert peak == pytest.approx(0.5, abs=0.01)


_SERVING = re.compile(r"serving (http://\S+), state in")


def test_two_quick_signals_stop_the_daemon_and_keep_its_state(tmp_path: Path) -> None:
    args = [*ROCD, "serve", "--state-dir", str(tmp_path), "--api", "127.0.0.1:0"]

    def start() -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = _SERVING.search(proc.stderr.readline())
            if match:
                return proc, match.group(1)
            assert proc.poll() is None, "rocd serve exited early"
        raise AssertionError("rocd serve did not start")

    proc, url = start()
    try:
        assert httpx.put(f"{url}/peers/self", json={"name": "Cellar"}).status_code == 200
        signal_group_twice(proc, signal.SIGTERM)
        _, log = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "stopped" in log
        assert "Traceback" not in log
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    proc, url = start()
    try:
        assert httpx.get(f"{url}/peers/self").json()["name"] == "Cellar"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
