"""The lifecycle of a stream (and of each of its ends): which state may follow which.

Rules:
- pending:  an end is prepared (ports bound, device opened) but not committed yet; it
            expires on its own if no commit comes.
- starting: committed; audio is being set up or has not flowed yet.
- active:   audio flows (a receiver plays a session, a sender sends what its device gives).
- degraded: it flowed, then stopped flowing (the sender went quiet, the device went away,
            the other peer is unreachable); it becomes active again by itself.
- failed:   it cannot work (a port it must bind is taken for good, ...); only a delete
            follows.
- stopped:  it ended (deleted, its source ended, not committed in time); terminal.

    pending  -> starting | failed | stopped
    starting -> active | degraded | failed | stopped
    active   -> degraded | failed | stopped
    degraded -> active | starting | failed | stopped
    failed   -> stopped

Any other transition is a bug or a request that contradicts the state (committing an end
twice): `InvalidTransition`, a 409. A stream's own state is the combination of its ends'
(`combine`): the worst of them, in the order failed, stopped, degraded, pending, starting,
active.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable

from rocd.errors import Conflict


class StreamState(enum.StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    ACTIVE = "active"
    DEGRADED = "degraded"
    FAILED = "failed"
    STOPPED = "stopped"


_S = StreamState
ALLOWED: dict[StreamState, frozenset[StreamState]] = {
    _S.PENDING: frozenset({_S.STARTING, _S.FAILED, _S.STOPPED}),
    _S.STARTING: frozenset({_S.ACTIVE, _S.DEGRADED, _S.FAILED, _S.STOPPED}),
    _S.ACTIVE: frozenset({_S.DEGRADED, _S.FAILED, _S.STOPPED}),
    _S.DEGRADED: frozenset({_S.ACTIVE, _S.STARTING, _S.FAILED, _S.STOPPED}),
    _S.FAILED: frozenset({_S.STOPPED}),
    _S.STOPPED: frozenset(),
}

#: Worst first: the state a stream shows when its ends disagree.
_SEVERITY = (_S.FAILED, _S.STOPPED, _S.DEGRADED, _S.PENDING, _S.STARTING, _S.ACTIVE)

TERMINAL = frozenset({_S.FAILED, _S.STOPPED})


class InvalidTransition(Conflict):
    """A state change the rules above do not allow."""

    def __init__(self, what: str, current: StreamState, wanted: StreamState) -> None:
        super().__init__(
            f"{what} is {current.value}: it cannot become {wanted.value}",
            details=[{"state": current.value, "wanted": wanted.value}],
        )
        self.current = current
        self.wanted = wanted


class Lifecycle:
    """The state of one end, its reason, and since when (Unix time, seconds)."""

    def __init__(self, what: str, state: StreamState, reason: str = "") -> None:
        self.what = what
        self.state = state
        self.reason = reason
        self.since = time.time()

    def can(self, state: StreamState) -> bool:
        return state is self.state or state in ALLOWED[self.state]

    def to(self, state: StreamState, reason: str = "") -> bool:
        """Move to `state` (staying is allowed: the reason may change); True when the
        state or the reason changed. InvalidTransition when the rules forbid it."""
        if not self.can(state):
            raise InvalidTransition(self.what, self.state, state)
        if (state, reason) == (self.state, self.reason):
            return False
        if state is not self.state:
            self.since = time.time()
        self.state, self.reason = state, reason
        return True

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


def combine(states: Iterable[StreamState]) -> StreamState:
    """A stream's state from its ends' (the worst; stopped when it has none left)."""
    present = set(states)
    for state in _SEVERITY:
        if state in present:
            return state
    return StreamState.STOPPED
