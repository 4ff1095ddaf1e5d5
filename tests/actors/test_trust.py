"""Trust as kept in the state file and in memory; API tokens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rocd.actors import (
    SCHEMA_VERSION,
    CheckToken,
    CreateToken,
    DeleteToken,
    ListTokens,
    PendingInvite,
    StateDB,
    TrustBook,
    TrustedPeer,
    cluster_address,
    split_token,
)
from rocd.actors._trust import (
    DeleteInvite,
    DeleteTrusted,
    ListInvites,
    ListTrusted,
    PutInvite,
    PutTrusted,
)
from rocd.errors import InvalidRequest
from rocd.net.signalling import hash_secret

KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"


def test_a_version_1_state_file_is_migrated_and_keeps_its_settings(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE instance (id INTEGER PRIMARY KEY CHECK (id = 1), uid TEXT NOT NULL, "
        "created REAL NOT NULL);"
        "CREATE TABLE settings (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT "
        "NULL, updated REAL NOT NULL, PRIMARY KEY (namespace, key));"
        "INSERT INTO instance VALUES (1, 'abcdef012345', 0);"
        "INSERT INTO settings VALUES ('node', 'name', '\"Attic\"', 0);"
        "PRAGMA user_version = 1;"
    )
    db.close()
    state = StateDB(path)
    assert state.version == SCHEMA_VERSION == 2
    assert state.identity() == "abcdef012345"
    assert state.get("node", "name") == "Attic"
    assert ListTrusted().apply(state) == []
    state.close()


def test_trusted_peers_and_invites_persist(tmp_path: Path) -> None:
    state = StateDB(tmp_path / "state.db")
    peer = TrustedPeer(key=KEY, role="viewer", address="tcp://h:1", uid="u1", added=5.0)
    PutTrusted(peer).apply(state)
    PutTrusted(TrustedPeer(key=KEY, role="admin", address="tcp://h:2", added=5.0)).apply(state)
    invite = PendingInvite(id="i1", secret_hash="h1", role="operator", created=1.0, expires=100.0)
    PutInvite(invite).apply(state)
    state.close()
    state = StateDB(tmp_path / "state.db")
    [again] = ListTrusted().apply(state)
    assert (again.role, again.address, again.uid) == ("admin", "tcp://h:2", "")
    assert ListInvites(now=50.0).apply(state) == [invite]
    assert ListInvites(now=100.0).apply(state) == []  # expired: gone
    assert not DeleteInvite("i1").apply(state)
    assert DeleteTrusted(KEY).apply(state)
    assert not DeleteTrusted(KEY).apply(state)
    state.close()


def test_the_trust_book_counts_refusals_and_announces_them_sparingly() -> None:
    book = TrustBook()
    first = book.refuse("k1", "10.0.0.5", "unknown key", now=100.0)
    assert first is not None
    assert first.count == 1
    assert book.refuse("k1", "10.0.0.6", "unknown key", now=130.0) is None  # within 60 s
    again = book.refuse("k1", "10.0.0.6", "unknown key", now=161.0)
    assert again is not None
    assert (again.count, again.address, again.first_seen) == (3, "10.0.0.6", 100.0)
    for i in range(TrustBook.MAX_REFUSED + 5):
        book.refuse(f"x{i}", "1.2.3.4", "unknown key", now=200.0)
    assert len(book.refused) == TrustBook.MAX_REFUSED
    assert "k1" not in book.refused  # the oldest went first


def test_an_invite_is_used_once_and_not_after_it_expires() -> None:
    book = TrustBook()
    assert not book.invites_open(0.0)
    for secret, expires in (("s1", 100.0), ("s2", 10.0)):
        invite = PendingInvite(
            id=secret, secret_hash=hash_secret(secret), role="viewer", created=0, expires=expires
        )
        book.invites[invite.secret_hash] = invite
    assert book.invites_open(50.0)
    assert book.take_invite("s2", 50.0) is None  # expired
    assert book.take_invite("nope", 50.0) is None
    taken = book.take_invite("s1", 50.0)
    assert taken is not None
    assert taken.id == "s1"
    assert book.take_invite("s1", 50.0) is None  # once
    assert not book.invites_open(50.0)


def test_tokens_are_kept_hashed_and_checked(tmp_path: Path) -> None:
    state = StateDB(tmp_path / "state.db")
    made = CreateToken("operator", "mixer").apply(state)
    assert split_token(made.token) == (made.id, made.token.split("_", 2)[2])
    rows = state.query("SELECT hash FROM api_tokens")
    assert made.token.split("_", 2)[2] not in str(rows)  # only the hash is stored
    checked = CheckToken(made.token).apply(state)
    assert checked is not None
    assert (checked.id, checked.role, checked.name) == (made.id, "operator", "mixer")
    assert CheckToken(made.token + "x").apply(state) is None
    assert CheckToken(f"rocd_{made.id}_wrong").apply(state) is None
    assert CheckToken("garbage").apply(state) is None
    assert [t.id for t in ListTokens().apply(state)] == [made.id]
    assert DeleteToken(made.id).apply(state)
    assert CheckToken(made.token).apply(state) is None
    state.close()


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("10.0.0.2:4611", "tcp://10.0.0.2:4611"),
        ("tcp://host.lan:4611", "tcp://host.lan:4611"),
        (" tcp://[::1]:4611 ", "tcp://[::1]:4611"),
    ],
)
def test_peer_addresses(text: str, address: str) -> None:
    assert cluster_address(text) == address


@pytest.mark.parametrize("text", ["", "host", "host:", ":4611", "host:0", "host:99999", "a/b:1"])
def test_bad_peer_addresses(text: str) -> None:
    with pytest.raises(InvalidRequest, match="expected tcp://HOST:PORT"):
        cluster_address(text)
