"""Hypothesis strategies for every signalling message (fields within their types)."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import strategies as st

from rocd.net.signalling import (
    ActorAddress,
    Ask,
    Bye,
    Error,
    Event,
    Heartbeat,
    HeartbeatAck,
    Hello,
    Message,
    Reply,
    Subscribe,
    Welcome,
    encode_value,
)

text = st.text(max_size=16)
ints = st.integers(0, 2**53)
floats = st.floats(allow_nan=False, allow_infinity=False)
json_leaf: st.SearchStrategy[Any] = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
json_leaf = json_leaf | floats | text
json_values = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
bodies = json_values.map(encode_value)
addresses = st.builds(ActorAddress, kind=text, uid=text)
details = st.lists(st.dictionaries(text, json_values, max_size=2), max_size=2)

hellos = st.builds(
    Hello,
    uid=text,
    name=text,
    minor=ints,
    software=text,
    capabilities=st.lists(text, max_size=3),
    address=text,
    api=text,
    started=floats,
    join=text,
)
welcomes = st.builds(
    Welcome,
    uid=text,
    name=text,
    minor=ints,
    software=text,
    role=text,
    capabilities=st.lists(text, max_size=3),
    address=text,
    api=text,
    started=floats,
)
messages: st.SearchStrategy[Message] = st.one_of(
    hellos,
    welcomes,
    st.builds(Heartbeat, seq=ints),
    st.builds(HeartbeatAck, seq=ints),
    st.builds(Ask, id=ints, actor=addresses, request=text, body=bodies, timeout_ms=ints),
    st.builds(Reply, id=ints, body=bodies),
    st.builds(
        Error,
        id=ints,
        code=text,
        message=text,
        details=details,
        actor=st.none() | addresses,
    ),
    st.builds(
        Event,
        n=ints,
        seq=ints,
        time=floats,
        kind=text,
        peer=text,
        subject=text,
        data=st.dictionaries(text, json_values, max_size=3),
    ),
    st.builds(Subscribe, kinds=st.lists(text, max_size=3), active=st.booleans()),
    st.builds(Bye, reason=text, code=text),
)


def same(a: Message, b: Message) -> bool:
    """Equal messages (Raw bodies have no equality: compare the encodings)."""
    return msgspec.msgpack.encode(a) == msgspec.msgpack.encode(b)
