"""A remote instance's mirror: loaded from a snapshot, kept current by its events."""

from __future__ import annotations

import msgspec

from rocd.actors import Device, DeviceConfig, Mirror, PeerInfo, Snapshot, Vad
from rocd.audio import DriverStatus

PEER = PeerInfo("b1", "B", True, "online", "0.1.0", "http://b", 1.0)


def device(volume: float = 1.0, id: str = "tone:sine") -> Device:
    return Device(
        id=id,
        peer="b1",
        driver="tone",
        direction="source",
        name="sine",
        description="sine",
        system_name="sine",
        virtual=False,
        vad=None,
        state="idle",
        clocked=False,
        enabled=True,
        volume=volume,
        mute=False,
        rate=48000,
        channels=2,
        latency_ms=None,
        native_rate=48000,
        native_channels=2,
        config=DeviceConfig(),
    )


def vad(uid: str = "v1", name: str = "Spk") -> Vad:
    return Vad(
        uid=uid,
        peer="b1",
        name=name,
        kind="speaker",
        driver="tone",
        rate=48000,
        channels=2,
        device=None,
        state="ready",
    )


def loaded(seq: int = 10) -> Mirror:
    mirror = Mirror()
    assert not mirror.synced
    drivers = [DriverStatus("tone", True)]
    mirror.load(Snapshot(seq, PEER, drivers, [device()], [vad()]))
    assert mirror.synced
    return mirror


def as_json(value: msgspec.Struct) -> dict[str, object]:
    return msgspec.to_builtins(value)  # type: ignore[no-any-return]


def test_events_after_the_snapshot_update_it() -> None:
    mirror = loaded(seq=10)
    changed = mirror.apply("device.updated", "tone:sine", {"device": as_json(device(0.4))}, 11)
    assert changed
    assert mirror.devices["tone:sine"].volume == 0.4
    mirror.apply("device.added", "tone:noise", {"device": as_json(device(id="tone:noise"))}, 12)
    mirror.apply("device.removed", "tone:sine", {"id": "tone:sine"}, 13)
    assert list(mirror.devices) == ["tone:noise"]
    mirror.apply("vad.created", "v2", {"vad": as_json(vad("v2", "Two"))}, 14)
    mirror.apply("vad.updated", "v1", {"vad": as_json(vad("v1", "Renamed"))}, 15)
    mirror.apply("vad.deleted", "v2", {"uid": "v2"}, 16)
    assert [(v.uid, v.name) for v in mirror.vads.values()] == [("v1", "Renamed")]
    mirror.apply("driver.down", "tone", {"driver": "tone", "reason": "gone"}, 17)
    assert mirror.drivers == [DriverStatus("tone", False, "gone")]
    mirror.apply("peer.updated", "b1", {"name": "Bee"}, 18)
    assert mirror.peer is not None
    assert mirror.peer.name == "Bee"
    assert mirror.applied == 8
    assert mirror.seq == 18


def test_events_older_than_the_snapshot_are_skipped() -> None:
    mirror = loaded(seq=10)
    assert not mirror.apply("device.updated", "tone:sine", {"device": as_json(device(0.1))}, 9)
    assert not mirror.apply("device.updated", "tone:sine", {"device": as_json(device(0.1))}, 10)
    assert mirror.devices["tone:sine"].volume == 1.0


def test_malformed_and_foreign_events_change_nothing() -> None:
    mirror = loaded()
    assert not mirror.apply("device.updated", "tone:sine", {"device": {"id": 5}}, 11)
    assert not mirror.apply("vad.created", "v9", {}, 12)
    assert not mirror.apply("stream.started", "s1", {}, 13)
    assert mirror.devices["tone:sine"] == device()
    assert mirror.seq == 13
