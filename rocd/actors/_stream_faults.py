"""Fault injection for the two-phase setup: make a step fail, hang or kill the daemon.

Read only by tests, from the environment variable ROCD_FAULTS at daemon start:

    ROCD_FAULTS="commit_sender.before=kill,prepare_receiver.after=fail"

or, to change them while the daemon runs, from a file read again at every step:

    ROCD_FAULTS_FILE=/tmp/faults     # holding the same text (empty: no fault)

Points: `<step>.before` and `<step>.after` for the steps prepare_receiver, prepare_sender,
commit_receiver and commit_sender, on the instance that performs the step. Actions:
`fail` (the step answers an error; `.after`: its effect stays, as if the reply were lost),
`hang` (answers only after `HANG_S` seconds, well past the coordinator's deadline, which
must roll back), `kill` (SIGKILL of the daemon itself, as a power cut: nothing runs
after it).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Mapping

import trio

from rocd.errors import Unavailable

log = logging.getLogger("rocd.streams")

FAULTS_ENV = "ROCD_FAULTS"
FAULTS_FILE_ENV = "ROCD_FAULTS_FILE"
STEPS = ("prepare_receiver", "prepare_sender", "commit_receiver", "commit_sender")
POINTS = frozenset(f"{step}.{when}" for step in STEPS for when in ("before", "after"))
ACTIONS = frozenset({"fail", "hang", "kill"})
#: Seconds a `hang` lasts (the step then goes on as if nothing happened).
HANG_S = 8.0


class Faults:
    """Where to inject what; empty (the usual case) costs a dict lookup per step."""

    def __init__(self, points: Mapping[str, str] | None = None, file: str | None = None) -> None:
        self.points = dict(points or {})
        self.file = file
        for point, action in self.points.items():
            if point not in POINTS or action not in ACTIONS:
                raise ValueError(f"bad fault {point}={action}")

    @classmethod
    def parse(cls, text: str) -> Faults:
        """`point=action,...` (see the module docstring); ValueError when malformed."""
        points = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            point, sep, action = item.partition("=")
            if not sep:
                raise ValueError(f"bad fault {item!r}: expected POINT=ACTION")
            points[point.strip()] = action.strip()
        return cls(points)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Faults:
        faults = cls.parse(env.get(FAULTS_ENV, ""))
        faults.file = env.get(FAULTS_FILE_ENV) or None
        return faults

    async def at(self, point: str) -> None:
        """Inject the fault set for `point`, if any."""
        if self.file is not None:
            try:
                text = await trio.Path(self.file).read_text()
            except OSError:
                text = ""
            try:
                self.points = Faults.parse(text).points
            except ValueError as exc:
                log.error("%s: %s", self.file, exc)
                self.points = {}
        action = self.points.get(point)
        if action is None:
            return
        log.warning("injected fault at %s: %s", point, action)
        if action == "fail":
            raise Unavailable(f"injected fault at {point}")
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        await trio.sleep(HANG_S)
