"""Which requests may cross from one instance to another, and with what role.

A request type is sent over the signalling link by its class name, with its fields as
MessagePack; the receiving instance looks the name up here, checks that the asking
peer's key has the role the entry needs, decodes the fields into the class and asks the
addressed actor, like a local ask. The reply type is the `R` of `Request[R]`, so both
sides decode replies without a second table. A request that is not registered never
crosses (it may hold things that only make sense locally, like a device driver).

Modules that define requests other instances may make register them at import
(`WIRE.register(UpdateDevice, "operator")`): keep the registry generic.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from rocd.errors import Unsupported

from ._actor import Request
from ._audio_types import (
    CreateVad,
    DeleteVad,
    GetDevice,
    GetDrivers,
    GetVad,
    ListDevices,
    ListVads,
    Rescan,
    UpdateDevice,
    UpdateVad,
)
from ._mirror import GetSnapshot
from ._node import GetPeerInfo, Rename
from ._roles import ROLES, Role


@dataclass(frozen=True)
class WireRequest:
    name: str  # the class name, as it travels
    cls: type[Request[Any]]
    role: Role  # the least role a peer's key needs to make it
    reply: Any  # the reply type (R of Request[R])


def reply_type(cls: type[Request[Any]]) -> Any:
    """The R of the `Request[R]` that `cls` derives from."""
    for klass in cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            if typing.get_origin(base) is Request:
                return typing.get_args(base)[0]
    raise TypeError(f"{cls.__name__} is not a Request[R]")


class WireRegistry:
    """Request classes by name; see the module docstring."""

    def __init__(self) -> None:
        self._by_name: dict[str, WireRequest] = {}

    def register(self, cls: type[Request[Any]], role: Role) -> None:
        """Let `cls` cross between instances, for keys with at least `role`."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        entry = WireRequest(cls.__name__, cls, role, reply_type(cls))
        known = self._by_name.get(entry.name)
        if known is not None and known.cls is not cls:
            raise ValueError(f"another request is already registered as {entry.name!r}")
        self._by_name[entry.name] = entry

    def get(self, name: str) -> WireRequest | None:
        return self._by_name.get(name)

    def of(self, request: Request[Any]) -> WireRequest:
        """The entry of a request about to be sent; Unsupported if it may not cross."""
        entry = self._by_name.get(type(request).__name__)
        if entry is None or entry.cls is not type(request):
            raise Unsupported(f"{type(request).__name__} cannot be sent to another instance")
        return entry

    def names(self) -> list[str]:
        return sorted(self._by_name)


#: The requests of rocd that cross between instances.
WIRE = WireRegistry()

for _cls, _role in (
    (GetSnapshot, "viewer"),
    (GetPeerInfo, "viewer"),
    (Rename, "operator"),
    (GetDrivers, "viewer"),
    (Rescan, "viewer"),
    (ListDevices, "viewer"),
    (GetDevice, "viewer"),
    (UpdateDevice, "operator"),
    (ListVads, "viewer"),
    (GetVad, "viewer"),
    (CreateVad, "operator"),
    (UpdateVad, "operator"),
    (DeleteVad, "operator"),
):
    WIRE.register(_cls, typing.cast(Role, _role))
