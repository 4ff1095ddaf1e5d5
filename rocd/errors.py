"""The daemon's few error types, each knowing how it looks over HTTP.

Actors raise these for outcomes the caller must hear about (an unknown device, a bad
value, a full mailbox); the API layer maps any of them to a response from `status` and
`code` alone, without a ladder of `if`s. Anything else escaping a handler is a bug: the
actor crashes, its supervisor restarts it, and the caller sees `ActorCrashed`.

The wire layer (rocd.net) keeps its own errors: it knows nothing of HTTP.
"""

from __future__ import annotations

from typing import Any, ClassVar

#: Characters of an error message an answer carries; the rest is cut (a message may
#: quote what was sent: a 10,000-character id is not echoed whole).
MAX_MESSAGE = 500


def bounded(message: str) -> str:
    """`message`, cut to `MAX_MESSAGE` characters (saying how many more there were)."""
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[:MAX_MESSAGE]}... ({len(message) - MAX_MESSAGE} more characters)"


class RocdError(Exception):
    """Base of every error that crosses an actor or API boundary."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[dict[str, Any]] = details or []

    def to_json(self) -> dict[str, Any]:
        """The JSON body every API error has: error code, message, details."""
        return {"error": self.code, "message": bounded(self.message), "details": self.details}


class NotFound(RocdError):
    """No resource (actor, peer, device...) with that identity."""

    status = 404
    code = "not_found"


class InvalidRequest(RocdError):
    """The request is well-formed but its values are not acceptable."""

    status = 422
    code = "invalid"


class Conflict(RocdError):
    """The request contradicts the current state (a name taken, a port in use...)."""

    status = 409
    code = "conflict"


class Unsupported(RocdError):
    """The resource cannot do this (a driver that makes no virtual microphones...).

    409, not 501: the request is valid and the server works; this resource, as it is set
    up here, cannot do it (a 5xx would count as a server failure in clients' monitoring).
    """

    status = 409
    code = "unsupported"


class Busy(RocdError):
    """A mailbox is full: the actor is overloaded, try again later."""

    status = 503
    code = "busy"


class Unavailable(RocdError):
    """Something the request needs is down (a sound server, a peer link)."""

    status = 503
    code = "unavailable"


class StorageFailed(RocdError):
    """The state file cannot be written now (disk full, read-only): nothing was saved.

    The environment, not a bug: the request is refused, the daemon goes on, and the
    store reports itself degraded until a write works again.
    """

    status = 503
    code = "storage"


class ActorGone(RocdError):
    """The actor asked has stopped for good; its mailbox is closed."""

    status = 503
    code = "gone"


class AskTimeout(RocdError):
    """No reply within the ask's deadline."""

    status = 504
    code = "timeout"


class ActorCrashed(RocdError):
    """The actor failed while handling the request; its supervisor restarts it."""

    status = 500
    code = "crashed"


class Unauthorized(RocdError):
    """The request carries no valid credential (an API token) where one is required."""

    status = 401
    code = "unauthorized"


class Forbidden(RocdError):
    """The credential is valid but its role does not allow the request."""

    status = 403
    code = "forbidden"


def error_from_code(
    code: str, message: str, details: list[dict[str, Any]] | None = None
) -> RocdError:
    """The RocdError an error code names (an error that crossed the wire from another
    instance is re-raised here as the same type); an unknown code is a plain 500."""
    cls = _BY_CODE.get(code, RocdError)
    return cls(message, details=details)


_BY_CODE: dict[str, type[RocdError]] = {
    cls.code: cls
    for cls in (
        NotFound,
        InvalidRequest,
        Conflict,
        Unsupported,
        Busy,
        Unavailable,
        ActorGone,
        AskTimeout,
        ActorCrashed,
        Unauthorized,
        Forbidden,
    )
}
