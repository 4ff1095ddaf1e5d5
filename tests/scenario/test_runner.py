"""The scenario runner itself, on real daemons: steps in order with the values they
capture, a failure that stops the run, setup errors, timeouts, missing tools, and
clean-up after each (processes, sound servers, namespaces, the run directory), also
after one or two SIGINTs to `rocd scenario run` as a user's Ctrl-C sends them."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from rocd.audio import private_pulse_root
from rocd.scenario import Report, load_text, run_scenario
from rocd.scenario._steps import StepContext

pytestmark = pytest.mark.slow

QUIET = "[nodes.a]\nsound = false\n"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent has not reaped it yet).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def assert_nothing_left(report: Report) -> None:
    assert report.left_behind == []
    assert report.processes, "no process was recorded"
    for what, pid in report.processes:
        assert not alive(pid), f"{what} (pid {pid}) is still running"
    assert not Path(report.run_dir).exists()
    for name in report.nodes:
        assert not private_pulse_root(Path(report.run_dir) / name / "state").exists()
        netns = report.nodes[name]["netns"]
        if netns:
            listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
            assert netns not in listed.stdout


async def run(
    text: str, tmp_path: Path, on_step: Callable[[int, StepContext], object] | None = None
) -> tuple[Report, str]:
    scenario = load_text(text, "t.toml")
    out = io.StringIO()
    file = tmp_path / "t.toml"
    report = await run_scenario(scenario, file, out=out, run_root=tmp_path, on_step=on_step)
    return report, out.getvalue()


async def test_steps_run_in_order_with_the_values_they_captured(tmp_path: Path) -> None:
    text = f"""
description = "names"
{QUIET}
[nodes.b]
sound = false
start = false

[[steps]]
node = "a"
call = "PUT /peers/self"
body = {{ name = "first" }}
capture = {{ first = "body.name", uid = "body.uid" }}

[[steps]]
name = "a name made of the captured one"
node = "a"
call = "PUT /peers/self"
body = {{ name = "${{first}}-second" }}
expect = ["body.name == 'first-second'", "body.uid == ${{uid}}", "body.uid == ${{a.uid}}"]

[[steps]]
node = "a"
event = "peer.updated"
until = ["data.name == 'first-second'"]
capture = {{ seen = "data.name" }}

[[steps]]
start = "b"

[[steps]]
node = "b"
call = "GET /peers/self"
expect = ["body.name == 'b'", "body.uid != ${{a.uid}}"]
"""
    order: list[tuple[int, dict[str, object]]] = []

    def seen(index: int, ctx: StepContext) -> None:
        order.append((index, dict(ctx.values)))

    report, printed = await run(text, tmp_path, on_step=seen)
    assert report.verdict == "passed", printed
    assert report.exit_code == 0
    assert [i for i, _ in order] == [0, 1, 2, 3, 4]
    assert order[2][1]["b.uid"] == ""  # b has not started yet
    assert order[3][1]["b.uid"] == report.nodes["b"]["uid"] != ""
    assert order[0][1]["first"] == "first"
    assert "seen" not in order[1][1]
    assert order[2][1]["seen"] == "first-second"
    uid = report.nodes["a"]["uid"]
    assert report.steps[0].captured == {"first": "first", "uid": uid}
    assert [s.status for s in report.steps] == ["passed"] * 5
    assert [c["ok"] for c in report.steps[1].checks] == [True, True, True]
    assert "[2/5] a name made of the captured one ... ok" in printed
    json_path, xml_path = report.write(tmp_path / "out")
    data = json.loads(json_path.read_text())
    assert data["verdict"] == "passed"
    assert data["exit_code"] == 0
    assert data["steps"][2]["measured"]["event"]["data"]["name"] == "first-second"
    suite = ET.parse(xml_path).getroot()
    assert (suite.tag, suite.get("tests"), suite.get("failures")) == ("testsuite", "5", "0")
    assert [c.get("name") for c in suite.iter("testcase")][
        1
    ] == "02 a name made of the captured one"
    assert_nothing_left(report)


async def test_a_failed_expectation_stops_the_run_and_everything_goes(tmp_path: Path) -> None:
    text = f"""
description = "fails"
{QUIET}
[[steps]]
node = "a"
call = "GET /health"
expect = ["status == 200", "body.status == 'broken'"]

[[steps]]
sleep_s = 30
"""
    report, printed = await run(text, tmp_path)
    assert report.verdict == "failed"
    assert report.exit_code == 1
    assert [s.status for s in report.steps] == ["failed", "not run"]
    assert "body.status == 'broken' (body.status=ok)" in report.steps[0].message
    assert [c["ok"] for c in report.steps[0].checks] == [True, False]
    assert "FAIL" in printed
    assert report.duration_s < 10  # the 30 s sleep never ran
    suite = report.junit().getroot()
    assert suite.get("failures") == "1"
    assert suite.get("skipped") == "1"
    assert_nothing_left(report)


class _HeadOne(io.StringIO):
    """stdout read by `head -1`: the first line is taken, then the reader is gone."""

    def write(self, text: str) -> int:
        if "\n" in self.getvalue():
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


async def test_a_reader_that_goes_away_does_not_stop_the_run(tmp_path: Path) -> None:
    text = f"""
description = "read by head -1"
{QUIET}
[[steps]]
node = "a"
call = "GET /health"
expect = ["status == 200"]

