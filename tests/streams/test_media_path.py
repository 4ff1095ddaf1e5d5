"""Which path a stream's audio takes: each instance's view of the others (`media_path`),
and a sender's choice on a NAT path between a punched direct path and a hub."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import pytest

from rocd.actors import LocalPeer, Peers, Registry, Request
from rocd.actors._stream_media import PathChooser, media_path, offline_reason
from rocd.net.roc import Interface

R = TypeVar("R")

DIRECT = {Interface.SOURCE: ("203.0.113.9", 50001), Interface.CONTROL: ("203.0.113.9", 50003)}
HUB = {Interface.SOURCE: ("198.51.100.1", 41000), Interface.CONTROL: ("198.51.100.1", 41002)}


@dataclass
class Welcome:
    capabilities: tuple[str, ...] = ()


@dataclass
class Remote:
    """The parts of a peer actor's `RemotePeer` that `media_path` reads."""

    uid: str
    route: tuple[str | None, str] = ("direct", "")
    media_host: str | None = "10.0.0.2"
    online: bool = True
    reason: str = ""
    welcome: Welcome = field(default_factory=Welcome)

    @property
    def local(self) -> bool:
        return False

    async def ask(self, kind: str, uid: str, request: Request[R], *, within: float = 5.0) -> R:
        raise AssertionError("not asked")


def peers(*remotes: Remote) -> Peers:
    directory = Peers(LocalPeer("me", Registry()))
    for remote in remotes:
        directory.add(remote)
    return directory


def test_each_instance_says_how_it_reaches_another() -> None:
    hub = Remote("hub", welcome=Welcome(("rendezvous", "hub")), media_host="192.0.2.1")
    nat = Remote("behind", route=("reverse", ""))
    relayed = Remote("far", route=("relay", "hub"))
    down = Remote("down", online=False, reason="silent for 3.0 s")
    directory = peers(Remote("lan"), hub, nat, relayed, down)
    assert media_path(directory, "self").host == "127.0.0.1"
    lan = media_path(directory, "lan")
    assert (lan.route, lan.host, lan.hubs) == ("direct", "10.0.0.2", ["hub"])
    # Reached back over its own connection, or through a relay: no host to send to.
    assert (media_path(directory, "behind").route, media_path(directory, "behind").host) == (
        "reverse",
        "",
    )
    assert media_path(directory, "far").route == "relay"
    assert media_path(directory, "down").route == "offline"
    assert media_path(directory, "nobody").route == "unknown"
    # A hub here comes first.
    assert media_path(directory, "lan", hub_here=True).hubs == ["me", "hub"]
    assert offline_reason(directory, "down") == "peer down is offline: silent for 3.0 s"
    assert offline_reason(directory, "lan") == ""
    assert offline_reason(directory, "me") == ""


def test_a_punch_opens_the_direct_path_and_reports_keep_it() -> None:
    chooser = PathChooser(None, HUB, now=0.0, wait=1.5)
    assert (chooser.path, chooser.targets) == ("waiting", {})
    assert chooser.punched(Interface.SOURCE, ("203.0.113.9", 50001), now=0.1)
    assert not chooser.punched(Interface.SOURCE, ("203.0.113.9", 50001), now=0.1)
    chooser.settle(True, now=0.2)
    assert chooser.path == "punched"
    assert chooser.targets == {Interface.SOURCE: ("203.0.113.9", 50001)}
    assert not chooser.tick(reports=1, now=0.5)  # a report: the path works
    assert not chooser.tick(reports=1, now=10.0)
    assert chooser.path == "punched"


def test_no_punch_means_the_hub() -> None:
    chooser = PathChooser(DIRECT, HUB, now=0.0)
    chooser.settle(False, now=0.0)
    assert (chooser.path, chooser.targets) == ("hub", HUB)
    # Once on the hub it stays there, punches or not.
    assert not chooser.punched(Interface.SOURCE, ("203.0.113.9", 1), now=1.0)
    assert chooser.targets == HUB


@pytest.mark.parametrize("hub", [HUB, None])
def test_a_direct_path_without_reports_falls_back_to_the_hub(
    hub: dict[Interface, tuple[str, int]] | None,
) -> None:
    chooser = PathChooser(DIRECT, hub, now=0.0, wait=1.5)
    chooser.settle(True, now=0.0)
    assert not chooser.tick(reports=0, now=1.4)
    moved = chooser.tick(reports=0, now=1.5)
    if hub is None:  # nowhere to go: it keeps trying the direct path
        assert not moved
        assert chooser.targets == DIRECT
    else:
        assert moved
        assert chooser.targets == HUB
