"""What a `Link` reports (`Link.events()`): one small frozen dataclass per kind of
happening, dispatched by the shells with `match`."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from ._messages import Ask, Error, Event, Frame, Hello, Subscribe, Welcome


@dataclass(frozen=True)
class HelloReceived:
    hello: Hello


@dataclass(frozen=True)
class Welcomed:
    welcome: Welcome


@dataclass(frozen=True)
class AskReceived:
    ask: Ask


@dataclass(frozen=True)
class Answered:
    id: int
    body: msgspec.Raw


@dataclass(frozen=True)
class AskFailed:
    id: int
    error: Error


@dataclass(frozen=True)
class AskExpired:
    id: int


@dataclass(frozen=True)
class AskAborted:
    id: int
    reason: str


@dataclass(frozen=True)
class EventReceived:
    event: Event


@dataclass(frozen=True)
class SubscribeReceived:
    subscribe: Subscribe


@dataclass(frozen=True)
class LinkError:
    """An `Error` about the link itself (id 0), e.g. a frame of ours it could not read."""

    error: Error


@dataclass(frozen=True)
class Misrouted:
    frame: Frame


@dataclass(frozen=True)
class Closed:
    reason: str
    code: str  # the Bye's code, or "dead" / "protocol"
    by_remote: bool


LinkEvent = (
    HelloReceived
    | Welcomed
    | AskReceived
    | Answered
    | AskFailed
    | AskExpired
    | AskAborted
    | EventReceived
    | SubscribeReceived
    | LinkError
    | Misrouted
    | Closed
)
