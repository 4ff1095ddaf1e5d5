"""`rocd token` on a state directory no daemon has used (a mistyped --state-dir): list and
revoke refuse it and make nothing; create says that the state file is new."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def token(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rocd.cli", "token", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_list_and_revoke_refuse_a_state_dir_no_daemon_has_used(tmp_path: Path) -> None:
    typo = tmp_path / "stat"
    for args in (("list",), ("revoke", "1f3a9c2e")):
        done = token(*args, "--state-dir", str(typo))
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr == f"rocd: no state file in {typo} (no daemon has used it)\n"
    assert not typo.exists()


def test_create_on_a_new_state_dir_says_so(tmp_path: Path) -> None:
    made = token("create", "--role", "viewer", "--state-dir", str(tmp_path / "new"))
    assert made.returncode == 0
    assert made.stdout.startswith("rocd_")
    assert f"note: {tmp_path / 'new' / 'state.db'} is new" in made.stderr
    again = token("create", "--role", "viewer", "--state-dir", str(tmp_path / "new"))
    assert "note:" not in again.stderr
    listed = token("list", "--state-dir", str(tmp_path / "new"))
    assert (listed.returncode, len(listed.stdout.splitlines())) == (0, 2)
