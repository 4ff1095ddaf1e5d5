"""The typed errors of the wire layer.

Every parser in rocd.net.roc takes untrusted bytes; whatever is wrong with them surfaces as a
`MalformedPacket` (never an IndexError, struct.error or numpy exception), so the I/O layer
can count and drop with a single `except`.
"""


class ProtocolError(Exception):
    """Base class of every error raised by the wire layer."""


class MalformedPacket(ProtocolError, ValueError):
    """The bytes do not form a valid packet of the expected kind."""


class FecDecodeError(ProtocolError):
    """A FEC block cannot be decoded: too few symbols arrived, or they are inconsistent."""
