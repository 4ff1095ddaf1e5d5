"""Reading a scenario file: TOML, then msgspec, then the checks types cannot make
(names that exist, references defined by an earlier step, one action per step), every
error naming the file, the line and the field: `tone.toml:23: steps[4].call: ...`.

TOML parsers give no positions for values, so `LineIndex` finds them in the text: the
line of each table header (`[nodes.a]`, the n-th `[[steps]]`) and of each `key =` under
it; a field inside an inline table or a multi-line value gets its key's line.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
import shutil
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

from rocd.config import Config

from ._expr import CONSTANTS, REFERENCE, ExpressionError, parse
from ._model import ACTIONS, PROFILES, Scenario, Step
from ._names import names_of
from ._signals import SignalError, parse_signal

__all__ = ["LineIndex", "ScenarioError", "load", "load_text", "node_properties"]

#: What `${node.x}` may name.
NODE_PROPERTIES: Final = ("uid", "key", "address", "host", "api", "name", "files", "pulse_server")

_HEADER: Final = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY: Final = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_\-.]+)\s*=""")
_INLINE_KEY: Final = re.compile(r"""("[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)\s*=""")
_PATH: Final = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\[\"([^\"]*)\"\]")


class ScenarioError(Exception):
    """A scenario that cannot be run as written; the message names line and field."""


def node_properties(node: str) -> list[str]:
    return [f"{node}.{p}" for p in NODE_PROPERTIES]


def _key_path(text: str) -> tuple[str, ...]:
    parts = re.findall(r"""("[^"]*"|'[^']*'|[^.\s]+)""", text)
    return tuple(p.strip("\"'") for p in parts)


class LineIndex:
    """Line numbers (1-based) of the tables and keys of a TOML text."""

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str | int, ...], int] = {}
        counts: dict[tuple[str, ...], int] = {}
        table: tuple[str | int, ...] = ()
        path: tuple[str | int, ...]
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header is not None and not _KEY.match(line):
                names = _key_path(header.group(2))
                if header.group(1) == "[[":
                    index = counts.get(names, 0)
                    counts[names] = index + 1
                    table = (*names, index)
                else:
                    # A sub-table of an array's last element: [steps.body] under [[steps]].
                    table = self._under_array(names, counts)
                self.lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key is None:
                continue
            path = (*table, *_key_path(key.group(1)))
            self.lines.setdefault(path, number)
            rest = line[key.end() :]
            for inner in _INLINE_KEY.findall(rest):
                self.lines.setdefault((*path, inner.strip("\"'")), number)

    @staticmethod
    def _under_array(
        path: tuple[str, ...], counts: dict[tuple[str, ...], int]
    ) -> tuple[str | int, ...]:
        for cut in range(len(path) - 1, 0, -1):
            head = path[:cut]
            if head in counts:
                return (*head, counts[head] - 1, *path[cut:])
        return path

    def line_of(self, path: tuple[str | int, ...]) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for cut in range(len(path), 0, -1):
            found = self.lines.get(path[:cut])
            if found is not None:
                return found
        return None


def _parse_path(text: str) -> tuple[str | int, ...]:
    """'steps[3].call' -> ('steps', 3, 'call')."""
    out: list[str | int] = []
    for name, index, quoted in _PATH.findall("." + text if text and text[0] != "[" else text):
        if index:
            out.append(int(index))
        else:
            out.append(name or quoted)
    return tuple(out)


