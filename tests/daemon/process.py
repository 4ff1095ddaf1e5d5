"""Running `rocd serve` as a real child process, the way a user or a service manager does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from rocd.scenario._daemon import SERVING

_SERVING = SERVING


class DaemonProcess:
    """A `rocd serve` child; `url` is known once its log says where it serves."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        new_session: bool = False,  # its own process group, to signal as a terminal does
    ) -> None:
        self.args = [sys.executable, "-m", "rocd.cli", "serve", *args]
        self.proc = subprocess.Popen(
            self.args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=new_session,
        )
        self.log: list[str] = []
        self.url = ""

    def wait_serving(self, timeout: float = 15.0) -> str:
        """Read the log until the daemon says where it serves; return that URL."""
        deadline = time.monotonic() + timeout
        stderr = self.proc.stderr
        assert stderr is not None
        while time.monotonic() < deadline:
            line = _readline(stderr)
            if not line:
                if self.proc.poll() is not None:
                    raise AssertionError(f"rocd exited early: {self.proc.returncode}\n{self.text}")
                continue
            self.log.append(line)
            match = _SERVING.search(line)
            if match:
                self.url = match.group(1)
                return self.url
        raise AssertionError(f"rocd did not start within {timeout} s\n{self.text}")

    def wait_exit(self, timeout: float = 10.0) -> int:
        _, err = self.proc.communicate(timeout=timeout)
        self.log.extend(err.splitlines(keepends=True))
        return self.proc.returncode

    @property
    def text(self) -> str:
        return "".join(self.log)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def _readline(stream: IO[str]) -> str:
    return stream.readline()


def state_args(state_dir: Path, *extra: str) -> list[str]:
    """A private state dir, the API and the cluster listener on free loopback ports."""
    return ["--state-dir", str(state_dir), "--api", "127.0.0.1:0", *LOOPBACK_CLUSTER, *extra]


#: The cluster listener on a free loopback port (never the default 0.0.0.0:4611 in tests).
LOOPBACK_CLUSTER = ("--cluster", "127.0.0.1:0")
