"""Actors: an object that owns its state and its tasks, reached only through its mailbox.

An actor handles one message at a time, so its state needs no locks. `tell` delivers a
message and does not wait for it to be handled; `ask` delivers a `Request[R]` and waits
for the typed reply, with a deadline, so a caller never hangs on a dead or stuck actor.

Outcomes of a handler:
- it returns: the value is the reply (`ask`) or dropped (`tell`);
- it raises a `RocdError` (NotFound, InvalidRequest...): an expected refusal, sent back to
  the asker (or logged for a `tell`); the actor goes on;
- it raises anything else: a bug or a broken resource. The asker gets `ActorCrashed`, the
  actor's task fails and its supervisor decides whether to restart it.

The same actor object is restarted in place (`run` is called again), so its `ref` and its
mailbox stay valid across restarts and messages sent meanwhile wait for the new
incarnation. `on_start` rebuilds whatever runtime state the actor needs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

import msgspec
import outcome
import trio

from rocd.errors import ActorCrashed, ActorGone, AskTimeout, RocdError

from ._mailbox import Mailbox, MailboxStats

if TYPE_CHECKING:
    from ._supervisor import Supervisor

log = logging.getLogger("rocd.actors")

R = TypeVar("R")

#: Seconds an `ask` waits for its reply unless told otherwise.
DEFAULT_ASK_TIMEOUT = 5.0


class Request(msgspec.Struct, Generic[R], frozen=True):
    """A message that expects a reply of type R (subclass as `class Get(Request[Info])`)."""


class _Ask:
    """An envelope around a request: the actor fills in the outcome, the asker waits."""

    __slots__ = ("done", "msg", "result")

    def __init__(self, msg: Request[Any]) -> None:
        self.msg = msg
        self.result: outcome.Outcome[Any] | None = None
        self.done = trio.Event()

    def reply(self, value: Any) -> None:
        if self.result is None:
            self.result = outcome.Value(value)
            self.done.set()

    def fail(self, error: BaseException) -> None:
        if self.result is None:
            self.result = outcome.Error(error)
            self.done.set()


class ActorRef:
    """How everyone else reaches an actor: by message, through its mailbox."""

    __slots__ = ("_mailbox", "kind", "uid")

    def __init__(self, kind: str, uid: str, mailbox: Mailbox) -> None:
        self.kind = kind
        self.uid = uid
        self._mailbox = mailbox

    def __repr__(self) -> str:
        return f"<ActorRef {self.kind}/{self.uid}>"

    @property
    def alive(self) -> bool:
        """False once the actor has stopped for good."""
        return not self._mailbox.closed

    async def tell(self, msg: Any) -> None:
        """Deliver `msg`, waiting while the mailbox is full (back-pressure)."""
        await self._mailbox.send(msg)

    def tell_nowait(self, msg: Any) -> None:
        """Deliver `msg` now or raise `Busy`; for routers and pumps that must not block."""
        self._mailbox.send_nowait(msg)

    async def ask(self, msg: Request[R], *, within: float = DEFAULT_ASK_TIMEOUT) -> R:
        """Deliver `msg` and wait for the reply.

        Raises `Busy` at once if the mailbox is full (the asker decides whether to retry),
        `ActorGone` if the actor has stopped, `AskTimeout` after `within` seconds, and
        re-raises the `RocdError` the handler raised. On cancellation the request may
        still be handled; its reply is dropped.
        """
        envelope = _Ask(msg)
        self._mailbox.send_nowait(envelope)
        with trio.move_on_after(within):
            await envelope.done.wait()
        if envelope.result is None:
            raise AskTimeout(
                f"{self.kind} {self.uid} did not answer {type(msg).__name__} within {within:g} s"
            )
        return cast(R, envelope.result.unwrap())


class Actor:
    """Base class: subclasses set `kind` and implement `handle` (and maybe the hooks)."""

    kind: ClassVar[str] = "actor"
    #: Messages that may wait in the mailbox before senders see back-pressure / Busy.
    mailbox_capacity: ClassVar[int] = 64
    #: Seconds `on_stop` may take when the actor stops (shielded from cancellation).
    stop_grace: ClassVar[float] = 1.0
    #: Handle each request in a task of its own, several at once (for an actor that only
    #: orchestrates others and whose state no handler leaves half-changed across an
    #: await): a slow request then does not hold up the quick ones behind it.
    concurrent: ClassVar[bool] = False

    def __init__(self, uid: str) -> None:
        self.uid = uid
        self.mailbox = Mailbox(f"{self.kind} {uid}", self.mailbox_capacity)
        self.ref = ActorRef(self.kind, uid, self.mailbox)
        self._nursery: trio.Nursery | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind}/{self.uid}>"

    @property
    def nursery(self) -> trio.Nursery:
        """The nursery of the running incarnation: the actor's own tasks live here."""
        if self._nursery is None:
            raise RuntimeError(f"{self!r} is not running")
        return self._nursery

    @property
    def running(self) -> bool:
        return self._nursery is not None

    def mailbox_stats(self) -> MailboxStats:
        return self.mailbox.stats()

    def supervisors(self) -> Sequence[Supervisor]:
        """Supervisors this actor runs in its own nursery (their crashes count in /health)."""
        return ()

    async def on_start(self) -> None:
        """(Re)build runtime state and start owned tasks; runs before any message."""

    async def on_stop(self) -> None:
        """Release what the actor holds; runs after every incarnation, shielded, with
        `stop_grace` seconds to finish (enough to send a last report or flush a file)."""

    async def handle(self, msg: Any) -> Any:
        """Handle one message; the return value is the reply to an `ask`."""
        raise NotImplementedError(f"{type(self).__name__} does not handle {type(msg).__name__}")

    async def run(
        self, *, task_status: trio.TaskStatus[ActorRef] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run one incarnation until the mailbox closes, the task is cancelled or a handler
        fails. Reports `started(ref)` once `on_start` is done."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self.on_start()
                task_status.started(self.ref)
                await self._serve()
                nursery.cancel_scope.cancel(reason=f"{self.kind} {self.uid} stopped")
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + self.stop_grace
                try:
                    await self.on_stop()
                except Exception:
                    log.exception("%s %s: error while stopping", self.kind, self.uid)

    def close(self, reason: str) -> None:
        """End the actor for good: refuse new messages, fail the asks still queued."""
        for msg in self.mailbox.close():
            if isinstance(msg, _Ask):
                msg.fail(ActorGone(f"{self.kind} {self.uid} has stopped: {reason}"))

    async def _serve(self) -> None:
        while True:
            try:
                msg = await self.mailbox.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return
            if isinstance(msg, _Ask):
                if self.concurrent:
                    self.nursery.start_soon(self._answer, msg)
                else:
                    await self._answer(msg)
            else:
                try:
                    await self.handle(msg)
                except RocdError as exc:
                    name = type(msg).__name__
                    log.warning("%s %s refused %s: %s", self.kind, self.uid, name, exc)

    async def _answer(self, envelope: _Ask) -> None:
        try:
            result = await self.handle(envelope.msg)
        except RocdError as exc:
            envelope.fail(exc)
        except trio.Cancelled:
            envelope.fail(ActorGone(f"{self.kind} {self.uid} stopped while handling the request"))
            raise
        except BaseException as exc:
            envelope.fail(ActorCrashed(f"{self.kind} {self.uid} failed: {exc!r}"))
            raise
        else:
            envelope.reply(result)
