"""What this instance knows of another instance's state: its mirror.

A peer actor loads the mirror in full from a `Snapshot` each time its link opens (and
again whenever events were lost), then keeps it current with the remote's events, so
reads about a remote instance are answered here, without a round trip, and still
answered (marked stale) while it is offline.

Events carry whole objects (`device.updated` holds the device as it is now), so applying
them in order always ends on the latest state; those older than the snapshot (by the
remote bus's sequence number) are skipped so a reload never steps back in time.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from rocd.audio import DriverStatus

from ._actor import Request
from ._audio_types import Device, Vad
from ._node import PeerInfo

log = logging.getLogger("rocd.cluster")


class Snapshot(msgspec.Struct, frozen=True):
    """An instance's state in one message."""

    seq: int  # number of the last event its bus had published when the snapshot began
    peer: PeerInfo
    drivers: list[DriverStatus]
    devices: list[Device]
    vads: list[Vad]


class GetSnapshot(Request[Snapshot], frozen=True):
    """Asked of a remote instance's cluster actor when a link opens."""


class Mirror:
    """The last known state of one remote instance; see the module docstring."""

    def __init__(self) -> None:
        self.peer: PeerInfo | None = None
        self.drivers: list[DriverStatus] = []
        self.devices: dict[str, Device] = {}
        self.vads: dict[str, Vad] = {}
        self.seq = 0  # the remote bus's number of the newest event reflected here
        self.loads = 0  # snapshots loaded so far
        self.applied = 0  # events applied so far

    @property
    def synced(self) -> bool:
        """True once a snapshot has been loaded."""
        return self.loads > 0

    def load(self, snapshot: Snapshot) -> None:
        self.peer = snapshot.peer
        self.drivers = list(snapshot.drivers)
        self.devices = {d.id: d for d in snapshot.devices}
        self.vads = {v.uid: v for v in snapshot.vads}
        self.seq = snapshot.seq
        self.loads += 1

    def apply(self, kind: str, subject: str, data: dict[str, Any], seq: int) -> bool:
        """Reflect one of the remote's events; False when it changes nothing here (older
        than the snapshot, or not about mirrored state). A malformed event is logged and
        skipped: the next snapshot puts things right."""
        if seq <= self.seq:
            return False
        self.seq = seq
        try:
            return self._apply(kind, subject, data)
        except (msgspec.ValidationError, KeyError, TypeError) as exc:
            log.warning("mirror: %s event %d not applied: %s", kind, seq, exc)
            return False

    def _apply(self, kind: str, subject: str, data: dict[str, Any]) -> bool:
        match kind:
            case "device.added" | "device.updated":
                self.put_device(msgspec.convert(data["device"], Device))
            case "device.removed":
                self.devices.pop(str(data.get("id", subject)), None)
            case "vad.created" | "vad.updated":
                self.put_vad(msgspec.convert(data["vad"], Vad))
            case "vad.deleted":
                self.drop_vad(str(data.get("uid", subject)))
            case "driver.up" | "driver.down":
                name = str(data["driver"])
                status = DriverStatus(name, kind == "driver.up", str(data.get("reason", "")))
                others = [d for d in self.drivers if d.driver != name]
                self.drivers = sorted([*others, status], key=lambda d: d.driver)
            case "peer.updated" if self.peer is not None and "name" in data:
                self.peer = msgspec.structs.replace(self.peer, name=str(data["name"]))
            case _:
                return False
        self.applied += 1
        return True

    def put_device(self, device: Device) -> None:
        self.devices[device.id] = device

    def put_vad(self, vad: Vad) -> None:
        self.vads[vad.uid] = vad

    def drop_vad(self, uid: str) -> None:
        self.vads.pop(uid, None)
