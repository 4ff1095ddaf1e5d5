"""`rocd serve` as a child process with its own state directory, the way a user or a
service manager runs it: started, waited for (its log says where it serves), killed,
restarted where its peers expect it (same API and cluster ports). Shared by the
scenario runner and the multi-daemon tests.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import trio

__all__ = [
    "SERVING",
    "DaemonProcess",
    "DaemonStartError",
    "free_port",
    "free_ports",
    "serve_command",
    "toml_text",
]

#: The log line a daemon writes once its API answers.
SERVING: Final = re.compile(r"serving (http://\S+), state in")

#: Seconds a daemon gets after SIGTERM before SIGKILL.
STOP_GRACE: Final = 10.0


class DaemonStartError(RuntimeError):
    """The daemon exited, or did not serve in time; the message ends with its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on `host` (a restarted instance keeps its port)."""
    return free_ports(1, host)[0]


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """`n` different TCP ports free right now on `host` (all held open while chosen, so
    the kernel cannot hand out one twice)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def serve_command(
    config: Path, state_dir: Path, api: str, cluster: str, name: str, netns: str | None = None
) -> list[str]:
    """The argv of a daemon (inside network namespace `netns` when given)."""
    inside = ["ip", "netns", "exec", netns] if netns else []
    return [
        *inside,
        sys.executable,
        "-m",
        "rocd.cli",
        "serve",
        "--config",
        str(config),
        "--state-dir",
        str(state_dir),
        "--api",
        api,
        "--cluster",
        cluster,
        "--name",
        name,
    ]


def toml_text(table: dict[str, Any], prefix: str = "") -> str:
    """A dict of scalars, lists and tables as TOML (what a config file holds)."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in table.items():
        if isinstance(value, dict):
            tables.append((f"{prefix}{key}", value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for name, sub in tables:
        out += f"[{name}]\n" + toml_text(sub, f"{name}.")
    return out


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_\-]+", key) else _value(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


class DaemonProcess:
    """One `rocd serve` child: its own session (a terminal's Ctrl-C reaches the runner,
    which stops it), its stderr and stdout appended to `log_file`."""

    def __init__(self, argv: list[str], log_file: Path, env: dict[str, str]) -> None:
        self.argv = argv
        self.log_file = log_file
        self.env = env
        self.proc: trio.Process | None = None
        self.url = ""
        self._log_start = 0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def log(self) -> str:
        """What this run of the daemon logged so far."""
        try:
            with self.log_file.open("rb") as f:
                f.seek(self._log_start)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    async def start(self, within: float = 20.0) -> str:
        """Start it and wait until it serves; its API URL. DaemonStartError (the process
        stopped) if it exits first or is not serving within `within` seconds. On
        cancellation the process is killed."""
        self._log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            self.proc = await trio.lowlevel.open_process(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env,
                start_new_session=True,
            )
        try:
            with trio.fail_after(within):
                while (match := SERVING.search(self.log())) is None:
                    if self.proc.poll() is not None:
                        raise DaemonStartError(
                            f"exited with status {self.proc.returncode}:\n{self.tail()}"
                        )
                    await trio.sleep(0.05)
        except trio.TooSlowError:
            await self.kill()
            raise DaemonStartError(f"not serving within {within:g} s:\n{self.tail()}") from None
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.kill()
            raise
        self.url = match.group(1)
        return self.url

    def tail(self, lines: int = 12) -> str:
        return "\n".join(self.log().strip().splitlines()[-lines:])

    async def kill(self) -> None:
        """SIGKILL (a crash, a power cut) and reap it."""
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            _signal_group(proc, signal.SIGKILL)
        with trio.CancelScope(shield=True):
            await proc.wait()

    async def stop(self, grace: float = STOP_GRACE) -> int | None:
        """SIGTERM, SIGKILL after `grace` seconds; its exit status (None: never started)."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            _signal_group(proc, signal.SIGTERM)
            with trio.move_on_after(grace):
                await proc.wait()
            if proc.returncode is None:
                await self.kill()
        # What the daemon itself started (its sound server) goes with its session.
        _signal_group(proc, signal.SIGKILL)
        return proc.returncode


def _signal_group(proc: trio.Process, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        if proc.returncode is None:
            proc.send_signal(sig)
