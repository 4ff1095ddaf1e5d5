"""The typed errors of the peer signalling layer.

Every frame a peer sends is untrusted: whatever is wrong with its bytes surfaces as one
`MalformedMessage` (an `UnsupportedVersion` when it is well formed but of a version this
rocd does not speak), never as a msgspec, struct or Unicode error, so the shell can count
and refuse with a single `except`. Misuse of a link by our own code (asking before the
handshake, answering twice) is a `LinkStateError`; a peer breaking the protocol's rules
(a reply before the handshake, a second hello) is a `RemoteProtocolError`.
"""


class SignallingError(Exception):
    """Base class of every error raised by the signalling layer."""


class MalformedMessage(SignallingError, ValueError):
    """The bytes are not a signalling frame this rocd can read."""


class UnsupportedVersion(MalformedMessage):
    """A well-formed frame of a protocol version this rocd does not speak."""


class LinkStateError(SignallingError):
    """Our side asked the link for something its state does not allow."""


class RemoteProtocolError(SignallingError):
    """The other side sent something the protocol does not allow in the link's state."""


class SocketClosed(SignallingError):
    """The ZeroMQ socket's owner task has ended: nothing more goes in or out."""


class SendQueueFull(SignallingError):
    """Too many frames wait to be sent on one socket: the other side does not read."""
