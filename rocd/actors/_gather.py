"""Asking many actors at once."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TypeVar

import trio

from rocd.errors import ActorGone, NotFound, RocdError

from ._actor import ActorRef, Request

R = TypeVar("R")


async def ask_each(refs: Sequence[ActorRef], msg: Request[R]) -> list[R]:
    """Ask every actor at once; the replies in the order of `refs`, leaving out the
    actors that stopped meanwhile. Any other refusal (a RocdError: busy, timeout...) is
    raised as itself once every ask has ended (the first one, in the order of `refs`)."""
    results: dict[int, R] = {}
    errors: dict[int, RocdError] = {}

    async def one(i: int, ref: ActorRef) -> None:
        try:
            with contextlib.suppress(ActorGone, NotFound):
                results[i] = await ref.ask(msg)
        except RocdError as exc:
            errors[i] = exc

    async with trio.open_nursery() as nursery:
        for i, ref in enumerate(refs):
            nursery.start_soon(one, i, ref)
    if errors:
        raise errors[min(errors)]
    return [results[i] for i in sorted(results)]
