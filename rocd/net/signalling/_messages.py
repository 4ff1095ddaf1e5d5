"""The peer signalling messages and their encoding: a closed set of msgspec structs.

A frame is one MessagePack array, `[version, src, dst, message]`, or
`[version, src, dst, message, side]` for a frame of a relayed link:

- `version` is `[major, minor]`. A frame of another major, or of a newer minor than this
  rocd knows, is refused with `UnsupportedVersion` before its message is looked at (a
  newer minor may carry messages or meanings this rocd would misread). The handshake
  (`Hello`, `Welcome`) is always sent as `MAJOR.0`, so instances of different minors can
  meet and agree on the lower of their two minors; every later frame carries that one.
- `src` and `dst` are the uids of the instances that wrote the message and that it is
  for ("" = the other end of this connection). A direct link fills them in and checks
  `dst`; an instance relaying between two others forwards frames whose `dst` is not its
  own, unchanged, so the envelope already allows relayed connections.
- `side` marks a frame of a relayed link (one carried over another link: through a
  rendezvous instance, or back over the connection the other side dialled): "d" when
  the dialling end of that link wrote it, "l" when the listening end did. Both ends of
  a carrying connection may run relayed links each way at once; the side says which
  one a frame belongs to. Frames of a direct link have no `side` (four elements).
- `message` is a map tagged by its `t` field (`"hello"`, `"ask"`...). An unknown tag is
  refused with `MalformedMessage` naming it; unknown fields of a known message are
  ignored (a newer minor may add optional ones).

Requests and replies travel as opaque MessagePack values inside `Ask.body` and
`Reply.body` (`msgspec.Raw`): this layer knows the request's name and address, the layer
above (which knows the request classes) decodes the body with `decode_value`.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from ._errors import MalformedMessage, UnsupportedVersion

#: The protocol version this rocd speaks: another major cannot be read at all; minors
#: only add (messages, optional fields, capabilities).
MAJOR: Final = 1
MINOR: Final = 0
#: Frames above this size are refused (and ZeroMQ drops a connection that sends one).
MAX_FRAME_BYTES: Final = 1 << 20
#: What this rocd can do over a link; a peer only uses what both announce.
CAPABILITIES: Final = ("ask", "events", "mirror")


class _Message(msgspec.Struct, frozen=True, tag_field="t"):
    """Base of every message: tagged by `t`, unknown fields ignored."""


class Hello(_Message, frozen=True, tag="hello"):
    """The dialling side introduces itself (sent once, first, as MAJOR.0)."""

    uid: str
    name: str
    minor: int  # the highest minor of MAJOR the sender speaks
    software: str  # the sender's rocd version
    capabilities: list[str] = []
    address: str = ""  # where the sender's own listener is reachable (tcp://host:port)
    api: str = ""  # the sender's HTTP API base URL ("" if unknown)
    started: float = 0.0  # Unix time the sender started, seconds
    join: str = ""  # a one-time invite secret, when the sender joins through an invite
    key: str = ""  # the sender's public key (Z85); a rendezvous checks it on relayed hellos


class Welcome(_Message, frozen=True, tag="welcome"):
    """The listening side accepts a hello (sent once, as MAJOR.0)."""

    uid: str
    name: str
    minor: int  # the minor both sides speak from now on: min(theirs, ours)
    software: str
    role: str  # the role the dialler's key has on the listener
    capabilities: list[str] = []
    address: str = ""
    api: str = ""
    started: float = 0.0
    key: str = ""  # the sender's public key (Z85); a rendezvous checks it on relayed welcomes


class Heartbeat(_Message, frozen=True, tag="hb"):
    """Sent by the dialler every heartbeat interval; answered by `HeartbeatAck`."""

    seq: int


class HeartbeatAck(_Message, frozen=True, tag="hb_ack"):
    seq: int


class ActorAddress(msgspec.Struct, frozen=True, array_like=True):
    """An actor on the instance a message is for: its kind and uid."""

    kind: str
    uid: str


class Ask(_Message, frozen=True, tag="ask"):
    """A typed request for an actor; answered by a `Reply` or an `Error` with its id."""

    id: int  # unique among the sender's pending asks on this link (> 0)
    actor: ActorAddress
    request: str  # the request's type name, e.g. "UpdateDevice"
    body: msgspec.Raw  # the request's fields, MessagePack
    timeout_ms: int  # how long the asker waits; the answer is useless after that


class Reply(_Message, frozen=True, tag="reply"):
    id: int
    body: msgspec.Raw  # the reply value, MessagePack


class Error(_Message, frozen=True, tag="error"):
    """An ask refused or failed (id > 0), or the link itself refused (id 0)."""

    id: int
    code: str  # the error code of rocd's HTTP errors: not_found, invalid, forbidden...
    message: str
    details: list[dict[str, Any]] = []
    actor: ActorAddress | None = None  # the actor that refused, when one did


class Event(_Message, frozen=True, tag="event"):
    """An event of the sender's instance, pushed to a subscriber."""

    n: int  # numbers the events of one subscription: a gap means some were lost
    seq: int  # the event's number on its instance
    time: float  # Unix time, seconds
    kind: str
    peer: str  # the instance where it happened
    subject: str = ""
    data: dict[str, Any] = {}


