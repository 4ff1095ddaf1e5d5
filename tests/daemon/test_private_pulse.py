"""The private sound server a daemon runs when the machine has none: where it is, how apps
and `rocd send/recv` use it, and what is left after a daemon killed with -9.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf

from rocd.audio import private_pulse_root
from tests.e2e.signals import align, chirp, snr_db
from tests.ports import free_ports

from .process import DaemonProcess, state_args

ROCD = [sys.executable, "-m", "rocd.cli"]


def start(spawn: list[DaemonProcess], state: Path, *, new_session: bool = False) -> DaemonProcess:
    """A daemon that finds no sound server (one that does not exist) and runs its own."""
    state.mkdir(parents=True, exist_ok=True)
    cfg = state / "rocd.toml"
    cfg.write_text(f'[audio]\npulse = "auto"\npulse_server = "unix:{state}/none/native"\n')
    proc = DaemonProcess([*state_args(state), "--config", str(cfg)], new_session=new_session)
    spawn.append(proc)
    proc.wait_serving(timeout=30)
    return proc


def private_address(proc: DaemonProcess) -> str:
    address: str = httpx.get(f"{proc.url}/health").json()["pulse_server"]
    return address


def test_its_address_is_logged_reported_and_stable(
    tmp_path: Path, spawn: list[DaemonProcess]
) -> None:
    state = tmp_path / "a"
    proc = start(spawn, state)
    address = private_address(proc)
    root = private_pulse_root(state)
    assert address == f"unix:{root}/run/pulse/native"
    assert f"private sound server: PULSE_SERVER={address}" in proc.text
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.wait_exit() == 0
    assert not root.exists()  # a clean stop removes it
    again = start(spawn, state)
    assert private_address(again) == address  # same place after a restart


def test_ctrl_c_in_a_terminal_stops_the_daemon_then_its_server(
    tmp_path: Path, spawn: list[DaemonProcess]
) -> None:
    # A terminal's Ctrl-C (and `timeout`) signals the whole foreground process group:
    # the server is not in it, so it does not die first under the daemon (which said
    # "pulseaudio exited ...; restarting" as it stopped); the daemon stops it itself.
    # Nor are the recorder and player of its streams' devices (parec, pacat).
    proc = start(spawn, tmp_path / "a", new_session=True)
    root = private_pulse_root(tmp_path / "a")
    server_pid = int((root / "server.pid").read_text())
    vad = httpx.post(f"{proc.url}/peers/self/vads", json={"name": "S", "kind": "speaker"})
    assert vad.status_code == 201, vad.text
    for source, destination in (
        ({"peer": "self", "device": "tone:sine"}, {"peer": "self", "vad": vad.json()["uid"]}),
        ({"peer": "self", "vad": vad.json()["uid"]}, {"peer": "self", "device": "tone:null"}),
    ):
        made = httpx.post(
            f"{proc.url}/streams", json={"source": source, "destination": destination}
        )
        assert made.status_code == 201, made.text
    deadline = time.monotonic() + 10
    while {s["state"] for s in httpx.get(f"{proc.url}/streams").json()} != {"active"}:
        assert time.monotonic() < deadline, httpx.get(f"{proc.url}/streams").text
        time.sleep(0.1)
    os.killpg(proc.proc.pid, signal.SIGINT)
    assert proc.wait_exit() == 0
    assert "private sound server: pulseaudio exited" not in proc.text
    assert "restarting" not in proc.text
    assert " broke: " not in proc.text
    assert not Path(f"/proc/{server_pid}").exists()
    assert not root.exists()


def test_what_a_killed_daemon_left_is_cleaned_at_the_next_start(
    tmp_path: Path, spawn: list[DaemonProcess]
) -> None:
    first = start(spawn, tmp_path / "a")
    root = private_pulse_root(tmp_path / "a")
    server_pid = int((root / "server.pid").read_text())
    first.proc.send_signal(signal.SIGKILL)
    first.wait_exit()
    assert root.exists()  # nobody was there to remove it
    # Another daemon (another state directory) cleans it up as it starts.
    other = start(spawn, tmp_path / "b")
    assert not root.exists()
    assert f"removed {root}" in other.text
    deadline = time.monotonic() + 5
    while Path(f"/proc/{server_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{server_pid}").exists()
    # A live daemon's directory is never touched.
    assert private_pulse_root(tmp_path / "b").exists()


def test_rocd_send_and_recv_reach_its_virtual_devices(
    tmp_path: Path, spawn: list[DaemonProcess]
) -> None:
    """As the README says: PULSE_SERVER from /health, then pulse:NAME as usual."""
    daemon = start(spawn, tmp_path / "a")
    env = {**os.environ, "PULSE_SERVER": private_address(daemon)}
    vads = []
    for name in ("In", "Out"):
        r = httpx.post(
            f"{daemon.url}/peers/self/vads",
            json={"name": name, "kind": "speaker", "rate": 44100, "channels": 2},
        )
        assert r.status_code == 201, r.text
        vads.append(r.json()["device"].split(":", 2)[2])  # its name in the sound server
    into, out_of = vads
    signal_frames = chirp(2.0)
    played = tmp_path / "chirp.wav"
    pad = np.zeros((22050, 2), np.float32)  # the start and end of a playback may be cut
    sf.write(played, np.concatenate([pad, signal_frames, pad]), 44100)
    recorded = tmp_path / "recorded.raw"
    ports = free_ports(3)
    endpoints = [
        "-s", f"rtp+rs8m://127.0.0.1:{ports[0]}",
        "-r", f"rs8m://127.0.0.1:{ports[1]}",
        "-c", f"rtcp://127.0.0.1:{ports[2]}",
    ]  # fmt: skip
    children: list[subprocess.Popen[bytes]] = []

    def run(*args: str, stdout: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(list(args), env=env, stdout=stdout, stderr=subprocess.PIPE)
        children.append(child)
        return child

    try:
        with recorded.open("wb") as raw:
            run(
                "parec", f"--device={out_of}.monitor", "--raw", "--format=float32le",
                "--rate=44100", "--channels=2", stdout=raw,
            )  # fmt: skip
            recv = run(
                *ROCD,
                "recv",
                "-o",
                f"pulse:{out_of}",
                *endpoints,
                "--target-latency",
                "100ms",
                "--drift-comp",
                "off",
            )
            send = run(*ROCD, "send", "-i", f"pulse:{into}", *endpoints)
            time.sleep(1.0)  # both running
            assert (
                subprocess.run(["paplay", f"--device={into}", str(played)], env=env).returncode == 0
            )
            time.sleep(0.5)  # the end of the chirp leaves the sender
            send.send_signal(signal.SIGINT)
            assert send.wait(timeout=20) == 0
            time.sleep(0.8)  # the receiver plays out its latency
            recv.send_signal(signal.SIGINT)
            assert recv.wait(timeout=10) == 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.communicate()
    got = np.frombuffer(recorded.read_bytes(), np.float32).reshape(-1, 2)
    assert len(got) > 44100, "nothing recorded"
    # Two trips through the sound server and one over Roc. What is checked here is that
    # both tools reach the private server's devices: the chirp's quarter seconds arrive,
    # about in order, some of them sample for sample (16-bit); how well the tools keep
    # real time on a loaded machine is measured elsewhere.
    offsets, exact = [], 0
    for first in range(0, len(signal_frames), 11025):
        piece = signal_frames[first : first + 11025]
        at = align(piece, got)
        heard = got[at : at + len(piece)]
        offsets.append(at - first)
        if len(heard) == len(piece) and snr_db(piece, heard) > 60:
            exact += 1
    assert exact >= 2, f"only {exact} of 8 pieces of the chirp arrived whole"
    assert max(offsets) - min(offsets) < 44100, offsets  # one recording, in order
