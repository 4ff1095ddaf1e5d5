"""`rocd scenario run` refuses at once what would lose a run's reports after the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_an_out_dir_that_cannot_be_written_is_refused_before_the_run(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    out = str(not_a_dir / "reports")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rocd.cli",
            "scenario",
            "run",
            "scenarios/must_fail.toml",
            "--out",
            out,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout == ""  # no step ran, no daemon was started
    assert done.stderr == (
        f"rocd scenario: cannot write the reports in {not_a_dir / 'reports'}: Not a directory\n"
    )
