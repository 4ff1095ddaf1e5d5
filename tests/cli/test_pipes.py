"""Commands whose reader went away (`rocd ... | head -1`): no traceback, nothing on stderr
but the command's own messages, and the exit status is still the command's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LIBRARY = sorted(str(p) for p in Path("scenarios").glob("*.toml"))


def to_a_gone_reader(*args: str) -> tuple[int, str]:
    """`rocd ARGS` writing into a pipe whose reader is already gone (each write is EPIPE):
    its exit status and its stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "rocd.cli", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


def test_scenario_check_still_checks_every_file(tmp_path: Path) -> None:
    bad = tmp_path / "typo.toml"
    bad.write_text('description = "x"\ntimout_s = 5\n[nodes.a]\n[[steps]]\nsleep_s = 1\n')
    status, err = to_a_gone_reader("scenario", "check", *LIBRARY, str(bad))
    assert err == f"{bad}:2: timout_s: no such field here\n"
    assert status == 2
    status, err = to_a_gone_reader("scenario", "check", *LIBRARY)
    assert (status, err) == (0, "")


def test_token_list_ends_quietly(tmp_path: Path) -> None:
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "rocd.cli",
            "token",
            "create",
            "--role",
            "viewer",
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        check=True,
    )
    assert made.stdout.startswith(b"rocd_")
    assert to_a_gone_reader("token", "list", "--state-dir", str(tmp_path)) == (0, "")
