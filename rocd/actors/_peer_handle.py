"""Reaching an actor on any instance of the cluster by (peer, kind, uid).

The API layer and the stream coordinator never ask "is this peer me?": they get a
`PeerHandle` from `Peers` and ask it. The local handle asks the actor in this instance's
registry; a remote handle (a peer actor's) forwards the request over the signalling link,
where the remote instance checks the role its key was given, or answers reads from its
mirror of the remote's state. Either way the caller sees the same replies and the same
`RocdError`s, so code written against a local peer works against a remote one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from rocd.errors import NotFound

from ._actor import DEFAULT_ASK_TIMEOUT, Request
from ._registry import Registry

R = TypeVar("R")

#: The alias a client may use for the local instance wherever a peer uid is expected.
SELF = "self"


class PeerHandle(Protocol):
    """One instance of the cluster, as seen from here."""

    @property
    def uid(self) -> str: ...

    @property
    def local(self) -> bool:
        """True for this instance itself."""
        ...

    async def ask(
        self, kind: str, uid: str, request: Request[R], *, within: float = DEFAULT_ASK_TIMEOUT
    ) -> R:
        """Ask actor (kind, uid) on this peer; NotFound when it has none such.

        On cancellation the request may still be handled there; its reply is dropped.
        """
        ...


class LocalPeer:
    """This instance: asks go straight to the registry's actors."""

    def __init__(self, uid: str, registry: Registry) -> None:
        self._uid = uid
        self.registry = registry

    @property
    def uid(self) -> str:
        return self._uid

    @property
    def local(self) -> bool:
        return True

    async def ask(
        self, kind: str, uid: str, request: Request[R], *, within: float = DEFAULT_ASK_TIMEOUT
    ) -> R:
        return await self.registry.lookup(kind, uid).ask(request, within=within)


class Peers:
    """The directory of peer handles: this instance, plus the remotes the cluster adds."""

    def __init__(self, local: LocalPeer) -> None:
        self.local = local
        self._remote: dict[str, PeerHandle] = {}
        #: Finds an instance known only through a peer (set by the cluster).
        self.indirect: Callable[[str], PeerHandle | None] | None = None
        #: The uids of the instances known only through a peer (set by the cluster).
        self.listed: Callable[[], list[str]] | None = None

    def get(self, uid: str) -> PeerHandle:
        """The handle a path or a stream end names (`self` = this instance), or NotFound."""
        if uid in (SELF, self.local.uid):
            return self.local
        handle = self._remote.get(uid)
        if handle is None and self.indirect is not None:
            handle = self.indirect(uid)
        if handle is None:
            raise NotFound(f"no peer with uid {uid!r}", details=[{"in": "path", "field": "peer"}])
        return handle

    def resolve(self, uid: str) -> str:
        """The real uid a name stands for (`self` -> this instance's uid)."""
        return self.get(uid).uid

    def add(self, handle: PeerHandle) -> None:
        if handle.uid == self.local.uid:
            raise ValueError("the local instance is not a remote peer")
        self._remote[handle.uid] = handle

    def remove(self, uid: str) -> None:
        self._remote.pop(uid, None)

    def remotes(self) -> list[PeerHandle]:
        return list(self._remote.values())

    def all(self) -> list[PeerHandle]:
        """This instance first, then the remotes in the order they were added."""
        return [self.local, *self._remote.values()]

    def cluster(self) -> list[PeerHandle]:
        """Every instance of the cluster reachable from here: `all`, then those known
        only through a peer."""
        out = self.all()
        if self.listed is not None and self.indirect is not None:
            known = {h.uid for h in out}
            for uid in self.listed():
                handle = self.indirect(uid) if uid not in known else None
                if handle is not None:
                    known.add(uid)
                    out.append(handle)
        return out
