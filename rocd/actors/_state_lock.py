"""One daemon per state directory: an exclusive lock held for the daemon's whole life.

Two daemons on one state directory would share one identity (uid) and overwrite each
other's settings. The lock is `flock` on `<state dir>/lock`, which holds the owner's pid
so the second daemon can say who is there. The kernel drops the lock when its owner
dies, also on SIGKILL or a power cut, so a stale lock file never blocks a restart.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from ._statedb import StateError

LOCK_FILE = "lock"


class StateDirBusy(StateError):
    """Another live process holds the state directory."""

    def __init__(self, path: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"state directory {path} is in use by another rocd ({who})")
        self.pid = pid


class StateDirLock:
    """The held lock; `release` (or process exit) gives it up."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None


def lock_state_dir(path: Path) -> StateDirLock:
    """Create `path` if needed and lock it for this process (blocking, but never waits:
    StateDirBusy at once when it is held, StateError when it is not a usable directory)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise StateError(f"{path}: not a directory") from None
    except OSError as exc:
        raise StateError(f"{path}: {exc.strerror or exc}") from None
    if not path.is_dir():
        raise StateError(f"{path}: not a directory")
    lock_file = path / LOCK_FILE
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES) or not lock_file.exists():
            raise StateError(f"{lock_file}: {exc.strerror or exc}") from None
        # A read-only state directory (its state is then read-only too): flock works
        # on a descriptor opened for reading.
        fd = os.open(lock_file, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        os.close(fd)
        raise StateDirBusy(path, pid) from None
    except OSError as exc:
        os.close(fd)
        raise StateError(f"{lock_file}: {exc.strerror or exc}") from None
    with contextlib.suppress(OSError):  # the pid is a courtesy: a full disk must not stop us
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return StateDirLock(path, fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
