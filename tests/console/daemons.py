"""Daemons for the web console's and `rocd ctl`'s tests: processes on loopback, and one
whose API asks for a token (made with `rocd token create` before it starts)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.cluster.instances import Instance

#: No sound server (fast, no children): the file and tone drivers.
NO_PULSE = '[audio]\npulse = "off"\n'


def private_pulse(root: Path, name: str) -> str:
    """A daemon's own headless PulseAudio (it finds none at this address and runs one),
    so that it has virtual speakers and microphones of its own."""
    return f'[audio]\npulse = "auto"\npulse_server = "unix:{root}/{name}-none/native"\n'


def create_token(state_dir: Path, role: str, name: str = "") -> str:
    """`rocd token create` on a daemon's state directory (it may be running or not)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "rocd.cli", "token", "create", "--role", role]
    command += ["--name", name, "--state-dir", str(state_dir)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


@dataclass
class Guarded(Instance):
    """An instance whose API needs a token (`[api] auth = "token"`); the test's own
    requests carry an admin token made before it starts."""

    token: str = ""

    def launch(self, *extra: str) -> Instance:
        if "[api]" not in self.config:
            self.config += '[api]\nauth = "token"\n'
        if not self.token:
            self.token = create_token(self.state_dir, "admin", "tests")
        return super().launch(*extra)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return super().request(method, path, headers=headers, **kw)


def pair_by_invite(inviter: Instance, joiner: Instance) -> None:
    """Pair two instances with one invite (trust both ways) and wait until both are online."""
    r = inviter.post("/cluster/invites", {})
    assert r.status_code == 201, r.text
    r = joiner.post("/cluster/join", {"token": r.json()["token"]})
    assert r.status_code == 201, r.text
    inviter.wait_state(joiner, "online")
    joiner.wait_state(inviter, "online")
