"""What each kind of step does, on a running testbed.

A step ends in one of three ways: it passes (its expectations held), it fails
(`Failed`: an expectation did not hold, or a wait ran out of time), or it errs (any other
exception: the runner could not do what the step says). Values a step captures, and
everything it measured, go in its `Outcome` for the report.
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import numpy as np
import trio

from ._expr import ExpressionError, evaluate, substitute, substitute_value
from ._load import find_tool
from ._model import Step
from ._names import ALIASES
from ._signals import compare, read_signal_file, signal_name, tone, tones
from ._testbed import Node, Testbed, write_signal

__all__ = ["Failed", "Outcome", "StepContext"]


class Failed(Exception):
    """An expectation did not hold (the run's verdict is a failure, not an error)."""


@dataclass
class Outcome:
    checks: list[dict[str, Any]] = field(default_factory=list)  # {expect, ok, detail}
    captured: dict[str, Any] = field(default_factory=dict)
    measured: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass
class Recording:
    node: Node
    device: str
    path: Path
    rate: int
    channels: int
    proc: trio.Process
    started: float  # runner time the first sample arrived


@dataclass
class Sound:
    frames: Any
    rate: int
    started: float  # runner time it started playing


class StepContext:
    """The state steps share: captured values, recordings, sounds, step start times."""

    def __init__(self, bed: Testbed) -> None:
        self.bed = bed
        self.values: dict[str, Any] = {}
        self.recordings: dict[str, Recording] = {}
        self.sounds: dict[str, Sound] = {}
        self.step_started: dict[str, float] = {}
        self.metrics: list[dict[str, Any]] = []  # every snapshot a metrics step took
        self.progress: Any = lambda text: None  # the live line's detail

    def refresh(self) -> None:
        for node in self.bed.nodes.values():
            self.values.update(node.properties())

    def text(self, value: str) -> str:
        self.refresh()
        return substitute(value, self.values)

    def check(self, outcome: Outcome, exprs: list[str], context: dict[str, Any]) -> None:
        """Evaluate expectations; Failed with every one that did not hold."""
        failed = []
        for expr in exprs:
            ok, detail = self.holds(expr, context)
            outcome.checks.append({"expect": expr, "ok": ok, "detail": detail})
            if not ok:
                failed.append(f"{expr} ({detail})" if detail else expr)
        if failed:
            raise Failed("; ".join(failed))

    def holds(self, expr: str, context: dict[str, Any]) -> tuple[bool, str]:
        self.refresh()
        try:
            text = substitute(expr, self.values, literal=True)
            return bool(evaluate(text, context)), _detail(text, context)
        except ExpressionError as exc:
            return False, str(exc)

    def capture(self, step: Step, outcome: Outcome, context: dict[str, Any]) -> None:
        for var, expr in step.capture.items():
            try:
                value = evaluate(substitute(expr, self.values, literal=True), context)
            except ExpressionError as exc:
                raise Failed(f"capture {var}: {exc}") from None
            self.values[var] = value
            outcome.captured[var] = value

    # -- the steps ----------------------------------------------------------------------

    async def run(self, step: Step, outcome: Outcome) -> None:
        handler = getattr(self, f"_{step.kind}")
        try:
            await handler(step, outcome)
        finally:
            self.refresh()  # a node (re)started: its uid, api and sound server

    def _node(self, name: str | None) -> Node:
        assert name is not None
        return self.bed.nodes[self.text(name)]

    async def _call(self, step: Step, outcome: Outcome) -> None:
        node = self._node(step.node)
        assert step.call is not None
        method, _, path = self.text(step.call).partition(" ")
        body = substitute_value(step.body, self.values) if step.body is not None else None
        deadline = trio.current_time() + step.within_s
        async with httpx.AsyncClient(timeout=min(step.within_s, 20.0) + 5) as http:
            while True:
                context = await _request(http, method, node, path.strip(), body)
                if not step.until:
                    break
                if all(self.holds(u, context)[0] for u in step.until):
                    break
                if trio.current_time() >= deadline:
                    self.check(outcome, step.until, context)  # raises, naming what failed
                self.progress(_brief(context))
                await trio.sleep(step.every_s)
        outcome.measured["status"] = context["status"]
        if step.until:
            self.check(outcome, step.until, context)
        expect = step.expect or ([] if step.until else ["200 <= status < 300"])
        try:
            self.check(outcome, expect, context)
        except Failed as exc:
            outcome.measured["body"] = context["body"]
            raise Failed(f"{exc}; answer: {_short(context['body'], 300)}") from None
        self.capture(step, outcome, context)

    async def _event(self, step: Step, outcome: Outcome) -> None:
        node = self._node(step.node)
        assert step.event is not None
        kind = self.text(step.event)

        def wanted(event: dict[str, Any]) -> bool:
            if not (
                event["kind"] == kind or (kind.endswith(".") and event["kind"].startswith(kind))
            ):
                return False
            return all(self.holds(u, event)[0] for u in step.until)

        deadline = trio.current_time() + step.within_s
        if step.absent:
            # Any such event of the whole run, up to `within_s` from now.
            await trio.sleep_until(deadline)
            seen = [e for e in node.events if wanted(e)]
            outcome.measured["matching"] = len(seen)
            if seen:
                raise Failed(f"{len(seen)} {kind} event(s) that should not be: {_short(seen[0])}")
            return
        while True:
            for index in range(node.cursor, len(node.events)):
                event = node.events[index]
                if wanted(event):
                    node.cursor = index + 1
                    outcome.measured["event"] = event
                    self.check(outcome, step.expect, event)
                    self.capture(step, outcome, event)
                    return
            if trio.current_time() >= deadline:
                recent = [e["kind"] for e in node.events[node.cursor :]][-8:]
                raise Failed(f"no {kind} event within {step.within_s:g} s (recent: {recent})")
            await trio.sleep(0.05)

    async def _metrics(self, step: Step, outcome: Outcome) -> None:
        node = self._node(step.node)
        assert step.metrics is not None
        uid = self.text(step.metrics)
        deadline = trio.current_time() + step.within_s
        async with httpx.AsyncClient(timeout=10) as http:
            while True:
                answer = await _request(http, "GET", node, f"/streams/{uid}/metrics", None)
                context = _end_metrics(answer, step.role)
                if not step.until or all(self.holds(u, context)[0] for u in step.until):
                    break
                if trio.current_time() >= deadline:
                    self.check(outcome, step.until, context)
                await trio.sleep(step.every_s)
        self.metrics.append(
            {
                "node": node.name,
                "stream": uid,
                "role": step.role,
                "at": trio.current_time(),
                "values": context,
            }
        )
        outcome.measured["metrics"] = {
            k: v for k, v in context.items() if isinstance(v, int | float | str) or v is None
        }
        self.check(outcome, step.expect, context)

    async def _pair(self, step: Step, outcome: Outcome) -> None:
        assert step.pair is not None
        a, b = (self.bed.nodes[n] for n in step.pair)
        async with httpx.AsyncClient(timeout=10) as http:
            for one, other in ((a, b), (b, a)):
                body = {"address": other.me["address"], "key": other.me["key"]}
                answer = await _request(http, "POST", one, "/peers", body)
                if answer["status"] not in (200, 201):
                    raise Failed(
                        f"{one.name} POST /peers: {answer['status']} {_short(answer['body'])}"
                    )
            deadline = trio.current_time() + step.within_s
            for one, other in ((a, b), (b, a)):
                while True:
                    answer = await _request(http, "GET", one, "/peers", None)
                    peers = answer["body"] if isinstance(answer["body"], list) else []
                    state = next(
                        (p.get("state") for p in peers if p.get("key") == other.me["key"]), None
                    )
                    if state == "online":
                        break
                    if trio.current_time() >= deadline:
                        raise Failed(
                            f"{one.name} does not list {other.name} online within "
                            f"{step.within_s:g} s (it is {state})"
                        )
                    self.progress(f"{one.name} sees {other.name} {state}")
                    await trio.sleep(0.1)
        outcome.note = f"{a.name} and {b.name} linked"

    async def _sleep_s(self, step: Step, outcome: Outcome) -> None:
        assert step.sleep_s is not None
        await trio.sleep(step.sleep_s)

    async def _play(self, step: Step, outcome: Outcome) -> None:
        node = self._node(step.node)
        assert step.play is not None
        assert step.device is not None
        text = self.text(step.play)
        name = step.as_ or signal_name(text)[:-4]
        path = self.bed.run_dir / "sounds" / f"{name}.wav"
        path.parent.mkdir(exist_ok=True)
        await trio.to_thread.run_sync(
            write_signal, text, self.bed.file.parent, path, step.rate, step.channels
        )
        frames, rate = await trio.to_thread.run_sync(read_signal_file, path)
        sink = _pulse_name(self.text(step.device), monitor=False)
        argv = ["paplay", f"--device={sink}", str(path)]
        started = trio.current_time()
        proc = await self.bed.spawn(f"paplay on {node.name}", argv, env=node.sound_env())
        self.sounds[name] = Sound(frames, rate, started)
        self.values[f"{name}.file"] = str(path)
        if step.wait:
            await proc.wait()
            if proc.returncode != 0:
                raise RuntimeError(f"paplay into {sink} exited with status {proc.returncode}")

    async def _record(self, step: Step, outcome: Outcome) -> None:
        node = self._node(step.node)
        assert step.record is not None
        assert step.as_ is not None
        device = _pulse_name(self.text(step.record), monitor=True)
        path = self.bed.run_dir / "recordings" / f"{step.as_}.raw"
        path.parent.mkdir(exist_ok=True)
        argv = ["parec", f"--device={device}", "--raw", "--format=float32le",
                f"--rate={step.rate}", f"--channels={step.channels}",
                "--latency-msec=10"]  # fmt: skip
        proc = await self.bed.spawn(
            f"parec on {node.name}", argv, stdout=path, env=node.sound_env()
        )
        with trio.move_on_after(5):
            while path.stat().st_size == 0 and proc.poll() is None:  # noqa: ASYNC110 - a file
                await trio.sleep(0.01)
        if path.stat().st_size == 0:
            raise RuntimeError(f"parec records nothing from {device} on {node.name}")
        self.recordings[step.as_] = Recording(
            node, device, path, step.rate, step.channels, proc, trio.current_time()
        )

    async def _audio(self, step: Step, outcome: Outcome) -> None:
        assert step.audio is not None
        rec = self.recordings[step.audio]
        if rec.proc.returncode is None:
            rec.proc.send_signal(signal.SIGINT)
            with trio.move_on_after(5):
                await rec.proc.wait()
        data = np.fromfile(rec.path, dtype=np.float32)
        got = data[: len(data) // rec.channels * rec.channels].reshape(-1, rec.channels)
        measured: dict[str, Any]
        if isinstance(step.tone_hz, list):
            measured = tones(got, step.tone_hz, rec.rate)
        elif step.tone_hz is not None:
            measured = tone(got, step.tone_hz, rec.rate)
        if step.tone_hz is not None:
            if step.sent_at is not None and measured["onset_s"] >= 0:
                sent_at = self.step_started[step.sent_at]
                measured["latency_ms"] = round(
                    (rec.started + measured["onset_s"] - sent_at) * 1000, 1
                )
        else:
            assert step.sent is not None
            sent, rate, sent_at = self._sent(step)
            if rate != rec.rate:
                raise RuntimeError(
                    f"{step.sent} is at {rate} Hz, the recording at {rec.rate} Hz: record at {rate}"
                )
            measured = await trio.to_thread.run_sync(compare, sent, got, rec.rate)
            if measured["offset_s"] >= 0:
                measured["latency_ms"] = round(
                    (rec.started + measured["offset_s"] - sent_at) * 1000, 1
                )
        measured["recorded_s"] = round(len(got) / rec.rate, 3)
        outcome.measured["audio"] = measured
        self.check(outcome, step.expect, measured)

    def _sent(self, step: Step) -> tuple[Any, int, float]:
        assert step.sent is not None
        if step.sent in self.sounds:
            sound = self.sounds[step.sent]
            started = self.step_started[step.sent_at] if step.sent_at else sound.started
            return sound.frames, sound.rate, started
        node, _, file = step.sent.partition(":")
        frames, rate = read_signal_file(self.bed.nodes[node].files_dir / file)
        assert step.sent_at is not None
        return frames, rate, self.step_started[step.sent_at]

    async def _run(self, step: Step, outcome: Outcome) -> None:
        node = self._node(step.node)
        assert step.run is not None
        argv = (
            shlex.split(self.text(step.run))
            if isinstance(step.run, str)
            else [self.text(a) for a in step.run]
        )
        if argv[0] == "rocd":
            argv = [sys.executable, "-m", "rocd.cli", *argv[1:]]
        else:
            tool = find_tool(argv[0])
            if tool is None:
                raise RuntimeError(f"{argv[0]} not found (in $ROC_PREFIX/bin or PATH)")
            argv[0] = tool
        log = self.bed.run_dir / f"run-{len(self.bed.processes)}.log"
        proc = await self.bed.spawn(
            f"{argv[0]} on {node.name}",
            node.inside(argv),
            stdout=log,
            env=node.sound_env() if node.pulse_server else None,
        )
        if step.wait:
            with trio.fail_after(step.within_s):
                await proc.wait()
            context = {"status": proc.returncode, "output": log.read_text(errors="replace")}
            outcome.measured["status"] = proc.returncode
            self.check(outcome, step.expect or ["status == 0"], context)

    async def _kill(self, step: Step, outcome: Outcome) -> None:
        node = self._node(step.kill)
        if node.daemon is None or not node.running:
            raise RuntimeError(f"node {node.name} is not running")
        await node.daemon.kill()
        outcome.note = f"killed pid {node.daemon.proc.pid}"  # type: ignore[union-attr]

    async def _stop(self, step: Step, outcome: Outcome) -> None:
        node = self._node(step.stop)
        if node.daemon is None or not node.running:
            raise RuntimeError(f"node {node.name} is not running")
        status = await node.daemon.stop()
        outcome.measured["status"] = status

    async def _start(self, step: Step, outcome: Outcome) -> None:
        await self.bed.start(self._node(step.start))

    async def _restart(self, step: Step, outcome: Outcome) -> None:
        node = self._node(step.restart)
        if node.daemon is not None and node.running:
            await node.daemon.stop()
        await self.bed.start(node)

    async def _cut(self, step: Step, outcome: Outcome) -> None:
        assert step.cut is not None
        await self.bed.cut(*step.cut)

    async def _heal(self, step: Step, outcome: Outcome) -> None:
        assert step.heal is not None
        await self.bed.cut(*step.heal, heal=True)

    async def _stop_sound(self, step: Step, outcome: Outcome) -> None:
        node = self._node(step.stop_sound)
        outcome.note = f"killed sound server pid {self.bed.stop_sound(node)}"


async def _request(
    http: httpx.AsyncClient, method: str, node: Node, path: str, body: Any
) -> dict[str, Any]:
    """{status, body} of one API call; status 0 and the error as body when the node does
    not answer (so that waits go on across a restart)."""
    if not node.url:
        return {"status": 0, "body": f"node {node.name} has not started"}
    try:
        answer = await http.request(method, node.url + path, json=body)
    except httpx.HTTPError as exc:
        return {"status": 0, "body": f"{type(exc).__name__}: {exc}"}
    try:
        value = answer.json()
    except (json.JSONDecodeError, ValueError):
        value = answer.text
    return {"status": answer.status_code, "body": value}


def _end_metrics(answer: dict[str, Any], role: str) -> dict[str, Any]:
    """One end's metrics with friendly names beside the API's."""
    body = answer["body"]
    context: dict[str, Any] = {"status": answer["status"], "state": None}
    if not isinstance(body, dict) or "ends" not in body:
        return context
    context["state"] = body.get("state")
    for end in body["ends"]:
        if end.get("role") == role:
            values = dict(end.get(role) or {})
            context.update(values)
            context.update(
                {
                    "end_state": end.get("state"),
                    "reason": end.get("reason", ""),
                    "peer": end.get("peer"),
                }
            )
            for alias, name in ALIASES.items():
                if name in values:
                    context[alias] = values[name]
    return context


def _pulse_name(device: str, *, monitor: bool) -> str:
    """A sound server name for `device` (a sink: its monitor when recording)."""
    if device.startswith("vad:"):
        device = f"pulse:sink:rocd_vad_{device[4:]}"
    if device.startswith("pulse:source:"):
        return device[len("pulse:source:") :]
    name = device.removeprefix("pulse:sink:")
    if monitor and not name.endswith(".monitor"):
        return f"{name}.monitor"
    return name


def _detail(text: str, context: dict[str, Any]) -> str:
    """The values the names of `text` have (for the report)."""
    import ast

    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return ""
    shown: list[str] = []
    for node in ast.walk(tree.body):
        if isinstance(node, ast.Attribute | ast.Subscript | ast.Name) and not isinstance(
            getattr(node, "ctx", None), ast.Store
        ):
            source = ast.unparse(node)
            if source in _SKIP or any(source in s for s in shown):
                continue
            try:
                value = evaluate(source, context)
            except ExpressionError:
                continue
            if isinstance(value, dict | list):
                continue
            shown.append(f"{source}={_short(value, 40)}")
    return ", ".join(shown[:4])


_SKIP: Final = {
    "len",
    "abs",
    "min",
    "max",
    "any",
    "all",
    "sum",
    "true",
    "false",
    "null",
    "str",
    "int",
    "float",
}


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _brief(context: dict[str, Any]) -> str:
    body = context["body"]
    if isinstance(body, dict) and "state" in body:
        return f"{context['status']} state={body['state']}"
    return str(context["status"])
