"""HTTP API tokens: made once (the token is shown then, never again), kept hashed.

A token reads `rocd_<id>_<secret>`: the id finds the row, the secret is checked against
its SHA-256 (it is random, 32 bytes: a slow hash would add nothing). The same queries
serve the daemon (through the store actor) and `rocd token` (on the state file directly).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import msgspec

from ._statedb import StateDB
from ._store import StoreQuery

TOKEN_PREFIX = "rocd_"
_ID_CHARS = 8


class ApiToken(msgspec.Struct, frozen=True, kw_only=True):
    """A token as listed: never its secret."""

    id: str
    name: str
    role: str
    created: float  # Unix time


class NewToken(msgspec.Struct, frozen=True, kw_only=True):
    """A token just made: `token` is shown this once."""

    id: str
    name: str
    role: str
    created: float
    token: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    rest = token[len(TOKEN_PREFIX) :]
    token_id, sep, secret = rest[:_ID_CHARS], rest[_ID_CHARS : _ID_CHARS + 1], rest[9:]
    if sep != "_" or len(token_id) != _ID_CHARS or not secret or len(secret) > 128:
        return None
    return token_id, secret


class CreateToken(StoreQuery[NewToken], frozen=True):
    role: str
    name: str = ""

    def apply(self, db: StateDB) -> NewToken:
        token_id = secrets.token_hex(_ID_CHARS // 2)
        secret = secrets.token_urlsafe(32)
        created = time.time()
        db.execute(
            "INSERT INTO api_tokens (id, name, role, hash, created) VALUES (?,?,?,?,?)",
            (token_id, self.name, self.role, _hash(secret), created),
        )
        token = f"{TOKEN_PREFIX}{token_id}_{secret}"
        return NewToken(id=token_id, name=self.name, role=self.role, created=created, token=token)


class ListTokens(StoreQuery[list[ApiToken]], frozen=True):
    def apply(self, db: StateDB) -> list[ApiToken]:
        rows = db.query("SELECT id, name, role, created FROM api_tokens ORDER BY created")
        return [ApiToken(id=i, name=n, role=r, created=c) for i, n, r, c in rows]


class DeleteToken(StoreQuery[bool], frozen=True):
    id: str

    def apply(self, db: StateDB) -> bool:
        return db.execute("DELETE FROM api_tokens WHERE id = ?", (self.id,)) > 0


class CheckToken(StoreQuery["ApiToken | None"], frozen=True):
    """The token's entry if `token` is one of ours, else None."""

    token: str

    def apply(self, db: StateDB) -> ApiToken | None:
        parts = split_token(self.token)
        if parts is None:
            return None
        token_id, secret = parts
        rows = db.query(
            "SELECT id, name, role, hash, created FROM api_tokens WHERE id = ?", (token_id,)
        )
        if not rows:
            return None
        i, n, r, h, c = rows[0]
        if not hmac.compare_digest(str(h), _hash(secret)):
            return None
        return ApiToken(id=i, name=n, role=r, created=c)
