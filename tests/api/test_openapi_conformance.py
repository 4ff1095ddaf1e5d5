"""The API does what its OpenAPI document says: schemathesis, every check, a live daemon.

Bounded: a fixed seed and a fixed number of examples per operation (a few seconds to
half a minute on 2 cores), against a `rocd serve` process with the file and tone drivers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.process import DaemonProcess, state_args

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    cfg = tmp_path / "rocd.toml"
    cfg.write_text('[audio]\npulse = "off"\n')
    proc = DaemonProcess([*state_args(tmp_path / "state"), "--config", str(cfg)])
    try:
        proc.wait_serving()
        yield proc
    finally:
        proc.kill()


@pytest.mark.slow
def test_schemathesis_finds_nothing(daemon: DaemonProcess, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    assert st.exists() or shutil.which("st"), "schemathesis is missing: scripts/setup.sh"
    command = [
        str(st) if st.exists() else "st",
        "--config-file",
        str(CONFIG),
        "run",
        f"{daemon.url}/openapi.json",
        "--checks",
        "all",
        "--seed",
        "20261207",
        "--max-examples",
        "40",
        "--workers",
        "2",
        "--request-timeout",
        "5",
        "--generation-database",
        "none",
        "--no-color",
    ]
    done = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        check=False,
    )
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    assert "No issues found" in done.stdout or " passed" in done.stdout, report
    assert "Traceback" not in daemon.text