class Subscribe(_Message, frozen=True, tag="subscribe"):
    """Ask for the events of the receiver's instance (replacing any earlier filter).

    `kinds`: exact kinds, or prefixes ending in "."; empty: every event.
    `active`: false stops the subscription.
    """

    kinds: list[str] = []
    active: bool = True


class Bye(_Message, frozen=True, tag="bye"):
    """The sender closes the link (and says why); nothing follows on it."""

    reason: str
    code: str = "closing"  # closing | refused | version | protocol | revoked | join


Message = Hello | Welcome | Heartbeat | HeartbeatAck | Ask | Reply | Error | Event | Subscribe | Bye

#: The tags a frame may carry (for error messages and the fuzz tests).
MESSAGE_TAGS: Final = tuple(
    str(cls.__struct_config__.tag)
    for cls in (Hello, Welcome, Heartbeat, HeartbeatAck, Ask, Reply, Error, Event, Subscribe, Bye)
)


#: The `side` of a relayed frame: written by the dialling or by the listening end.
SIDE_DIALLER: Final = "d"
SIDE_LISTENER: Final = "l"


class Frame(msgspec.Struct, frozen=True, array_like=True):
    """One decoded frame: its version, its envelope and its message."""

    v: tuple[int, int]
    src: str
    dst: str
    msg: Message
    side: str = ""  # "" on a direct link, SIDE_DIALLER / SIDE_LISTENER on a relayed one


class _Envelope(msgspec.Struct, frozen=True, array_like=True):
    v: tuple[int, int]
    src: str
    dst: str
    msg: msgspec.Raw
    side: str = ""


class _Tagged(msgspec.Struct, frozen=True):
    t: str


#: What msgspec raises for bad input (a string that is not UTF-8 is a UnicodeDecodeError,
#: a value nested some thousand deep a RecursionError).
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)


_encoder = msgspec.msgpack.Encoder()
_envelope = msgspec.msgpack.Decoder(_Envelope)
_tagged = msgspec.msgpack.Decoder(_Tagged)
_message = msgspec.msgpack.Decoder(Message)


def encode(
    msg: Message, *, src: str = "", dst: str = "", minor: int = MINOR, side: str = ""
) -> bytes:
    """The frame carrying `msg`, as version MAJOR.`minor` (handshakes: pass minor=0);
    `side` only for a relayed link's frames (a direct link's have four elements)."""
    if side:
        return _encoder.encode(((MAJOR, minor), src, dst, msg, side))
    return _encoder.encode(((MAJOR, minor), src, dst, msg))


def decode(data: bytes) -> Frame:
    """The frame in `data`, or MalformedMessage / UnsupportedVersion saying what is wrong."""
    if len(data) > MAX_FRAME_BYTES:
        raise MalformedMessage(f"frame of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        envelope = _envelope.decode(data)
    except _DECODE_ERRORS as exc:
        raise MalformedMessage(f"not a signalling frame: {_explain(exc)}") from None
    major, minor = envelope.v
    if major != MAJOR or minor > MINOR or minor < 0:
        raise UnsupportedVersion(
            f"frame of signalling version {major}.{minor}; this rocd speaks "
            f"{MAJOR}.0 to {MAJOR}.{MINOR}"
        )
    try:
        msg = _message.decode(envelope.msg)
    except _DECODE_ERRORS as exc:
        raise MalformedMessage(_unknown_or(envelope.msg, exc)) from None
    if envelope.side not in ("", SIDE_DIALLER, SIDE_LISTENER):
        raise MalformedMessage(f"unknown frame side {envelope.side[:8]!r}")
    return Frame(envelope.v, envelope.src, envelope.dst, msg, envelope.side)


def encode_value(value: Any) -> msgspec.Raw:
    """A request or reply value as the opaque body of an `Ask` or `Reply`."""
    return msgspec.Raw(_encoder.encode(value))


def decode_value(body: msgspec.Raw, type: Any) -> Any:
    """The value of an `Ask` or `Reply` body as `type`, or MalformedMessage."""
    try:
        return msgspec.msgpack.decode(body, type=type)
    except _DECODE_ERRORS as exc:
        raise MalformedMessage(f"bad body: {_explain(exc)}") from None


def _unknown_or(raw: msgspec.Raw, exc: Exception) -> str:
    """'unknown message "x"' when the tag is the problem, else msgspec's complaint."""
    try:
        tag = _tagged.decode(raw).t
    except _DECODE_ERRORS:
        return f"bad message: {_explain(exc)}"
    if tag not in MESSAGE_TAGS:
        return f"unknown message {tag[:40]!r} (this rocd knows {', '.join(MESSAGE_TAGS)})"
    return f"bad {tag} message: {_explain(exc)}"


def _explain(exc: Exception) -> str:
    return str(exc).replace("`", "")[:200]
