"""Supervision: who restarts a crashed actor, how often, and what happens when that fails.

Rules (one-for-one with restart intensity, as in Erlang/OTP):
- A supervisor runs its children in its own nursery. A child that crashes (raises anything
  but a cancellation) is restarted in place, alone; the others are not touched.
- Restart intensity: more than `max_restarts` restarts within `within` seconds (over all
  children) means restarting does not help. The supervisor then gives up: it raises
  `SupervisorGaveUp`, which cancels all its children and fails the supervisor itself, so
  its own parent supervisor restarts it with all its children (escalation). At the root
  this ends the daemon.
- A child whose first start fails is not restarted: the error goes to whoever asked for
  the child (`start_child`), e.g. an API request that gets a clear 4xx/5xx.
- A child that returns normally, is stopped (`stop_child`) or has `Restart.NEVER` and
  crashes is gone for good: removed from the registry, its mailbox closed.
- A cancellation from above (daemon shutdown, escalation) is not a crash. Children stay
  adopted so that a restarted supervisor brings them all back.

Crashes and restarts are logged and published as events through the `publish` callback.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from rocd._exception_groups import is_cancellation, root_cause
from rocd.errors import Conflict, NotFound, RocdError

from ._actor import Actor
from ._registry import Registry

log = logging.getLogger("rocd.actors")

#: publish(kind, subject, data): how a supervisor reports crashes and restarts.
Publish = Callable[[str, str, dict[str, Any]], None]


class Restart(enum.Enum):
    """What a supervisor does when a child crashes."""

    ON_FAILURE = "on_failure"  # restart it (subject to the restart intensity)
    NEVER = "never"  # let it go (one-shot work)


class SupervisorGaveUp(RocdError):
    """Restarts came too fast: the supervisor failed so that its parent can escalate."""


class Child(Protocol):
    """What a supervisor can run: an Actor or another Supervisor."""

    @property
    def kind(self) -> str: ...

    @property
    def uid(self) -> str: ...

    async def run(self, *, task_status: trio.TaskStatus[Any] = ...) -> None: ...

    def close(self, reason: str) -> None: ...


@dataclass(eq=False)
class Failure:
    """One crash of one child, kept for /health and post-mortems."""

    time: float  # trio clock, seconds
    error: str


@dataclass(eq=False)
class _Slot:
    child: Child
    restart: Restart
    scope: trio.CancelScope | None = None
    stopping: bool = False
    stop_reason: str = "stopped"
    running: bool = False
    restarts: int = 0
    done: trio.Event = field(default_factory=trio.Event)


class _StartedProxy:
    """Passes `started` on to the real task_status once, and remembers that it did."""

    def __init__(self, status: trio.TaskStatus[Any]) -> None:
        self._status = status
        self.called = False

    def started(self, value: Any = None) -> None:
        self.called = True
        self._status.started(value)


class Supervisor:
    """Runs children one-for-one; see the module docstring for the rules."""

    kind = "supervisor"

    def __init__(
        self,
        uid: str,
        *,
        registry: Registry,
        max_restarts: int = 5,
        within: float = 10.0,
        publish: Publish | None = None,
    ) -> None:
        self.uid = uid
        self.registry = registry
        self.max_restarts = max_restarts
        self.within = within
        self._publish = publish
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._restart_times: deque[float] = deque()
        self._nursery: trio.Nursery | None = None
        #: Recent crashes per child "kind/uid" (the last few of each).
        self.failures: dict[str, deque[Failure]] = {}

    def __repr__(self) -> str:
        return f"<Supervisor {self.uid}>"

    def children(self) -> list[Child]:
        return [slot.child for slot in self._slots.values()]

    async def run(
        self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run (or, after an escalation, re-run) every adopted child until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for slot in list(self._slots.values()):
                    await nursery.start(self._supervise, slot)
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            self._nursery = None

    async def start_child(self, child: Child, restart: Restart = Restart.ON_FAILURE) -> None:
        """Adopt `child` and start it; returns once it has started.

        If its first start fails, the error is raised here and the child is dropped.
        Raises Conflict if a child with the same kind and uid is already adopted.
        """
        if self._nursery is None:
            raise RuntimeError(f"{self!r} is not running")
        key = (child.kind, child.uid)
        if key in self._slots:
            raise Conflict(f"a {child.kind} with uid {child.uid!r} already exists")
        slot = _Slot(child, restart)
        self._slots[key] = slot
        if isinstance(child, Actor):
            self.registry.register(child.ref)
        try:
            await self._nursery.start(self._supervise, slot)
        except BaseException:
            self._forget(slot, "failed to start")
            raise

    async def stop_child(self, kind: str, uid: str, reason: str = "stopped") -> None:
        """Stop a child for good (it gets its `on_stop` grace) and wait until it is gone."""
        slot = self._slots.get((kind, uid))
        if slot is None:
            raise NotFound(f"no {kind} with uid {uid!r}")
        slot.stopping = True
        slot.stop_reason = reason
        if slot.scope is not None:
            slot.scope.cancel(reason=reason)
        if slot.running:
            await slot.done.wait()
        else:
            self._forget(slot, reason)

    def close(self, reason: str) -> None:
        """End the supervisor for good: every child is closed and unregistered."""
        for slot in list(self._slots.values()):
            self._forget(slot, reason)

    async def _supervise(self, slot: _Slot, *, task_status: trio.TaskStatus[None]) -> None:
        child = slot.child
        name = f"{child.kind}/{child.uid}"
        status = _StartedProxy(task_status)
        slot.running = True
        slot.done = trio.Event()
        try:
            while not slot.stopping:
                crash: BaseException | None = None
                with trio.CancelScope() as scope:
                    slot.scope = scope
                    try:
                        first = not status.called
                        await child.run(task_status=status if first else trio.TASK_STATUS_IGNORED)
                    except BaseException as exc:
                        if is_cancellation(exc) or not status.called:
                            raise
                        crash = exc
                slot.scope = None
                if crash is None:
                    # Returned normally or was stopped: gone for good.
                    self._forget(slot, slot.stop_reason if slot.stopping else "finished")
                    return
                self._record(name, crash)
                if slot.restart is Restart.NEVER:
                    self._forget(slot, f"crashed: {root_cause(crash)!r}")
                    return
                self._check_intensity(name)
                slot.restarts += 1
                log.warning("%s restarted (restart %d)", name, slot.restarts)
                self._emit("actor.restarted", child.uid, {"actor": name, "restarts": slot.restarts})
            self._forget(slot, slot.stop_reason)
        finally:
            slot.running = False
            slot.done.set()

    def _record(self, name: str, crash: BaseException) -> None:
        cause = repr(root_cause(crash))
        log.error("%s crashed: %s", name, cause, exc_info=crash)
        failures = self.failures.setdefault(name, deque(maxlen=8))
        failures.append(Failure(trio.current_time(), cause))
        self._emit("actor.crashed", name.split("/", 1)[1], {"actor": name, "error": cause})

    def _check_intensity(self, name: str) -> None:
        now = trio.current_time()
        times = self._restart_times
        times.append(now)
        while times and times[0] < now - self.within:
            times.popleft()
        if len(times) > self.max_restarts:
            message = (
                f"supervisor {self.uid}: more than {self.max_restarts} restarts in "
                f"{self.within:g} s (last: {name}); giving up"
            )
            log.error("%s", message)
            self._emit("supervisor.gave_up", self.uid, {"supervisor": self.uid, "last": name})
            times.clear()
            raise SupervisorGaveUp(message)

    def _forget(self, slot: _Slot, reason: str) -> None:
        child = slot.child
        if self._slots.get((child.kind, child.uid)) is slot:
            del self._slots[(child.kind, child.uid)]
        if isinstance(child, Actor):
            self.registry.unregister(child.ref)
        child.close(reason)

    def _emit(self, kind: str, subject: str, data: dict[str, Any]) -> None:
        if self._publish is not None:
            self._publish(kind, subject, data)
