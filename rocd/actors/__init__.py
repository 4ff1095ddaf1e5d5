"""Actors: state, lifetimes, supervision and orchestration.

The runtime (mailbox, ask/tell, supervisor, registry) and the domain actors built on it
(node, store, event bus; devices, streams and peers later).
"""

from ._actor import DEFAULT_ASK_TIMEOUT, Actor, ActorRef, Request
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
from ._registry import Registry
from ._statedb import SCHEMA_VERSION, StateDB, StateError
from ._store import DeleteSetting, GetIdentity, GetSetting, ListSettings, PutSetting, Store
from ._supervisor import Child, Publish, Restart, Supervisor, SupervisorGaveUp, is_cancellation

__all__ = [
    "DEFAULT_ASK_TIMEOUT",
    "SCHEMA_VERSION",
    "Actor",
    "ActorRef",
    "BusStats",
    "Child",
    "DeleteSetting",
    "Event",
    "EventBus",
    "EventFilter",
    "GetBusStats",
    "GetIdentity",
    "GetPeerInfo",
    "GetSetting",
    "ListSettings",
    "Mailbox",
    "MailboxStats",
    "Node",
    "PeerInfo",
    "Publish",
    "PutSetting",
    "Recent",
    "Registry",
    "Rename",
    "Request",
    "Restart",
    "SetApiUrl",
    "StateDB",
    "StateError",
    "Store",
    "Subscribe",
    "Subscription",
    "Supervisor",
    "SupervisorGaveUp",
    "check_name",
    "is_cancellation",
]
