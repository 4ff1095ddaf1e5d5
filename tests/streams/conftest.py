"""Daemons as processes, null sinks in the session's PulseAudio, and recordings of them.

A `Rocd` is `rocd serve` as a user runs it (a config file, its own state and files
directories, its log in a file), driven over HTTP. A `Recorder` records a sink's monitor
with parec (float32, the sink's own rate: bit-exact), so a test compares what a stream
played with what it was given.
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
import numpy.typing as npt
import pytest
import soundfile as sf

from rocd.scenario import find_tool
from rocd.scenario._daemon import SERVING
from tests.pulse_server import PulseServer

Frames = npt.NDArray[np.float32]
RATE = 44100
_SERVING = SERVING


class Rocd:
    """`rocd serve` in a child process, with `files` as its files directory."""

    def __init__(
        self,
        root: Path,
        pulse: PulseServer | None = None,
        *,
        env: dict[str, str] | None = None,
        wrap: list[str] | None = None,
        api: str = "127.0.0.1:0",
    ) -> None:
        self.root = root
        self.files = root / "files"
        self.files.mkdir(parents=True, exist_ok=True)
        self.pulse = pulse
        self.env = env or {}
        self.wrap = wrap or []
        self.api = api
        self.log = root / "rocd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.http = httpx.Client(timeout=20)

    def start(self, timeout: float = 20.0) -> Rocd:
        host, _, port = self.api.rpartition(":")
        audio = 'pulse = "off"'
        if self.pulse is not None:
            audio = f'pulse = "system"\npulse_server = "{self.pulse.env["PULSE_SERVER"]}"'
        config = self.root / "rocd.toml"
        config.write_text(
            f'state_dir = "{self.root / "state"}"\n'
            f'[api]\nhost = "{host}"\nport = {port}\n'
            f'[audio]\n{audio}\nfiles_dir = "{self.files}"\n'
            "[cluster]\nenabled = false\n"  # joined by external endpoints, or not at all
        )
        env = {**os.environ, **(self.pulse.client_env() if self.pulse else {}), **self.env}
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.wrap, sys.executable, "-m", "rocd.cli", "serve", "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            match = _SERVING.search(text)
            if match:
                self.url = match.group(1)
                self.http = httpx.Client(base_url=self.url, timeout=20)
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"rocd exited {self.proc.returncode}:\n{text[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"rocd did not start:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout=15)
        self.http.close()
        return status

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self.http.close()

    def wait_dead(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    # -- API ----------------------------------------------------------------------------

    def uid(self) -> str:
        uid: str = self.http.get("/peers/self").json()["uid"]
        return uid

    def create(self, source: dict[str, Any], destination: dict[str, Any], **settings: Any) -> Any:
        r = self.http.post(
            "/streams", json={"source": source, "destination": destination, "settings": settings}
        )
        assert r.status_code == 201, r.text
        return r.json()

    def stream(self, uid: str) -> Any:
        r = self.http.get(f"/streams/{uid}")
        assert r.status_code == 200, r.text
        return r.json()

    def streams(self) -> Any:
        r = self.http.get("/streams")
        assert r.status_code == 200, r.text
        return r.json()

    def delete(self, uid: str) -> None:
        r = self.http.delete(f"/streams/{uid}")
        assert r.status_code == 204, r.text

    def wait_state(self, uid: str, *states: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stream = self.stream(uid)
            if stream["state"] in states:
                return stream
            time.sleep(0.1)
        raise AssertionError(f"stream {uid} not {states}: {stream}\n{self.log_tail()}")

    def wait_device(self, device: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            devices = self.http.get("/peers/self/devices").json()["devices"]
            if any(d["id"] == device for d in devices):
                return
            time.sleep(0.1)
        raise AssertionError(f"no device {device} on {self.url}")


def device(name: str) -> dict[str, str]:
    return {"peer": "self", "device": name}


def external(ports: list[int], fec: str = "rs8m", host: str = "127.0.0.1") -> dict[str, Any]:
    if fec == "none":
        return {
            "external": {
                "source": f"rtp://{host}:{ports[0]}",
                "control": f"rtcp://{host}:{ports[2]}",
            }
        }
    return {
        "external": {
            "source": f"rtp+{fec}://{host}:{ports[0]}",
            "repair": f"{fec}://{host}:{ports[1]}",
            "control": f"rtcp://{host}:{ports[2]}",
        }
    }


def ports_of(end: dict[str, Any]) -> list[int]:
    """The ports of an end's endpoints (source, repair, control)."""
    eps = end["endpoints"]
    return [
        int(eps[k].rsplit(":", 1)[1]) if eps.get(k) else 0 for k in ("source", "repair", "control")
    ]


