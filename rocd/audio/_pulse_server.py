"""A private, headless PulseAudio server, for a machine with no sound server of its own.

A server box (no desktop session, no sound card) still gets virtual devices out of the
box: rocd runs its own PulseAudio as a child, with its own runtime directory, cookie and
unix socket (mode 0700 directory, anonymous auth on it: only this user gets in), no
default script (no hardware is probed; it starts with no devices), and no idle exit. The
command line is the one the tests' fixture runs (`pulse_server_command`), so what the tests
check is what the daemon runs. Clients (rocd's pactl / parec / pacat) already use no
shared memory with it (see `client_config`).

The server dies with the daemon, also when the daemon is killed with SIGKILL: it is
started through `setpriv --pdeathsig` from the Trio thread (the parent-death signal
follows the thread that forked, which lives as long as the daemon; trio.run_process forks
from a worker thread that may end any time, so it is not used here). Where setpriv is
missing, a killed daemon leaves the server behind.
"""

import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

import trio

from ._errors import AudioError
from ._pulse_ctl import Pactl

log = logging.getLogger("rocd.audio")

PROGRAM = "pulseaudio"


def pulse_server_command(log_file: Path) -> list[str]:
    """The server's command line (it needs `pulse_server_env(root)` and HOME set)."""
    return [
        PROGRAM,
        "--daemonize=no",
        "--exit-idle-time=-1",
        "-n",
        "--use-pid-file=no",
        "--disallow-exit",
        # As root the server may take real-time scheduling and then kill itself when the
        # CPU limit or RLIMIT_RTTIME trips on a loaded machine.
        "--realtime=no",
        "--high-priority=no",
        "--no-cpu-limit",
        f"--log-target=file:{log_file}",
        "--load=module-native-protocol-unix auth-anonymous=1",
    ]


def pulse_server_env(root: Path) -> dict[str, str]:
    """What a client needs to reach the server living under `root`."""
    run_dir = root / "run"
    return {
        "XDG_RUNTIME_DIR": str(run_dir),
        "PULSE_COOKIE": str(root / "cookie"),
        "PULSE_SERVER": f"unix:{run_dir}/pulse/native",
    }


def prepare_pulse_root(root: Path) -> None:
    """Make the server's runtime (private) and home directories under `root`."""
    (root / "run").mkdir(parents=True, exist_ok=True)
    (root / "home").mkdir(parents=True, exist_ok=True)
    os.chmod(root / "run", 0o700)


async def probe_pulse(env: Mapping[str, str] | None, within: float = 2.0) -> str | None:
    """None when a sound server answers at `env` (added to ours) within `within`
    seconds, else why not."""
    try:
        await Pactl(env, timeout=within).run("info")
    except AudioError as exc:
        return str(exc) or type(exc).__name__
    return None


class PrivatePulseServer:
    """Keeps one private server running while `run` runs; `env` reaches it."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        ready_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.5, 10.0),
    ) -> None:
        # A short path: a unix socket path must fit in 108 bytes.
        self.root = root or Path(tempfile.mkdtemp(prefix="rocd-pulse-"))
        self.env = pulse_server_env(self.root)
        self.log_file = self.root / "pulse.log"
        self.ready_timeout = ready_timeout  # seconds for a new server to answer
        self._backoff = backoff  # (first, longest) pause before a restart, seconds
        self.pid: int | None = None  # of the running server
        self.starts = 0
        self.reason = "not started"  # why the last server is not running

    def command(self) -> list[str]:
        cmd = pulse_server_command(self.log_file)
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            cmd = [setpriv, "--pdeathsig", "KILL", "--", *cmd]
        return cmd

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run a server until cancelled, starting a new one (after a growing pause) when
        it dies or cannot start. Reports started once the first one answers or failed.

        On cancellation the server is stopped (SIGTERM, then SIGKILL after 2 s) and its
        directory removed.
        """
        first, longest = self._backoff
        delay = first
        started = False
        try:
            while True:
                t0 = trio.current_time()
                await self._run_once(task_status if not started else None)
                started = True
                if trio.current_time() - t0 > 60:
                    delay = first  # it ran a good while: this is not a crash loop
                log.warning("private sound server: %s; restarting in %g s", self.reason, delay)
                await trio.sleep(delay)
                delay = min(longest, delay * 2)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_rmtree, self.root)

    async def _run_once(self, task_status: trio.TaskStatus[None] | None) -> None:
        prepare_pulse_root(self.root)
        try:
            # From the Trio thread on purpose (see the module docstring); no preexec_fn.
            proc = subprocess.Popen(  # noqa: ASYNC220 - a fork+exec, a few ms, once
                self.command(),
                env={**os.environ, **self.env, "HOME": str(self.root / "home")},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            self.reason = f"cannot run {PROGRAM}: {exc.strerror or exc}"
            if task_status is not None:
                task_status.started()
            await trio.lowlevel.checkpoint()
            return
        self.starts += 1
        self.pid = proc.pid
        pidfd = os.pidfd_open(proc.pid)
        try:
            with trio.move_on_after(self.ready_timeout):
                while await probe_pulse(self.env, within=1.0) is not None:
                    if proc.poll() is not None:
                        break
                    await trio.sleep(0.05)
            if task_status is not None:
                task_status.started()
            await trio.lowlevel.wait_readable(pidfd)
            self.reason = f"{PROGRAM} exited with status {proc.wait()}: {self.log_tail()}"
        finally:
            self.pid = None
            with trio.CancelScope(shield=True):
                if proc.poll() is None:
                    proc.terminate()
                    with trio.move_on_after(2.0):
                        await trio.lowlevel.wait_readable(pidfd)
                    if proc.poll() is None:
                        proc.kill()
                        await trio.to_thread.run_sync(proc.wait)
            trio.lowlevel.notify_closing(pidfd)
            os.close(pidfd)

    def log_tail(self, chars: int = 300) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "no log"
        return " | ".join(text[-chars:].strip().splitlines()[-3:])


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
