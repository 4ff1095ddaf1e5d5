"""Running a scenario: set the testbed up, run the steps in order with a live progress
line each, take everything down, and say what happened.

The first failing step ends the run (the steps after it are "not run"): a scenario is a
story, and what follows a broken step would only fail for its sake. SIGINT and SIGTERM
(Ctrl-C, `timeout`) stop the steps and go straight to the clean-up; a second one makes
the clean-up hurry (SIGKILL instead of a grace period) but never cuts it short: the
namespaces, processes, sound servers and the run directory go either way.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import trio

from ._load import find_tool
from ._model import Scenario, Step
from ._report import Report, StepResult
from ._steps import Failed, Outcome, StepContext
from ._testbed import SetupError, Testbed

__all__ = ["Progress", "run_scenario", "step_label"]


def step_label(step: Step) -> str:
    """What the progress line and the table call a step."""
    if step.name:
        return step.name
    kind = step.kind
    value = getattr(step, kind)
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    where = f"{step.node} " if step.node and kind != "pair" else ""
    return f"{kind.replace('_s', '')} {where}{value}".strip()


class Progress:
    """One line per step: live (rewritten) on a terminal, else a line when it ends."""

    def __init__(self, out: TextIO, total: int) -> None:
        self.out = out
        self.total = total
        self.live = out.isatty()
        self.gone = False  # the reader went away (`| head -1`): the run goes on, silent
        self.label = ""
        self.detail = ""
        self.t0 = 0.0

    def begin(self, index: int, label: str) -> None:
        self.label = f"[{index + 1}/{self.total}] {label}"
        self.detail = ""
        self.t0 = time.monotonic()
        self.draw()

    def set_detail(self, text: str) -> None:
        self.detail = text

    def write(self, text: str) -> None:
        if self.gone:
            return
        try:
            self.out.write(text)
            self.out.flush()
        except BrokenPipeError:
            self.gone = True

    def draw(self) -> None:
        if self.live:
            elapsed = time.monotonic() - self.t0
            detail = f" ({self.detail})" if self.detail else ""
            self.write(f"\r\033[K{self.label} ... {elapsed:.1f} s{detail}"[:200])

    def end(self, status: str, seconds: float, message: str) -> None:
        mark = {"passed": "ok", "failed": "FAIL", "error": "ERROR"}.get(status, status)
        tail = f": {message}" if message and status != "passed" else ""
        line = f"{self.label} ... {mark} {seconds:.2f} s{tail}"
        self.write(f"\r\033[K{line}\n" if self.live else f"{line}\n")

    def say(self, text: str) -> None:
        self.write(("\r\033[K" if self.live else "") + text + "\n")


def missing_tools(scenario: Scenario) -> list[str]:
    wanted = [*scenario.requires, *(t for s in scenario.steps for t in s.requires)]
    return [tool for tool in dict.fromkeys(wanted) if find_tool(tool) is None]


async def run_scenario(
    scenario: Scenario,
    file: Path,
    *,
    keep: bool = False,
    out: TextIO = sys.stdout,
    run_root: Path | None = None,
    on_step: Callable[[int, StepContext], Any] | None = None,
) -> Report:
    """Run `scenario` (read from `file`); its report. Never raises for what happens in
    the scenario: failures, errors, a missing tool and interruptions are verdicts."""
    name = file.stem
    report = Report(name, str(file), scenario.description, expect_failure=scenario.expect_failure)
    report.steps = [StepResult(i, step_label(s), s.kind) for i, s in enumerate(scenario.steps)]
    missing = missing_tools(scenario)
    if missing:
        report.verdict = "skipped"
        report.reason = (
            f"{', '.join(missing)} not found: set ROC_PREFIX to a Roc Toolkit 0.4 prefix "
            "(or put the tools on PATH)"
        )
        out.write(f"SKIPPED {name}: {report.reason}\n")
        return report
    run_dir = Path(tempfile.mkdtemp(prefix=f"rocd-scenario-{name}-", dir=run_root))
    report.run_dir = str(run_dir)
    progress = Progress(out, len(scenario.steps))
    bed = Testbed(scenario, file, run_dir, log=progress.say)
    interrupted = trio.Event()
    steps_scope = trio.CancelScope()
    t_start = time.monotonic()

    async def watch_signals() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            count = 0
            async for _ in signals:
                count += 1
                if count == 1:
                    interrupted.set()
                    steps_scope.cancel()
                    progress.say("interrupted: stopping everything (again to hurry)")
                else:
                    bed.hurry = True
                    progress.say("hurrying: killing what is left, then cleaning up")

    async with trio.open_nursery() as root:
        root.start_soon(watch_signals)
        root.start_soon(_tick, progress)
        try:
            async with trio.open_nursery() as bed_nursery:
                await _setup_and_run(
                    scenario, bed, bed_nursery, report, progress, steps_scope, on_step
                )
                bed_nursery.cancel_scope.cancel()  # the event followers
            if steps_scope.cancelled_caught:
                if interrupted.is_set():
                    report.verdict, report.reason = "interrupted", "interrupted by a signal"
                else:
                    report.verdict = "error"
                    report.reason = f"the scenario's timeout ({scenario.timeout_s:g} s) ran out"
                for step in report.steps:
                    if step.status == "running":
                        step.status, step.message = "error", report.reason
        finally:
            # Whatever happened (a bug in the runner included), everything goes.
            report.duration_s = time.monotonic() - t_start - report.setup_s
            t_down = time.monotonic()
            report.links = bed.link_counters() if bed.link_stats else {}
            report.stream_metrics = _last_metrics(bed)
            if report.nodes:
                report.nodes = _nodes(bed)  # with the nodes started by steps
            report.left_behind = await bed.close(keep=keep)
            report.processes = list(bed.pids)
            report.teardown_s = time.monotonic() - t_down
            root.cancel_scope.cancel()
    if report.left_behind and report.verdict == "passed":
        report.verdict, report.reason = "error", "not everything could be cleaned up"
    if keep:
        progress.say(f"kept: {run_dir} (state, logs, recordings)")
    return report


async def _setup_and_run(
    scenario: Scenario,
    bed: Testbed,
    nursery: trio.Nursery,
    report: Report,
    progress: Progress,
    steps_scope: trio.CancelScope,
    on_step: Callable[[int, StepContext], Any] | None,
) -> None:
    t_start = time.monotonic()
    steps_scope.deadline = trio.current_time() + scenario.timeout_s
    with steps_scope:
        try:
            progress.say(f"{report.scenario}: {scenario.description.strip().splitlines()[0]}")
            await bed.open(nursery)
        except SetupError as exc:
            report.verdict, report.reason = "error", str(exc)
            progress.say(f"setup failed: {exc}")
        else:
            report.setup_s = time.monotonic() - t_start
            report.nodes = _nodes(bed)
            await _run_steps(scenario, bed, report, progress, on_step)


async def _run_steps(
    scenario: Scenario,
    bed: Testbed,
    report: Report,
    progress: Progress,
    on_step: Callable[[int, StepContext], Any] | None,
) -> None:
    ctx = StepContext(bed)
    ctx.progress = progress.set_detail
    t0 = trio.current_time()
    report.verdict = "passed"
    try:
        for index, step in enumerate(scenario.steps):
            result = report.steps[index]
            result.status = "running"
            result.started_s = trio.current_time() - t0
            ctx.step_started[result.name] = trio.current_time()
            if step.name:
                ctx.step_started[step.name] = trio.current_time()
            progress.begin(index, result.name)
            outcome = Outcome()
            status, message = "passed", ""
            try:
                await ctx.run(step, outcome)
            except Failed as exc:
                status, message = "failed", str(exc)
            except SetupError as exc:
                status, message = "error", str(exc)
            except Exception as exc:  # the runner could not do it: an error, not a crash
                status, message = "error", f"{type(exc).__name__}: {exc}"
            finally:
                result.duration_s = trio.current_time() - t0 - result.started_s
                result.checks, result.captured = outcome.checks, outcome.captured
                result.measured = outcome.measured
                if outcome.note and not message:
                    message = outcome.note
                result.message = message
            result.status = status
            progress.end(status, result.duration_s, message)
            progress.label = ""
            if on_step is not None:
                on_step(index, ctx)
            if status != "passed":
                report.verdict = status
                report.reason = f"step {index + 1} ({result.name}) {status}"
                break
    finally:
        report.metrics = ctx.metrics
        for recording in ctx.recordings.values():
            if recording.proc.returncode is None:
                recording.proc.send_signal(signal.SIGINT)


async def _tick(progress: Progress) -> None:
    while True:
        await trio.sleep(0.25)
        if progress.label:
            progress.draw()


def _last_metrics(bed: Testbed) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, node in bed.nodes.items():
        last = {e["subject"]: e["data"] for e in node.events if e.get("kind") == "stream.metrics"}
        if last:
            out[name] = last
    return out


def _nodes(bed: Testbed) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "uid": node.me.get("uid", ""),
            "api": node.url,
            "address": node.me.get("address", ""),
            "netns": node.netns or "",
            "public": node.public,
            "pulse_server": node.pulse_server,
            "log": str(node.root / "rocd.log"),
        }
        for name, node in bed.nodes.items()
    }