[[steps]]
node = "a"
call = "GET /version"
expect = ["status == 200"]
"""
    out = _HeadOne()
    report = await run_scenario(
        load_text(text, "t.toml"), tmp_path / "t.toml", out=out, run_root=tmp_path
    )
    assert report.verdict == "passed", report.reason
    assert [s.status for s in report.steps] == ["passed", "passed"]
    assert out.getvalue() == "t: read by head -1\n"
    assert_nothing_left(report)


async def test_a_node_that_cannot_start_is_an_error(tmp_path: Path) -> None:
    text = """
description = "bad config"
[nodes.a]
sound = false
config = { cluster = { hub_ports = "40000-40001" } }
[[steps]]
sleep_s = 1
"""
    report, printed = await run(text, tmp_path)
    assert report.verdict == "error"
    assert report.exit_code == 3
    assert "node a did not start: exited with status 2" in report.reason
    assert "cluster.hub_ports" in report.reason
    assert report.steps[0].status == "not run"
    assert "setup failed" in printed
    assert_nothing_left(report)


async def test_the_scenario_timeout_ends_the_run(tmp_path: Path) -> None:
    text = f"""
description = "too long"
timeout_s = 3
{QUIET}
[[steps]]
sleep_s = 60
"""
    t0 = time.monotonic()
    report, _ = await run(text, tmp_path)
    assert time.monotonic() - t0 < 15
    assert report.verdict == "error"
    assert "timeout (3 s) ran out" in report.reason
    assert report.steps[0].status == "error"
    assert_nothing_left(report)


async def test_a_missing_tool_skips_the_run_with_the_reason(tmp_path: Path) -> None:
    text = f'description = "x"\nrequires = ["no-such-tool-here"]\n{QUIET}[[steps]]\nsleep_s = 1\n'
    report, printed = await run(text, tmp_path)
    assert report.verdict == "skipped"
    assert report.exit_code == 4
    assert printed.startswith("SKIPPED t: no-such-tool-here not found")
    assert report.processes == []
    assert not any(p.name.startswith("rocd-scenario-") for p in os.scandir(tmp_path))


INTERRUPTED = """
description = "interrupted while it sleeps"

[nodes.a]
netns = "lan"
[nodes.b]
netns = "lan"

[[links]]
from = "a"
to = "b"
profile = "wifi"

[[steps]]
pair = ["a", "b"]

[[steps]]
sleep_s = 60
"""


@pytest.mark.parametrize("signals", [1, 2])
def test_ctrl_c_stops_everything(tmp_path: Path, signals: int) -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    file = tmp_path / "interrupted.toml"
    file.write_text(INTERRUPTED)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rocd.cli", "scenario", "run", str(file), "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    while not any(line.startswith("[1/2] pair a b ... ok") for line in lines):
        line = proc.stdout.readline()
        assert line, f"the run ended early:\n{''.join(lines)}{proc.communicate()[1]}"
        lines.append(line)
    time.sleep(0.3)  # into the sleep step
    t0 = time.monotonic()
    for _ in range(signals):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=30)
    took = time.monotonic() - t0
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    assert "interrupted: stopping everything" in out
    assert "INTERRUPTED: interrupted by a signal" in out
    report = json.loads((tmp_path / "interrupted.json").read_text())
    assert report["verdict"] == "interrupted"
    assert report["left_behind"] == []
    started = {what for what, _ in report["processes"]}
    assert {"node a", "node b", "link a -> b"} <= started
    for what, pid in report["processes"]:
        assert not alive(pid), f"{what} (pid {pid}) is still running"
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for node in report["nodes"].values():
        assert node["netns"] not in listed
    assert not Path(report["run_dir"]).exists()
    print(f"{signals} SIGINT: everything stopped in {took:.2f} s")
    if signals == 2:
        assert "hurrying" in out


FAULTS = """
description = "a cut link, healed; a sound server killed"

[nodes.a]
netns = "lan"
sound = false
[nodes.b]
netns = "lan"

[[steps]]
pair = ["a", "b"]

[[steps]]
node = "b"
call = "POST /peers/self/vads"
body = { name = "Speaker", kind = "speaker" }
capture = { speaker = "body.uid" }

[[steps]]
cut = ["a", "b"]

[[steps]]
name = "a sees b go"
node = "a"
event = "peer.left"
until = ["data.peer.uid == ${b.uid}"]
within_s = 8

[[steps]]
heal = ["a", "b"]

[[steps]]
name = "and come back"
node = "a"
call = "GET /peers/${b.uid}"
until = ["body.state == 'online'"]
within_s = 15

[[steps]]
stop_sound = "b"

[[steps]]
name = "b's sound driver goes down"
node = "b"
event = "driver.down"
until = ["subject == 'pulse'"]

[[steps]]
name = "and up again, with the speaker"
node = "b"
event = "driver.up"
until = ["subject == 'pulse'"]

[[steps]]
node = "b"
call = "GET /peers/self/vads/${speaker}"
until = ["body.state == 'ready'"]
"""


async def test_faults_cut_heal_and_stop_a_sound_server(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    report, printed = await run(FAULTS, tmp_path)
    assert report.verdict == "passed", printed
    left = report.steps[3].measured["event"]
    assert left["data"]["peer"]["state"] == "offline"
    assert report.steps[6].message.startswith("killed sound server pid ")
    assert_nothing_left(report)
