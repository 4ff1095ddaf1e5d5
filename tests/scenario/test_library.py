"""Every scenario of the library (scenarios/*.toml), run as a user runs it: `rocd
scenario run FILE`. Each must pass, but one written to fail (`expect_failure = true`),
whose run must fail on an expectation; one whose tools are missing is skipped with the
reason printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rocd.scenario import load

LIBRARY = sorted(Path(__file__).parents[2].joinpath("scenarios").glob("*.toml"))

pytestmark = pytest.mark.slow


def test_the_library_is_there() -> None:
    names = {file.stem for file in LIBRARY}
    assert {"tone_to_speaker", "vad_to_speakers", "hub_mix", "wifi_link", "peer_restart",
            "nat_rendezvous", "roc_send", "must_fail"} <= names  # fmt: skip


@pytest.mark.parametrize("file", LIBRARY, ids=[f.stem for f in LIBRARY])
def test_a_library_scenario_gives_its_verdict(file: Path, tmp_path: Path) -> None:
    scenario = load(file)
    done = subprocess.run(
        [sys.executable, "-m", "rocd.cli", "scenario", "run", str(file), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=scenario.timeout_s + 60,
    )
    print(done.stdout)
    if done.returncode == 4:
        reason = done.stdout.strip().splitlines()[0]
        print(f"\nSKIPPED: {reason}", file=sys.stderr)
        pytest.skip(reason)
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads((tmp_path / f"{file.stem}.json").read_text())
    assert report["left_behind"] == []
    assert not Path(report["run_dir"]).exists()
    if scenario.expect_failure:
        assert done.returncode == 1, done.stdout + done.stderr
        assert report["verdict"] == "failed"
        failed = [s for s in report["steps"] if s["status"] == "failed"]
        assert len(failed) == 1
        assert any(not c["ok"] for c in failed[0]["checks"])
    else:
        assert done.returncode == 0, done.stdout + done.stderr
        assert report["verdict"] == "passed"
        assert all(s["status"] == "passed" for s in report["steps"])


def test_check_says_what_each_file_holds() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rocd.cli", "scenario", "check", "scenarios/must_fail.toml",
         "scenarios/hub_mix.toml"],
        capture_output=True, text=True, check=True, timeout=60, cwd=LIBRARY[0].parents[1],
    )  # fmt: skip
    assert done.stdout.splitlines() == [
        "scenarios/must_fail.toml: ok (1 node, 6 steps)",
        "scenarios/hub_mix.toml: ok (4 nodes, 12 steps)",
    ]
