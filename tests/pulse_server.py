"""A private, headless PulseAudio server for tests (no sound hardware needed).

It runs as the current user (root works) with its own runtime directory, cookie and unix
socket, anonymous auth, and no default script: it starts with no devices at all, and the
tests make null sinks. The command line is the daemon's own (`pulse_server_command`), so
the tests check what rocd runs. `env` is what a client needs to reach it.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import trio

from rocd.audio import (
    CaptureStream,
    Frames,
    prepare_pulse_root,
    pulse_server_command,
    pulse_server_env,
)
from rocd.audio._pulse_ctl import client_config


class PulseServerError(RuntimeError):
    pass


class PulseServer:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="rocd-pulse-"))
        self.home = self.root / "home"
        self.log = self.root / "pulse.log"
        self.env = pulse_server_env(self.root)
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def check_installed() -> None:
        missing = [
            p for p in ("pulseaudio", "pactl", "paplay", "parec", "pacat") if not shutil.which(p)
        ]
        if missing:
            raise PulseServerError(
                f"{', '.join(missing)} not found: the audio tests need a real sound server "
                "(apt-get install pulseaudio pulseaudio-utils, or run scripts/setup.sh)"
            )

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and return once `pactl info` answers."""
        self.check_installed()
        prepare_pulse_root(self.root)
        self._proc = subprocess.Popen(
            pulse_server_command(self.log),
            env={**os.environ, **self.env, "HOME": str(self.home)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if self._pactl_ok("info"):
                return
            time.sleep(0.05)
        log = self.log_tail()
        self.stop()
        raise PulseServerError(f"pulseaudio did not come up within {timeout} s:\n{log}")

    def stop(self) -> None:
        """Kill the server (as a crash would) and wait for it to go."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(timeout=10)
            self._proc = None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _pactl_ok(self, *args: str) -> bool:
        done = subprocess.run(
            ["pactl", *args], env=self.client_env(), capture_output=True, check=False
        )
        return done.returncode == 0

    def client_env(self) -> dict[str, str]:
        """The environment of test tools (paplay, parec): like rocd's children, no SHM."""
        return {**os.environ, **self.env, "PULSE_CLIENTCONFIG": str(client_config())}

    def pactl(self, *args: str) -> str:
        done = subprocess.run(
            ["pactl", *args], env=self.client_env(), capture_output=True, check=False, text=True
        )
        if done.returncode != 0:
            raise PulseServerError(f"pactl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def pactl_json(self, *args: str) -> Any:
        return msgspec.json.decode(self.pactl("-f", "json", *args))


async def record_paplay(
    capture: CaptureStream, server: PulseServer, sink: str, wav: Path
) -> Frames:
    """What `capture` records while `paplay` plays `wav` into server sink `sink` (and the
    tail the server still held when paplay returned). The capture is read once before
    paplay starts, so the recorder is attached first."""
    await capture.read(480)
    played = trio.Event()
    blocks = []
    async with trio.open_nursery() as nursery:

        async def play() -> None:
            await trio.run_process(
                ["paplay", f"--device={sink}", str(wav)], env=server.client_env()
            )
            played.set()

        nursery.start_soon(play)
        while not played.is_set():
            blocks.append(await capture.read(480))
    for _ in range(20):
        blocks.append(await capture.read(480))
    return np.concatenate(blocks)
