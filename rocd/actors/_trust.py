"""The cluster's trust, as kept in the state file: peer keys with their roles, and the
one-time invites not used yet.

A trusted peer is a public key with a role (what that peer may do here) and, when this
instance dials it, an address. Its uid and name are learnt at the handshake. While this
instance joins another through an invite, the invite's secret is kept with the inviter's
key until the inviter has welcomed us. An invite keeps only a hash of its secret.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import msgspec

from rocd.net.signalling import hash_secret

from ._statedb import StateDB
from ._store import StoreQuery


class TrustedPeer(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # public key, Z85
    role: str  # what that peer may do here: viewer | operator | admin
    address: str = ""  # where this instance dials it (tcp://host:port); "" = it dials us
    uid: str = ""  # learnt at the handshake
    name: str = ""
    join: str = ""  # the invite secret to show it, while joining through its invite
    source: str = "api"  # api | invite | config (config peers are not stored)
    added: float = 0.0  # Unix time


class PendingInvite(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    secret_hash: str
    role: str  # the role each side gives the other
    created: float  # Unix time
    expires: float  # Unix time


_PEER_COLUMNS = "key, role, address, uid, name, join_secret, source, added"


class ListTrusted(StoreQuery[list[TrustedPeer]], frozen=True):
    def apply(self, db: StateDB) -> list[TrustedPeer]:
        rows = db.query(f"SELECT {_PEER_COLUMNS} FROM trusted_peers ORDER BY added, key")
        return [
            TrustedPeer(key=k, role=r, address=a, uid=u, name=n, join=j, source=s, added=t)
            for k, r, a, u, n, j, s, t in rows
        ]


class PutTrusted(StoreQuery[None], frozen=True):
    peer: TrustedPeer

    def apply(self, db: StateDB) -> None:
        p = self.peer
        db.execute(
            f"INSERT OR REPLACE INTO trusted_peers ({_PEER_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
            (p.key, p.role, p.address, p.uid, p.name, p.join, p.source, p.added),
        )


class DeleteTrusted(StoreQuery[bool], frozen=True):
    key: str

    def apply(self, db: StateDB) -> bool:
        return db.execute("DELETE FROM trusted_peers WHERE key = ?", (self.key,)) > 0


class PutInvite(StoreQuery[None], frozen=True):
    invite: PendingInvite

    def apply(self, db: StateDB) -> None:
        i = self.invite
        db.execute(
            "INSERT INTO invites (id, secret_hash, role, created, expires) VALUES (?,?,?,?,?)",
            (i.id, i.secret_hash, i.role, i.created, i.expires),
        )


class ListInvites(StoreQuery[list[PendingInvite]], frozen=True):
    """The invites not used yet; expired ones are deleted on the way."""

    now: float  # Unix time

    def apply(self, db: StateDB) -> list[PendingInvite]:
        db.execute("DELETE FROM invites WHERE expires <= ?", (self.now,))
        rows = db.query("SELECT id, secret_hash, role, created, expires FROM invites")
        return [
            PendingInvite(id=i, secret_hash=h, role=r, created=c, expires=e)
            for i, h, r, c, e in rows
        ]


class DeleteInvite(StoreQuery[bool], frozen=True):
    id: str

    def apply(self, db: StateDB) -> bool:
        return db.execute("DELETE FROM invites WHERE id = ?", (self.id,)) > 0


@dataclass
class RefusedPeer:
    """A key this instance turned away, and how often."""

    key: str
    address: str  # the IP address it came from, last time
    reason: str
    count: int = 0
    first_seen: float = 0.0  # Unix time
    last_seen: float = 0.0  # Unix time
    announced: float = -1e18  # Unix time of the last peer.refused event about it


class TrustBook:
    """The trust of the running instance, in memory (the store keeps it across runs):
    trusted keys, the invites not used yet, and the keys refused lately (capped)."""

    #: Refused keys remembered (the oldest is forgotten first).
    MAX_REFUSED = 64
    #: Seconds between two peer.refused events about the same key.
    ANNOUNCE_EVERY = 60.0

    def __init__(self) -> None:
        self.peers: dict[str, TrustedPeer] = {}
        self.invites: dict[str, PendingInvite] = {}  # by secret hash
        self.refused: OrderedDict[str, RefusedPeer] = OrderedDict()

    def trusted(self, key: str) -> TrustedPeer | None:
        return self.peers.get(key)

    def invites_open(self, now: float) -> bool:
        """True while an invite may still be used (unknown keys may then say hello)."""
        return any(invite.expires > now for invite in self.invites.values())

    def take_invite(self, secret: str, now: float) -> PendingInvite | None:
        """The invite `secret` belongs to, used up now; None if unknown or expired."""
        invite = self.invites.pop(hash_secret(secret), None)
        if invite is None or invite.expires <= now:
            return None
        return invite

    def refuse(self, key: str, address: str, reason: str, now: float) -> RefusedPeer | None:
        """Count a refusal; the entry when it is worth a peer.refused event (the first
        time, then at most every ANNOUNCE_EVERY seconds), else None."""
        entry = self.refused.pop(key, None)
        if entry is None:
            entry = RefusedPeer(key, address, reason, first_seen=now)
        entry.count += 1
        entry.address, entry.reason, entry.last_seen = address, reason, now
        self.refused[key] = entry
        while len(self.refused) > self.MAX_REFUSED:
            self.refused.popitem(last=False)
        if now - entry.announced < self.ANNOUNCE_EVERY:
            return None
        entry.announced = now
        return entry
