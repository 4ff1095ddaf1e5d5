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

Where it lives: `private_pulse_root(state_dir)`, a directory of the temporary directory
named after the user and the state directory, so one daemon's server keeps its address
(`unix:<root>/run/pulse/native`) across restarts and users can point apps at it once. The
daemon holds an flock on `<root>/owner.lock` while it runs; a directory whose lock can be
taken belongs to a dead daemon (killed with -9, a power cut), and `clean_stale_servers`
removes it at the next start, killing a server it left (its pid is in `<root>/server.pid`).
"""

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import stat
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


ROOT_PREFIX = "rocd-pulse-"
OWNER_LOCK = "owner.lock"
SERVER_PID = "server.pid"
#: Seconds a stopping server gets after SIGTERM before SIGKILL (it holds nothing to save:
#: its devices are rocd's and are made again at the next start).
STOP_GRACE = 0.5


def private_pulse_root(state_dir: Path, tmp: Path | None = None) -> Path:
    """The private server's directory for the daemon of `state_dir` (short: a unix socket
    path must fit in 108 bytes)."""
    digest = hashlib.sha256(str(state_dir.absolute()).encode()).hexdigest()[:10]
    return (tmp or Path(tempfile.gettempdir())) / f"{ROOT_PREFIX}{os.getuid()}-{digest}"


def _own_private_dir(path: Path) -> bool:
    """True if `path` is a real directory of ours, closed to others (not a trap set by
    another user in a shared temporary directory)."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def _kill_left_server(root: Path) -> None:
    """SIGKILL the server a dead daemon left under `root`, if it still runs."""
    try:
        pid = int((root / SERVER_PID).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if str(root).encode() in cmdline:  # that pid is still the server of this directory
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def clean_stale_servers(tmp: Path | None = None) -> list[Path]:
    """Remove the private servers' directories of daemons that are gone (blocking; a few
    ms). Directories without an owner lock (not a daemon's) are left alone."""
    cleaned = []
    for root in (tmp or Path(tempfile.gettempdir())).glob(f"{ROOT_PREFIX}{os.getuid()}-*"):
        if not _own_private_dir(root) or not (root / OWNER_LOCK).exists():
            continue
        try:
            fd = os.open(root / OWNER_LOCK, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # a live daemon holds it
            continue
        try:
            _kill_left_server(root)
            shutil.rmtree(root, ignore_errors=True)
            cleaned.append(root)
        finally:
            os.close(fd)
    return cleaned


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
        self._lock: int | None = None  # fd holding OWNER_LOCK while the server is ours

    @property
    def address(self) -> str:
        """Where clients reach it (PULSE_SERVER syntax)."""
        return self.env["PULSE_SERVER"]

    def _claim(self) -> None:
        """Make the directory ours and lock it (blocking, fast); AudioError if another
        user's or a live daemon's directory is in the way."""
        with contextlib.suppress(FileExistsError):
            self.root.mkdir(mode=0o700, parents=True)
        if not _own_private_dir(self.root):
            raise AudioError(f"{self.root} is not a private directory of this user")
        fd = os.open(self.root / OWNER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise AudioError(f"{self.root} is used by another running rocd") from None
        _kill_left_server(self.root)  # a server a killed daemon left (no setpriv)
        for left in self.root.iterdir():  # what a killed daemon's server left: start afresh
            if left.name != OWNER_LOCK:
                if left.is_dir() and not left.is_symlink():
                    shutil.rmtree(left, ignore_errors=True)
                else:
                    left.unlink(missing_ok=True)
        self._lock = fd

    def _release(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        if self._lock is not None:
            os.close(self._lock)  # after the removal: nobody cleans it under our feet
            self._lock = None

    def command(self) -> list[str]:
        cmd = pulse_server_command(self.log_file)
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            cmd = [setpriv, "--pdeathsig", "KILL", "--", *cmd]
        return cmd

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run a server until cancelled, starting a new one (after a growing pause) when
        it dies or cannot start. Reports started once the first one answers or failed.

        On cancellation the server is stopped (SIGTERM, then SIGKILL after STOP_GRACE
        seconds) and its directory removed. AudioError (before started) if the directory
        cannot be claimed.
        """
        first, longest = self._backoff
        delay = first
        started = False
        await trio.to_thread.run_sync(self._claim)
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
                await trio.to_thread.run_sync(self._release)

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
                # Its own session: a terminal's Ctrl-C (or `timeout`) signals the daemon's
                # process group, and the daemon stops its server itself, in order.
                start_new_session=True,
            )
        except OSError as exc:
            self.reason = f"cannot run {PROGRAM}: {exc.strerror or exc}"
            if task_status is not None:
                task_status.started()
            await trio.lowlevel.checkpoint()
            return
        self.starts += 1
        self.pid = proc.pid
        with contextlib.suppress(OSError):  # for the cleanup after a kill -9 of the daemon
            (self.root / SERVER_PID).write_text(f"{proc.pid}\n")
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
                    with trio.move_on_after(STOP_GRACE):
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
