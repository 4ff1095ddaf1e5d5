"""The README's way to get `rocd` on the PATH after ./scripts/run.sh works."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_install_user_puts_rocd_on_the_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    done = subprocess.run(
        [str(ROOT / "scripts" / "install-user.sh")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    link = home / ".local" / "bin" / "rocd"
    assert link.resolve() == (ROOT / ".venv" / "bin" / "rocd").resolve()
    assert "is not on your PATH" in done.stdout  # and says how to fix that
    # From anywhere, with that directory on the PATH, `rocd` is the project's.
    env["PATH"] = f"{link.parent}:{env['PATH']}"
    used = subprocess.run(
        ["rocd", "serve", "--help"], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert used.returncode == 0, used.stderr
    assert "--state-dir" in used.stdout


def test_the_venv_activation_the_readme_names_gives_rocd() -> None:
    done = subprocess.run(
        ["bash", "-c", "source .venv/bin/activate && command -v rocd && rocd serve --help"],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == str(ROOT / ".venv" / "bin" / "rocd")
