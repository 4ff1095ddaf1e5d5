"""The instance's persistent state: one SQLite file, versioned schema, plain blocking calls.

Only the store actor uses this, always from a worker thread (`trio.to_thread`), one call at
a time: the connection is opened with check_same_thread=False for that reason. WAL mode
with synchronous=NORMAL keeps every committed write across a crash of the daemon (kill -9);
only a power loss may lose the last transactions.

Settings are JSON values under (namespace, key): "node" for the instance, later "device",
"vad", "stream"... so new kinds of state need no schema change. The schema version lives
in `PRAGMA user_version`; MIGRATIONS[i] takes version i to i + 1, in one transaction.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: identity and settings.
    """
    CREATE TABLE instance (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        uid TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE settings (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (namespace, key)
    );
    """,
    # 1 -> 2: the cluster's trust (peer keys and their roles, pending invites) and the
    # HTTP API's tokens (hashed).
    """
    CREATE TABLE trusted_peers (
        key TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        address TEXT NOT NULL DEFAULT '',
        uid TEXT NOT NULL DEFAULT '',
        name TEXT NOT NULL DEFAULT '',
        join_secret TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT 'api',
        added REAL NOT NULL
    );
    CREATE TABLE invites (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        created REAL NOT NULL,
        expires REAL NOT NULL
    );
    CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        hash TEXT NOT NULL,
        created REAL NOT NULL
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


class StateError(Exception):
    """The state file cannot be used (newer schema, corrupt, unwritable)."""


class StateDB:
    """Blocking access to the state file; see the module docstring for the threading rule."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=2000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    @property
    def version(self) -> int:
        row = self._db.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def _migrate(self) -> None:
        current = self.version
        if current > SCHEMA_VERSION:
            raise StateError(
                f"{self.path}: schema version {current} is newer than this rocd knows "
                f"({SCHEMA_VERSION}); upgrade rocd or use another --state-dir"
            )
        for version in range(current, SCHEMA_VERSION):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {version + 1}")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement (its own transaction); the number of rows it changed."""
        return int(self._db.execute(sql, params).rowcount)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._db.execute(sql, params).fetchall())

    def identity(self) -> str:
        """The instance uid, created (random, stable) on first use."""
        row = self._db.execute("SELECT uid FROM instance WHERE id = 1").fetchone()
        if row is not None:
            return str(row[0])
        uid = uuid.uuid4().hex[:12]
        self._db.execute(
            "INSERT INTO instance (id, uid, created) VALUES (1, ?, ?)", (uid, time.time())
        )
        return uid

    def get(self, namespace: str, key: str) -> Any | None:
        row = self._db.execute(
            "SELECT value FROM settings WHERE namespace = ? AND key = ?", (namespace, key)
        ).fetchone()
        return None if row is None else msgspec.json.decode(row[0])

    def put(self, namespace: str, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO settings (namespace, key, value, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, "
            "updated = excluded.updated",
            (namespace, key, msgspec.json.encode(value).decode(), time.time()),
        )

    def delete(self, namespace: str, key: str) -> bool:
        cur = self._db.execute(
            "DELETE FROM settings WHERE namespace = ? AND key = ?", (namespace, key)
        )
        return cur.rowcount > 0

    def items(self, namespace: str) -> dict[str, Any]:
        rows = self._db.execute(
            "SELECT key, value FROM settings WHERE namespace = ? ORDER BY key", (namespace,)
        ).fetchall()
        return {str(k): msgspec.json.decode(v) for k, v in rows}
