"""Actors: state, lifetimes, supervision and orchestration.

The runtime (mailbox, ask/tell, supervisor, registry) and the domain actors built on it
(node, store, event bus, audio service, devices, VADs; streams and peers later).
"""

from ._actor import DEFAULT_ASK_TIMEOUT, Actor, ActorRef, Request
from ._audio import AudioService, DriverSpec
from ._audio_types import (
    CreateVad,
    DeleteVad,
    Device,
    DeviceConfig,
    DeviceEndpoint,
    DeviceList,
    DeviceUpdate,
    GetDevice,
    GetDrivers,
    GetEndpoint,
    GetVad,
    Rescan,
    UpdateDevice,
    UpdateVad,
    Vad,
    VadConfig,
    VadCreate,
    VadUpdate,
    audio_errors,
    vad_system_name,
)
from ._device import DeviceActor
from ._events import (
    BusStats,
    Event,
    EventBus,
    EventFilter,
    GetBusStats,
    Recent,
    Subscribe,
    Subscription,
)
from ._mailbox import Mailbox, MailboxStats
from ._node import GetPeerInfo, Node, PeerInfo, Rename, SetApiUrl, check_name
from ._peer_handle import SELF, LocalPeer, PeerHandle, Peers
from ._registry import Registry
from ._statedb import SCHEMA_VERSION, StateDB, StateError
from ._store import DeleteSetting, GetIdentity, GetSetting, ListSettings, PutSetting, Store
from ._supervisor import (
    Child,
    Publish,
    Restart,
    Supervisor,
    SupervisorGaveUp,
    is_cancellation,
    root_cause,
)
from ._vad import VadActor

__all__ = [
    "DEFAULT_ASK_TIMEOUT",
    "SCHEMA_VERSION",
    "SELF",
    "Actor",
    "ActorRef",
    "AudioService",
    "BusStats",
    "Child",
    "CreateVad",
    "DeleteSetting",
    "DeleteVad",
    "Device",
    "DeviceActor",
    "DeviceConfig",
    "DeviceEndpoint",
    "DeviceList",
    "DeviceUpdate",
    "DriverSpec",
    "Event",
    "EventBus",
    "EventFilter",
    "GetBusStats",
    "GetDevice",
    "GetDrivers",
    "GetEndpoint",
    "GetIdentity",
    "GetPeerInfo",
    "GetSetting",
    "GetVad",
    "ListSettings",
    "LocalPeer",
    "Mailbox",
    "MailboxStats",
    "Node",
    "PeerHandle",
    "PeerInfo",
    "Peers",
    "Publish",
    "PutSetting",
    "Recent",
    "Registry",
    "Rename",
    "Request",
    "Rescan",
    "Restart",
    "SetApiUrl",
    "StateDB",
    "StateError",
    "Store",
    "Subscribe",
    "Subscription",
    "Supervisor",
    "SupervisorGaveUp",
    "UpdateDevice",
    "UpdateVad",
    "Vad",
    "VadActor",
    "VadConfig",
    "VadCreate",
    "VadUpdate",
    "audio_errors",
    "check_name",
    "is_cancellation",
    "root_cause",
    "vad_system_name",
]