def _show(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


@dataclass
class _Where:
    file: str
    index: LineIndex

    def error(self, path: tuple[str | int, ...], message: str) -> ScenarioError:
        line = self.index.line_of(path)
        at = f"{self.file}:{line}" if line else self.file
        field = _show(path)
        return ScenarioError(f"{at}: {field}: {message}" if field else f"{at}: {message}")

    def invalid(self, under: tuple[str | int, ...], exc: msgspec.ValidationError) -> ScenarioError:
        """msgspec's refusal of the value at `under`, at its line and field."""
        # msgspec says where (" - at `$.steps[1]`") except at the top level.
        found = re.fullmatch(r"(.*?)(?: - at `\$\.?(.*)`)?", str(exc), re.DOTALL)
        message, at = (found.group(1), found.group(2) or "") if found else (str(exc), "")
        path = (*under, *_parse_path(at))
        unknown = re.fullmatch(r"Object contains unknown field `(.+)`", message)
        if unknown is not None:  # point at the field itself
            path, message = (*path, unknown.group(1)), "no such field here"
        missing = re.fullmatch(r"Object missing required field `(.+)`", message)
        if missing is not None:
            path, message = (*path, missing.group(1)), "missing (it is required)"
        message = message.replace("`", "")
        return self.error(path, message[:1].lower() + message[1:])


def load(path: Path) -> Scenario:
    """The scenario in `path`; ScenarioError (line and field named) when it is not valid."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(
            f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    return load_text(text, str(path))


def load_text(text: str, file: str = "<scenario>") -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        message = re.sub(r"\s*\(at line.*\)", "", str(exc))
        at = f"{file}:{match.group(1)}" if match else file
        raise ScenarioError(f"{at}: invalid TOML: {message}") from None
    except RecursionError:  # arrays or tables hundreds deep; no key nests so
        raise ScenarioError(f"{file}: invalid TOML: nested too deeply") from None
    where = _Where(file, LineIndex(text))
    try:
        scenario = msgspec.convert(data, Scenario)
    except msgspec.ValidationError as exc:
        raise where.invalid((), exc) from None
    _check(scenario, where)
    return scenario


def _check(scenario: Scenario, where: _Where) -> None:
    nodes = scenario.nodes
    if not nodes:
        raise where.error(("nodes",), "a scenario needs at least one node")
    if not scenario.steps:
        raise where.error(("steps",), "a scenario needs at least one step")

    def known(path: tuple[str | int, ...], name: str) -> None:
        if name not in nodes:
            raise where.error(path, f"no node {name!r} (there is {', '.join(sorted(nodes))})")

    def namespaced(path: tuple[str | int, ...], names: list[str], why: str) -> None:
        for name in names:
            known(path, name)
            if nodes[name].netns is None:
                raise where.error(path, f"{why} needs node {name!r} in a network namespace (netns)")

    for name, node in nodes.items():
        try:  # the daemon's own configuration model: a typo is found now, at its line
            msgspec.convert(node.config, Config)
        except msgspec.ValidationError as exc:
            raise where.invalid(("nodes", name, "config"), exc) from None
        for file, signal in node.files.items():
            if "/" in file or not re.fullmatch(r"[\w.\-]+\.(wav|flac|ogg)", file):
                raise where.error(
                    ("nodes", name, "files", file), "a file name ending .wav/.flac/.ogg"
                )
            _check_signal(signal, where, ("nodes", name, "files", file))
    for i, link in enumerate(scenario.links):
        path: tuple[str | int, ...] = ("links", i)
        if link.profile is not None and link.profile not in PROFILES:
            raise where.error(
                (*path, "profile"), f"no profile {link.profile!r} (there is {', '.join(PROFILES)})"
            )
        if link.from_ == link.to:
            raise where.error((*path, "to"), "a link joins two different nodes")
        namespaced((*path, "from"), [link.from_, link.to], "a link")
    defined: set[str] = set()
    for name in nodes:
        defined.update(node_properties(name))
    names: set[str] = set()
    sounds: set[str] = set()
    recordings: set[str] = set()
    steps: set[str] = set()
    for i, step in enumerate(scenario.steps):
        _check_step(i, step, where, scenario, defined, sounds, recordings, steps, known, namespaced)
        if step.name is not None:
            if step.name in names:
                raise where.error(("steps", i, "name"), f"another step is named {step.name!r}")
            names.add(step.name)
            steps.add(step.name)


def _check_signal(signal: str, where: _Where, path: tuple[str | int, ...]) -> None:
    try:
        parse_signal(signal)
    except SignalError as exc:
        raise where.error(path, str(exc)) from None


def _check_step(
    i: int,
    step: Step,
    where: _Where,
    scenario: Scenario,
    defined: set[str],
    sounds: set[str],
    recordings: set[str],
    names: set[str],
    known: Callable[[tuple[str | int, ...], str], None],
    namespaced: Callable[[tuple[str | int, ...], list[str], str], None],
) -> None:
    path: tuple[str | int, ...] = ("steps", i)
    actions = step.actions
    if len(actions) != 1:
        message = (
            f"a step does exactly one thing: one of {', '.join(ACTIONS)}"
            if not actions
            else f"a step does one thing, this one has {' and '.join(actions)}"
        )
        raise where.error(path, message)
    kind = actions[0]

    def refs(field: str, value: Any) -> None:
        for text in _strings(value):
            for ref in REFERENCE.findall(text):
                if ref not in defined:
                    raise where.error(
                        (*path, field), f"${{{ref}}} is not captured by an earlier step"
                    )

    for field in ("call", "event", "metrics", "play", "record", "run", "body", "sent"):
        refs(field, getattr(step, field))
    allowed = names_of(step)
    if step.expect and allowed is None:
        raise where.error(
            (*path, "expect"), "only call, event, metrics, audio and run steps check expect"
        )
    for field in ("until", "expect"):
        for j, text in enumerate(getattr(step, field)):
            refs(field, text)
            try:
                tree = parse(REFERENCE.sub("0", text))
            except ExpressionError as exc:
                raise where.error((*path, field), str(exc)) from None
            _check_names(tree, text, allowed, kind, where, (*path, field, j))
    for var, text in step.capture.items():
        try:
            tree = parse(REFERENCE.sub("0", text))
        except ExpressionError as exc:
            raise where.error((*path, "capture", var), str(exc)) from None
        _check_names(tree, text, allowed, kind, where, (*path, "capture", var))
    needs_node = kind in ("call", "event", "metrics", "play", "record", "run")
    if needs_node:
        if step.node is None:
            raise where.error(path, f'a {kind} step names its node (node = "...")')
        known((*path, "node"), step.node)
    elif step.node is not None:
        raise where.error((*path, "node"), f"a {kind} step takes no node")
    if kind == "call":
        assert step.call is not None
        method, _, target = step.call.partition(" ")
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE") or not target.startswith("/"):
            raise where.error(
                (*path, "call"), 'expected "METHOD /path" (GET, POST, PUT, PATCH, DELETE)'
            )
    if step.capture and kind not in ("call", "event"):
        raise where.error((*path, "capture"), "only call and event steps capture values")
    if step.until and kind not in ("call", "event", "metrics"):
        raise where.error((*path, "until"), "only call, event and metrics steps wait")
    if kind in ("pair", "cut", "heal"):
        pair = getattr(step, kind)
        if len(pair) != 2 or pair[0] == pair[1]:
            raise where.error((*path, kind), "two different nodes")
        if kind == "pair":
            for name in pair:
                known((*path, kind), name)
        else:
            namespaced((*path, kind), pair, f"{kind} =")
    if kind in ("kill", "stop", "start", "restart", "stop_sound"):
        known((*path, kind), getattr(step, kind))
        if kind == "stop_sound" and not scenario.nodes[step.stop_sound or ""].sound:
            raise where.error(
                (*path, kind), f"node {step.stop_sound!r} has no sound server (sound = false)"
            )
    if kind in ("play", "record", "audio") and kind != "audio":
        assert step.node is not None
        if not scenario.nodes[step.node].sound:
            raise where.error(
                (*path, "node"), f"node {step.node!r} has no sound server (sound = false)"
            )
    if kind == "play":
        assert step.play is not None
        if not REFERENCE.search(step.play):
            _check_signal(step.play, where, (*path, "play"))
        if step.device is None:
            raise where.error(path, 'a play step names the sink it plays into (device = "...")')
        refs("device", step.device)
        if step.as_ is not None:
            sounds.add(step.as_)
    if kind == "record":
        if step.as_ is None:
            raise where.error(path, 'a record step names its recording (as = "...")')
        if step.as_ in recordings:
            raise where.error((*path, "as"), f"another recording is named {step.as_!r}")
        recordings.add(step.as_)
    if kind in ("audio", "metrics") and not step.expect:
        raise where.error(path, f"an {kind} step says what must hold (expect = [...])")
    if kind == "audio":
        if step.audio not in recordings:
            raise where.error((*path, "audio"), f"no earlier record step made {step.audio!r}")
        if (step.sent is None) == (step.tone_hz is None):
            raise where.error(
                path,
                "an audio step compares with `sent` (a played sound or a node's file) "
                "or with `tone_hz`",
            )
        if step.sent is not None and step.sent not in sounds:
            node, _, file = step.sent.partition(":")
            if not file or node not in scenario.nodes or file not in scenario.nodes[node].files:
                raise where.error(
                    (*path, "sent"),
                    f"{step.sent!r} is neither an earlier play (as = ...) "
                    'nor a node\'s file ("node:file.wav")',
                )
            if step.sent_at is None:
                raise where.error(
                    path,
                    "a node's file as `sent` needs `sent_at`: the step that started the stream",
                )
        if step.sent_at is not None and step.sent_at not in names:
            raise where.error((*path, "sent_at"), f"no earlier step is named {step.sent_at!r}")
    if kind == "run":
        for tool in step.requires:
            if not tool or "/" in tool:
                raise where.error((*path, "requires"), f"{tool!r}: a tool's name")
    defined.update(step.capture)
    if step.as_ is not None and kind == "play":
        defined.add(f"{step.as_}.file")


def _check_names(
    tree: ast.Expression,
    text: str,
    allowed: frozenset[str] | None,
    kind: str,
    where: _Where,
    path: tuple[str | int, ...],
) -> None:
    """Every name `text` reads is one its step will have (see rocd.scenario._names)."""
    if allowed is None:
        return
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Name) or id(node) in called or node.id in CONSTANTS:
            continue
        if node.id not in allowed:
            near = difflib.get_close_matches(node.id, allowed, n=1)
            hints = [f"did you mean {near[0]!r}?"] if near else []
            if len(allowed) <= 12:
                hints.append(f"{_article(kind)} {kind} step has {', '.join(sorted(allowed))}")
            hint = f" ({'; '.join(hints)})" if hints else ""
            raise where.error(path, f"{text!r}: no {node.id!r} here{hint}")


def _article(word: str) -> str:
    return "an" if word[:1] in tuple("aeiou") else "a"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def find_tool(name: str) -> str | None:
    """A tool from $ROC_PREFIX/bin, else PATH (the reference Roc tools live there)."""
    prefix = os.environ.get("ROC_PREFIX")
    if prefix:
        candidate = Path(prefix) / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)
