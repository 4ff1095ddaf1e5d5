"""Persistent state: SQLite on disk through the store actor; identity and settings survive."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from rocd.actors import (
    SCHEMA_VERSION,
    DeleteSetting,
    GetIdentity,
    GetPeerInfo,
    GetSetting,
    ListSettings,
    Node,
    PutSetting,
    Registry,
    Rename,
    StateDB,
    StateError,
    Store,
    Supervisor,
)
from rocd.errors import InvalidRequest


def test_identity_is_created_once_and_kept(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    uid = db.identity()
    assert len(uid) == 12
    assert db.identity() == uid
    db.close()
    again = StateDB(tmp_path / "state.db")
    assert again.identity() == uid
    assert again.version == SCHEMA_VERSION
    again.close()


def test_settings_round_trip_json_values(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    db.put("device", "d1", {"volume": 0.5, "mute": False, "name": "Kitchen"})
    db.put("device", "d2", [1, 2])
    db.put("node", "name", "box")
    db.put("device", "d2", {"volume": 1.0})  # replace
    assert db.get("device", "d1") == {"volume": 0.5, "mute": False, "name": "Kitchen"}
    assert db.items("device") == {
        "d1": {"volume": 0.5, "mute": False, "name": "Kitchen"},
        "d2": {"volume": 1.0},
    }
    assert db.delete("device", "d1")
    assert not db.delete("device", "d1")
    assert db.get("device", "d1") is None
    db.close()


def test_a_newer_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateDB(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateError, match="newer than this rocd knows"):
        StateDB(path)


def test_a_corrupt_file_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match=r"state\.db"):
        StateDB(path)


async def test_store_actor_serves_settings_off_the_trio_thread(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            uid = await store.ref.ask(GetIdentity())
            await store.ref.ask(PutSetting("vad", "v1", {"kind": "speaker"}))
            assert await store.ref.ask(GetSetting("vad", "v1")) == {"kind": "speaker"}
            assert await store.ref.ask(ListSettings("vad")) == {"v1": {"kind": "speaker"}}
            assert await store.ref.ask(DeleteSetting("vad", "v1"))
            assert await store.ref.ask(GetSetting("vad", "v1")) is None
            nursery.cancel_scope.cancel()
    db = StateDB(tmp_path / "state.db")
    assert db.identity() == uid
    db.close()


async def test_node_keeps_its_name_and_renames_persist(tmp_path: Path) -> None:
    published: list[tuple[str, str, dict[str, object]]] = []

    async def run_node(name_override: str | None = None) -> tuple[str, str]:
        registry = Registry()
        sup = Supervisor("root", registry=registry)
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            store = Store(tmp_path / "state.db")
            await sup.start_child(store)
            uid = await store.ref.ask(GetIdentity())
            node = Node(
                uid,
                store=store.ref,
                publish=lambda k, s, d: published.append((k, s, d)),
                default_name="host-a",
                name_override=name_override,
            )
            await sup.start_child(node)
            info = await node.ref.ask(GetPeerInfo())
            if info.name == "host-a":
                renamed = await node.ref.ask(Rename("  Living room  "))
                assert renamed.name == "Living room"
                with pytest.raises(InvalidRequest, match="1 to 64"):
                    await node.ref.ask(Rename("   "))
                with pytest.raises(InvalidRequest, match="printable"):
                    await node.ref.ask(Rename("bad\x07name"))
            final = await node.ref.ask(GetPeerInfo())
            nursery.cancel_scope.cancel()
        return final.uid, final.name

    with trio.fail_after(10):
        uid1, name1 = await run_node()
        uid2, name2 = await run_node()
        uid3, name3 = await run_node(name_override="Studio")
        uid4, name4 = await run_node()
    assert name1 == name2 == "Living room"
    assert name3 == name4 == "Studio"  # an explicit --name wins and is kept
    assert uid1 == uid2 == uid3 == uid4
    assert published == [("peer.updated", uid1, {"name": "Living room"})]