#: Stream settings under which the path is lossless and exact: no resampling, no tuning.
EXACT: dict[str, Any] = {
    "latency": {"target_ms": 100, "tuning": "intact"},
    "drift_compensation": False,
}


#: The same through loss: a latency of two FEC blocks (18 x 5 ms), so that the repair
#: packets of a block are in time for its first packet, whatever the scheduling jitter.
LOSSY: dict[str, Any] = {**EXACT, "latency": {"target_ms": 200, "tuning": "intact"}}


class NullSink:
    """A float32 null sink at RATE in the session's PulseAudio (a speaker, for tests)."""

    def __init__(self, server: PulseServer, name: str, rate: int = RATE) -> None:
        self.server = server
        self.name = name
        self.module = server.pactl(
            "load-module", "module-null-sink", f"sink_name={name}", f"rate={rate}",
            "channels=2", "format=float32le", "norewinds=1",
        ).strip()  # fmt: skip

    @property
    def device(self) -> str:
        return f"pulse:sink:{self.name}"

    def unload(self) -> None:
        self.server.pactl("unload-module", self.module)


class Recorder:
    """Records a sink's monitor with parec into a raw float32 file."""

    def __init__(self, server: PulseServer, sink: str, path: Path, rate: int = RATE) -> None:
        self.path = path
        self.rate = rate
        self._out = path.open("wb")
        self.proc = subprocess.Popen(
            ["parec", f"--device={sink}.monitor", "--raw", "--format=float32le",
             f"--rate={rate}", "--channels=2", "--latency-msec=10"],
            stdout=self._out, stderr=subprocess.DEVNULL, env=server.client_env(),
        )  # fmt: skip
        # Wait until it records (the file grows) so nothing played is missed.
        deadline = time.monotonic() + 5
        while path.stat().st_size == 0 and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> Frames:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)
        self._out.close()
        data = np.fromfile(self.path, dtype=np.float32)
        return data[: len(data) // 2 * 2].reshape(-1, 2)


def write_wav(path: Path, frames: Frames, rate: int = RATE) -> None:
    sf.write(path, frames, rate, subtype="PCM_16")


def l16_noise(seconds: float, seed: int, amplitude: int = 12000) -> Frames:
    """Random 16-bit samples as floats: exact through WAV, L16 and float32 sinks."""
    rng = np.random.default_rng(seed)
    pcm = rng.integers(-amplitude, amplitude, (round(seconds * RATE), 2), dtype=np.int16)
    pcm[0] = 12345
    return (pcm.astype(np.float32) / 32768).astype(np.float32)


def whole_packets(frames: Frames, packet: int = 221) -> Frames:
    """What a sender sends of a file: its whole packets (a partial last one is dropped)."""
    return frames[: len(frames) // packet * packet]


def roc_tool(name: str) -> str | None:
    """A reference Roc tool from $ROC_PREFIX/bin or PATH."""
    return find_tool(name)


@pytest.fixture
def roc_tools() -> tuple[str, str]:
    send, recv = roc_tool("roc-send"), roc_tool("roc-recv")
    if send is None or recv is None:
        reason = (
            "roc-send/roc-recv not found: set ROC_PREFIX to a Roc Toolkit 0.4 prefix "
            "(../shared/roc/build.sh PREFIX builds one) or put them on PATH"
        )
        print(f"\nSKIPPED: {reason}", file=sys.stderr)
        pytest.skip(reason)
    return send, recv
