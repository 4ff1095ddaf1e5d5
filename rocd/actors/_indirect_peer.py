"""An instance known only through a trusted peer: listed, and reached through that peer.

Instance X trusts P, P trusts T, X does not trust T. X lists T (from its mirror of P's
peer list) with `via` = P and the state P sees, and `/peers/T/...` on X works: every
request is sent to P as a `Forward`, which P makes on T as itself. Nothing is trusted
on the way, and no role grows: P checks that X's key may make that request on P (its
role there), and T checks that P's key may make it on T. So X reaches T only as far as
P's operators already could, through P's own API. One hop only: P forwards only to
instances it links to itself, never to another indirect one.
"""

from __future__ import annotations

from typing import TypeVar, cast

import msgspec

from rocd.net.signalling import decode_value, encode_value

from ._actor import DEFAULT_ASK_TIMEOUT, Request
from ._node import GetPeerInfo, PeerInfo
from ._relay_types import Forward
from ._remote_peer import RemotePeer
from ._wire import WIRE

R = TypeVar("R")


class IndirectPeer:
    """A `PeerHandle` for an instance reached through trusted peer `via`."""

    def __init__(self, info: PeerInfo, via: RemotePeer) -> None:
        self.info = info
        self._via = via

    @staticmethod
    def listed(entry: PeerInfo, via: str) -> PeerInfo:
        """How this instance lists an entry of its peer `via`'s list: not trusted here."""
        return msgspec.structs.replace(
            entry, via=via, role=None, rtt_ms=None, route=None, relay="", observed=""
        )

    @property
    def uid(self) -> str:
        return self.info.uid

    @property
    def via(self) -> str:
        return self._via.uid

    @property
    def local(self) -> bool:
        return False

    async def ask(
        self, kind: str, uid: str, request: Request[R], *, within: float = DEFAULT_ASK_TIMEOUT
    ) -> R:
        """Ask actor (kind, uid) of the instance, through `via` (see the module docstring)."""
        if isinstance(request, GetPeerInfo):
            return cast(R, self.info)
        entry = WIRE.of(request)
        forward = Forward(self.uid, kind, uid, entry.name, encode_value(request), within * 0.9)
        body = await self._via.forward("cluster", self._via.uid, forward, within=within)
        return cast(R, decode_value(body, entry.reply))
