"""rocd instances as separate processes on loopback, each with its own state directory,
driven through their HTTP API the way a user or another program would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from rocd.scenario._daemon import SERVING
from rocd.scenario._daemon import free_port as _free_port

_SERVING = SERVING

T = TypeVar("T")


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (a restarted instance keeps its port)."""
    return _free_port()


def start_all(instances: list[Instance]) -> None:
    """Start several at once (their start-up overlaps)."""
    for instance in instances:
        instance.launch()
    for instance in instances:
        instance.ready()


def wait_for(
    what: str, probe: Callable[[], T], done: Callable[[T], bool], timeout: float = 10.0
) -> tuple[T, float]:
    """Poll `probe` until `done(value)`; (value, seconds it took) or AssertionError."""
    t0 = time.monotonic()
    while True:
        value = probe()
        if done(value):
            return value, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout:g} s; last: {value!r}")
        time.sleep(0.05)


@dataclass
class Instance:
    """One `rocd serve` with a fixed cluster port, so that it can be killed and restarted
    where its peers expect it."""

    name: str
    root: Path
    config: str = ""  # extra TOML
    cluster_port: int = field(default_factory=free_port)
    netns: str = ""  # run inside this network namespace (root only)
    host: str = "127.0.0.1"  # where the cluster listener binds
    api_host: str = "127.0.0.1"  # where the API binds (off loopback: give [api] auth)
    env: dict[str, str] = field(default_factory=dict)  # added to the environment
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    me: dict[str, Any] = field(default_factory=dict)
    _log_start: int = 0

    @property
    def state_dir(self) -> Path:
        return self.root / self.name

    @property
    def uid(self) -> str:
        return str(self.me["uid"])

    @property
    def key(self) -> str:
        return str(self.me["key"])

    @property
    def address(self) -> str:
        return str(self.me["address"])

    def launch(self, *extra: str) -> Instance:
        """Start the process (see `ready`)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = self.root / f"{self.name}.toml"
        config.write_text(self.config)
        args = ["--config", str(config), "--state-dir", str(self.state_dir)]
        args += ["--api", f"{self.api_host}:0", "--cluster", f"{self.host}:{self.cluster_port}"]
        if os.environ.get("ROCD_TEST_VERBOSE"):
            args.append("--verbose")  # debug logs in <root>/<name>.log
        self._log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        inside = ["ip", "netns", "exec", self.netns] if self.netns else []
        serve = [sys.executable, "-m", "rocd.cli", "serve", *args, "--name", self.name, *extra]
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [*inside, *serve],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, **self.env},
            )
        return self

    @property
    def log_file(self) -> Path:
        return self.root / f"{self.name}.log"

    def log(self) -> str:
        """What this run of the daemon logged so far."""
        with self.log_file.open("rb") as f:
            f.seek(self._log_start)
            return f.read().decode(errors="replace")

    def ready(self, timeout: float = 20.0) -> Instance:
        """Wait until it serves; learn who it is."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while (match := _SERVING.search(self.log())) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not start:\n{self.log()}")
            time.sleep(0.05)
        self.url = match.group(1)
        self.me = self.get("/peers/self").json()
        return self

    def start(self, *extra: str) -> Instance:
        return self.launch(*extra).ready()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop within 10 s; its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.url + path, timeout=15, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        return self.request("POST", path, json=body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, json=body, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def peer(self, other: Instance) -> dict[str, Any]:
        """How this instance lists `other` in GET /peers."""
        for info in self.get("/peers").json():
            if info["key"] == other.key:
                return dict(info)
        return {}

    def pair(self, other: Instance, role: str = "operator") -> httpx.Response:
        """Trust `other` (its key and address from its GET /peers/self) and dial it."""
        return self.post("/peers", {"address": other.address, "key": other.key, "role": role})

    def state_of(self, other: Instance) -> str:
        return str(self.peer(other).get("state", "unknown"))

    def wait_state(self, other: Instance, state: str, timeout: float = 10.0) -> float:
        """Wait until this instance lists `other` in `state`; the seconds it took."""
        _, took = wait_for(
            f"{self.name} lists {other.name} {state}",
            lambda: self.state_of(other),
            lambda now: now == state,
            timeout,
        )
        return took
