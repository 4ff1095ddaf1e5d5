"""What each command imports: only its own module's tree (start-up time is what a user
waits for before the first packet of `rocd send` and on every `rocd ctl` call)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from rocd.cli import build_parser
build_parser({argv!r})
print(json.dumps(sorted(m for m in sys.modules if m.startswith("rocd."))))
"""


def imported(argv: list[str]) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


@pytest.mark.parametrize("command", ["send", "recv", "relay"])
def test_the_transport_commands_leave_the_daemon_and_the_scenario_runner_out(
    command: str,
) -> None:
    modules = imported([command, "--help"])
    assert f"rocd.cli._{command}" in modules
    assert not {m for m in modules if m.startswith(("rocd.actors", "rocd.scenario", "rocd.api"))}
    assert "rocd.cli._ctl" not in modules


def test_version_imports_no_command() -> None:
    assert not {m for m in imported(["--version"]) if m.startswith("rocd.cli._")} - {
        "rocd.cli._exit",
        "rocd.cli._pipe",
    }


def test_help_without_a_command_lists_every_command() -> None:
    modules = imported(["--help"])
    for name in ("serve", "send", "recv", "relay", "token", "ctl", "scenario"):
        assert f"rocd.cli._{name}" in modules
