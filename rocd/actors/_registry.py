"""Where actors are found by kind and uid.

Supervisors register a child when they adopt it and remove it when it is gone for good,
so a lookup never returns a ref to an actor that will not answer (asks to a ref kept from
before still fail fast with `ActorGone`).
"""

from __future__ import annotations

from rocd.errors import Conflict, NotFound

from ._actor import ActorRef


class Registry:
    """Actor refs by (kind, uid); plain synchronous lookups, shared by the whole daemon."""

    def __init__(self) -> None:
        self._refs: dict[tuple[str, str], ActorRef] = {}

    def __len__(self) -> int:
        return len(self._refs)

    def register(self, ref: ActorRef) -> None:
        key = (ref.kind, ref.uid)
        known = self._refs.get(key)
        if known is not None and known is not ref:
            raise Conflict(f"a {ref.kind} with uid {ref.uid!r} already exists")
        self._refs[key] = ref

    def unregister(self, ref: ActorRef) -> None:
        if self._refs.get((ref.kind, ref.uid)) is ref:
            del self._refs[(ref.kind, ref.uid)]

    def find(self, kind: str, uid: str) -> ActorRef | None:
        return self._refs.get((kind, uid))

    def lookup(self, kind: str, uid: str) -> ActorRef:
        """The ref of (kind, uid), or NotFound naming what was looked for."""
        ref = self._refs.get((kind, uid))
        if ref is None:
            raise NotFound(f"no {kind} with uid {uid!r}")
        return ref

    def of_kind(self, kind: str) -> list[ActorRef]:
        return [ref for (k, _), ref in self._refs.items() if k == kind]

    def kinds(self) -> dict[str, int]:
        """How many actors of each kind are registered (for /health)."""
        counts: dict[str, int] = {}
        for kind, _ in self._refs:
            counts[kind] = counts.get(kind, 0) + 1
        return counts
