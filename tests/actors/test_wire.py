"""The registry of requests that may cross between instances, and roles."""

from __future__ import annotations

from typing import Any

import pytest

from rocd.actors import (
    WIRE,
    CreateVad,
    DeleteVad,
    Device,
    DeviceList,
    DeviceUpdate,
    GetDevice,
    GetDrivers,
    GetEndpoint,
    GetSnapshot,
    ListDevices,
    ListVads,
    Request,
    Snapshot,
    UpdateDevice,
    Vad,
    WireRegistry,
    allows,
    check_role,
    reply_type,
    require,
)
from rocd.audio import DriverStatus
from rocd.errors import Forbidden, InvalidRequest, Unsupported


class Ping(Request[int], frozen=True):
    n: int


class LoudPing(Ping, frozen=True):
    """A subclass still answers with its base's reply type."""


def test_reply_types_come_from_the_request_class() -> None:
    assert reply_type(GetDevice) is Device
    assert reply_type(ListDevices) is DeviceList
    assert reply_type(ListVads) == list[Vad]
    assert reply_type(GetDrivers) == list[DriverStatus]
    assert reply_type(DeleteVad) is type(None)
    assert reply_type(GetSnapshot) is Snapshot
    assert reply_type(LoudPing) is int


def test_rocd_registers_the_device_and_vad_requests_with_their_roles() -> None:
    roles = {name: WIRE.get(name).role for name in WIRE.names()}  # type: ignore[union-attr]
    assert roles["GetDevice"] == roles["ListDevices"] == roles["GetVad"] == "viewer"
    assert roles["UpdateDevice"] == roles["CreateVad"] == roles["DeleteVad"] == "operator"
    assert roles["UpdateVad"] == roles["Rename"] == "operator"
    assert roles["GetSnapshot"] == roles["GetPeerInfo"] == "viewer"
    assert WIRE.of(UpdateDevice(DeviceUpdate(volume=0.5))).cls is UpdateDevice


def test_a_request_that_is_not_registered_does_not_cross() -> None:
    assert WIRE.get("GetEndpoint") is None  # holds a live driver: local only
    with pytest.raises(Unsupported, match="GetEndpoint cannot be sent to another instance"):
        WIRE.of(GetEndpoint())


def test_registering_is_generic_and_checked() -> None:
    wire = WireRegistry()
    wire.register(Ping, "operator")
    wire.register(Ping, "operator")  # idempotent
    entry = wire.get("Ping")
    assert entry is not None
    assert (entry.cls, entry.role, entry.reply) == (Ping, "operator", int)

    class Other(Request[None], frozen=True):
        pass

    Other.__name__ = "Ping"
    with pytest.raises(ValueError, match="already registered"):
        wire.register(Other, "viewer")
    with pytest.raises(ValueError, match="unknown role"):
        wire.register(CreateVad, "root")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("have", "need", "ok"),
    [
        ("viewer", "viewer", True),
        ("viewer", "operator", False),
        ("operator", "viewer", True),
        ("operator", "admin", False),
        ("admin", "operator", True),
        ("", "viewer", False),
        ("root", "viewer", False),
    ],
)
def test_roles_include_the_ones_below(have: str, need: Any, ok: bool) -> None:
    assert allows(have, need) is ok


def test_role_errors_name_the_missing_role() -> None:
    with pytest.raises(Forbidden, match="role admin required; token t1 has role operator") as e:
        require("operator", "admin", "token t1")
    assert e.value.details == [{"required": "admin", "role": "operator"}]
    assert check_role("viewer") == "viewer"
    with pytest.raises(InvalidRequest, match="expected one of viewer, operator, admin"):
        check_role("guest")
