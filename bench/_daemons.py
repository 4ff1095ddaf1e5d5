"""`rocd serve` processes for the cluster benchmarks: started, paired, measured."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

_SERVING = re.compile(r"serving (http://\S+), state in")


@dataclass
class Daemon:
    name: str
    root: Path
    cluster_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    me: dict[str, Any] | None = None
    log_start: int = 0  # where this run's log begins in the (appended) log file

    @property
    def log_file(self) -> Path:
        return self.root / f"{self.name}.log"

    def launch(self) -> None:
        state = self.root / self.name
        state.mkdir(parents=True, exist_ok=True)
        config = self.root / f"{self.name}.toml"
        config.write_text('[audio]\npulse = "off"\n')
        self.log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "rocd.cli", "serve", "--config", str(config)),
                    *("--state-dir", str(state), "--api", "127.0.0.1:0", "--name", self.name),
                    *("--cluster", f"127.0.0.1:{self.cluster_port}"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def ready(self, timeout: float = 60.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            with self.log_file.open("rb") as f:
                f.seek(self.log_start)
                match = _SERVING.search(f.read().decode(errors="replace"))
            if match:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{self.name} did not start:\n{self.log_file.read_text()}")
            time.sleep(0.05)
        self.url = match.group(1)
        self.me = httpx.get(f"{self.url}/peers/self", timeout=10).json()
        if not self.cluster_port:
            self.cluster_port = int(self.address.rsplit(":", 1)[1])

    @property
    def key(self) -> str:
        assert self.me is not None
        return str(self.me["key"])

    @property
    def address(self) -> str:
        assert self.me is not None
        return str(self.me["address"])

    @property
    def uid(self) -> str:
        assert self.me is not None
        return str(self.me["uid"])

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
