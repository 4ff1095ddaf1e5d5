"""Untrusted bytes into the frame decoder and into links in every state: only
MalformedMessage or RemoteProtocolError may escape, and a link stays consistent."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rocd.net.signalling import (
    LinkState,
    MalformedMessage,
    Message,
    RemoteProtocolError,
    decode,
    encode,
)
from tests.net.test_fuzz import _HEALTH, FUZZ, mutations
from tests.signalling.strategies import messages, same
from tests.signalling.test_link import opened, pair

pytestmark = pytest.mark.fuzz

# The wire layer's fuzzing settings and mutations, for the signalling frames.
FUZZ_SEEDS = settings(max_examples=300, deadline=None, suppress_health_check=_HEALTH)
MUTATIONS = 60
rngs = st.randoms(use_true_random=True)


def check_decode(data: bytes) -> None:
    try:
        frame = decode(data)
    except MalformedMessage:
        return
    # Whatever decodes re-encodes to a frame that decodes the same.
    again = decode(encode(frame.msg, src=frame.src, dst=frame.dst, minor=frame.v[1]))
    assert same(again.msg, frame.msg)


def feed_every_state(data: bytes) -> None:
    """Feed `data` to a new listener, a greeting dialler and both ends of an open link."""
    new_listener = pair()[1]
    greeting = pair()[0]
    greeting.hello(0.0)
    greeting.outbox()
    dialler, listener = opened()
    for link in (new_listener, greeting, dialler, listener):
        before = link.state
        with contextlib.suppress(MalformedMessage, RemoteProtocolError):
            link.receive(data, 1.0)
        link.tick(1.5)
        # Whatever happened, the link is in a state and its queues drain.
        assert link.state in LinkState
        link.outbox()
        link.events()
        if before is LinkState.CLOSED:
            assert link.state is LinkState.CLOSED


@given(data=st.binary(max_size=256))
@FUZZ
def test_random_bytes(data: bytes) -> None:
    check_decode(data)
    feed_every_state(data)


@given(msg=messages, rng=rngs)
@FUZZ_SEEDS
def test_mutated_frames(msg: Message, rng: random.Random) -> None:
    valid = encode(msg, src="aaaa", dst="bbbb")
    feed_every_state(valid)
    for data in mutations(valid, rng, MUTATIONS):
        check_decode(data)
        feed_every_state(data)
