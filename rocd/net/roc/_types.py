"""Type aliases shared by the wire-layer codecs."""

#: What the parsers accept: a datagram as received (bytes) or a view into a receive buffer.
Buffer = bytes | bytearray | memoryview
