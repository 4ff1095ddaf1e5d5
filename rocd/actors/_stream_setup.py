"""The two-phase setup of a stream, as the coordinator walks it: what is done, what to undo.

    started -> receiver_prepared -> sender_prepared -> receiver_committed -> committed
        (a stream with an external destination has no receiver end: started ->
         sender_prepared -> committed; one with an external source no sender end:
         receiver_prepared -> receiver_committed -> committed)
    any phase but committed -> rolling_back -> rolled_back

The receiver is prepared first (its ports decide where the sender sends) and committed
first (it is listening when the first packet comes). A failure, or the deadline, at any
step rolls back everything prepared or committed so far; nothing committed is undone once
the setup is `committed`. Steps out of this order raise `InvalidSetupStep` (a bug).
"""

from __future__ import annotations

import enum
from typing import Any

from rocd.errors import RocdError

from ._stream_media import HubLease


class SetupPhase(enum.StrEnum):
    STARTED = "started"
    RECEIVER_PREPARED = "receiver_prepared"
    SENDER_PREPARED = "sender_prepared"
    RECEIVER_COMMITTED = "receiver_committed"
    COMMITTED = "committed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"


_P = SetupPhase
_NEXT: dict[SetupPhase, frozenset[SetupPhase]] = {
    _P.STARTED: frozenset({_P.RECEIVER_PREPARED, _P.SENDER_PREPARED, _P.ROLLING_BACK}),
    _P.RECEIVER_PREPARED: frozenset({_P.SENDER_PREPARED, _P.RECEIVER_COMMITTED, _P.ROLLING_BACK}),
    _P.SENDER_PREPARED: frozenset({_P.RECEIVER_COMMITTED, _P.COMMITTED, _P.ROLLING_BACK}),
    _P.RECEIVER_COMMITTED: frozenset({_P.COMMITTED, _P.ROLLING_BACK}),
    _P.COMMITTED: frozenset(),
    _P.ROLLING_BACK: frozenset({_P.ROLLED_BACK}),
    _P.ROLLED_BACK: frozenset(),
}


class InvalidSetupStep(RocdError):
    """A setup step taken out of order (a bug in the coordinator)."""


class Setup:
    """One stream's setup: its phase and the ends made so far (peer uid per role)."""

    def __init__(self, stream: str, *, receiver: str | None, sender: str | None) -> None:
        self.stream = stream
        self.phase = SetupPhase.STARTED
        self.expects: dict[str, str | None] = {"receiver": receiver, "sender": sender}
        self.made: dict[str, str] = {}  # role -> peer uid of an end prepared or committed
        self.there = ""  # the host the sender reaches the receiver's instance at
        self.lease: HubLease | None = None  # a hub relay leased for it (given back on rollback)
        self.ends: list[Any] = []  # what each committed end answered (its EndInfo)
        self.took: list[tuple[str, float]] = []  # (step, milliseconds) of each step taken

    def _to(self, phase: SetupPhase) -> None:
        if phase not in _NEXT[self.phase]:
            raise InvalidSetupStep(
                f"stream {self.stream}: setup cannot go from {self.phase} to {phase}"
            )
        self.phase = phase

    def prepared(self, role: str) -> None:
        peer = self.expects.get(role)
        if peer is None:
            raise InvalidSetupStep(f"stream {self.stream} has no {role} end to prepare")
        self._to(_P.RECEIVER_PREPARED if role == "receiver" else _P.SENDER_PREPARED)
        self.made[role] = peer

    def committed(self, role: str) -> None:
        if role not in self.made:
            raise InvalidSetupStep(f"stream {self.stream}: {role} committed before prepared")
        if role == "receiver":
            self._to(_P.RECEIVER_COMMITTED)
            if self.expects.get("sender") is not None:
                return
        self._to(_P.COMMITTED)

    def rolling_back(self) -> dict[str, str]:
        """Start the rollback: the ends to abort (role -> peer uid): those made, and those
        whose step was under way (its answer may have been lost; an abort of an end that
        does not exist is a no-op)."""
        self._to(_P.ROLLING_BACK)
        return {role: peer for role, peer in self.expects.items() if peer is not None}

    def rolled_back(self) -> None:
        self._to(_P.ROLLED_BACK)
        self.made.clear()
