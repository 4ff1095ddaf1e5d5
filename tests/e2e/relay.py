"""`rocd relay` as a child process, ready once it has bound every route."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def start_relay(*args: str, timeout: float = 20.0) -> subprocess.Popen[str]:
    """Start `rocd relay ARGS` and return once it logged one "relaying" line per route.

    A fixed sleep is not enough on a loaded machine: the interpreter and its imports can
    take longer than any guess, and packets sent before the relay binds are lost before
    the impairment under test, which shifts the start of the stream."""
    routes = sum(1 for a in args if a.startswith("--route"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "rocd.cli", "relay", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    bound = 0
    while bound < routes:
        line = proc.stderr.readline()
        if "relaying" in line:
            bound += 1
        elif not line and proc.poll() is not None:
            raise AssertionError(f"rocd relay exited {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("rocd relay did not bind its routes")
    return proc
