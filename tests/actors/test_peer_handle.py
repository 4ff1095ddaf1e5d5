"""The peer directory: `self` and the local uid reach this instance's actors; others 404."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import trio

from rocd.actors import Actor, LocalPeer, Peers, Registry, Request, Supervisor
from rocd.errors import NotFound


class Echo(Request[str], frozen=True):
    text: str


class Parrot(Actor):
    kind = "parrot"

    async def handle(self, msg: Any) -> Any:
        assert isinstance(msg, Echo)
        return f"{self.uid}: {msg.text}"


class FakeRemote(msgspec.Struct):
    """A stand-in remote handle (the real one is the cluster's peer actor)."""

    uid: str
    local: bool = False

    async def ask(self, kind: str, uid: str, request: Request[Any], *, within: float = 5.0) -> Any:
        return f"remote {self.uid} {kind}/{uid}"


async def test_local_peer_asks_registered_actors() -> None:
    registry = Registry()
    root = Supervisor("root", registry=registry)
    peers = Peers(LocalPeer("a1", registry))
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        await root.start_child(Parrot("polly"))
        for name in ("self", "a1"):
            handle = peers.get(name)
            assert handle.local
            assert handle.uid == "a1"
            assert await handle.ask("parrot", "polly", Echo("hi")) == "polly: hi"
        with pytest.raises(NotFound, match="no parrot with uid 'nobody'"):
            await peers.local.ask("parrot", "nobody", Echo("hi"))
        nursery.cancel_scope.cancel()


def test_directory_adds_and_removes_remotes() -> None:
    peers = Peers(LocalPeer("a1", Registry()))
    with pytest.raises(NotFound, match="no peer with uid 'b2'") as info:
        peers.get("b2")
    assert info.value.details == [{"in": "path", "field": "peer"}]
    remote = FakeRemote("b2")
    peers.add(remote)
    assert peers.get("b2") is remote
    assert peers.resolve("self") == "a1"
    assert [p.uid for p in peers.all()] == ["a1", "b2"]
    with pytest.raises(ValueError, match="not a remote"):
        peers.add(FakeRemote("a1"))
    peers.remove("b2")
    assert peers.remotes() == []
