"""The node actor: this instance as a peer of the cluster (identity, display name).

The uid comes from the store and never changes; the display name is persisted and can be
changed through the API. Seen from the API, this instance is just the peer with
`"self": true`; remote peers will answer the same messages through their peer actors.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from rocd import __version__
from rocd.errors import InvalidRequest

from ._actor import Actor, ActorRef, Request
from ._store import GetSetting, PutSetting
from ._supervisor import Publish


class PeerInfo(msgspec.Struct, frozen=True):
    """What the cluster knows of one instance."""

    uid: str  # "" for a trusted peer not reached yet
    name: str
    is_self: bool = msgspec.field(name="self")
    state: str  # "online" | "offline" | "refused" (a key this instance turned away)
    version: str
    api: str  # base URL of the instance's HTTP API ("" if unknown)
    started: float  # Unix time the instance started, seconds
    key: str = ""  # its public key (Z85): what pairing trusts
    fingerprint: str = ""  # a short name for the key (16 hex digits of its SHA-256)
    address: str = ""  # its cluster listener, tcp://host:port
    role: str | None = None  # the role this instance gives that key (None for itself)
    rtt_ms: float | None = None  # heartbeat round trip, milliseconds
    last_seen: float | None = None  # Unix time it was last heard from
    reason: str = ""  # why it is offline or refused


class GetPeerInfo(Request[PeerInfo], frozen=True):
    pass


class Rename(Request[PeerInfo], frozen=True):
    name: str


class SetApiUrl(msgspec.Struct, frozen=True):
    """Told once the HTTP server has bound its address."""

    url: str


class SetClusterIdentity(msgspec.Struct, frozen=True):
    """Told once the cluster listener is up: this instance's public key and address."""

    key: str
    fingerprint: str
    address: str


def check_name(name: str) -> str:
    """A display name stripped of surrounding space, or InvalidRequest saying why not."""
    stripped = name.strip()
    if not 1 <= len(stripped) <= 64:
        raise InvalidRequest(
            "name must be 1 to 64 characters", details=[{"field": "name", "value": name}]
        )
    if not stripped.isprintable():
        raise InvalidRequest(
            "name must be printable text", details=[{"field": "name", "value": name}]
        )
    return stripped


class Node(Actor):
    kind = "node"

    def __init__(
        self,
        uid: str,
        *,
        store: ActorRef,
        publish: Publish,
        default_name: str,
        name_override: str | None = None,
        api_url: str = "",
    ) -> None:
        super().__init__(uid)
        self._store = store
        self._publish = publish
        self._default_name = default_name
        self._name_override = name_override
        self.api_url = api_url
        self.name = default_name
        self.started = time.time()
        self.cluster = SetClusterIdentity("", "", "")

    async def on_start(self) -> None:
        stored = await self._store.ask(GetSetting("node", "name"))
        if self._name_override is not None:
            self.name = check_name(self._name_override)
            if stored != self.name:
                await self._store.ask(PutSetting("node", "name", self.name))
        elif isinstance(stored, str):
            self.name = stored
        else:
            self.name = self._default_name
            await self._store.ask(PutSetting("node", "name", self.name))

    def info(self) -> PeerInfo:
        return PeerInfo(
            uid=self.uid,
            name=self.name,
            is_self=True,
            state="online",
            version=__version__,
            api=self.api_url,
            started=self.started,
            key=self.cluster.key,
            fingerprint=self.cluster.fingerprint,
            address=self.cluster.address,
        )

    async def handle(self, msg: Any) -> Any:
        match msg:
            case GetPeerInfo():
                return self.info()
            case SetApiUrl(url=url):
                self.api_url = url
                return None
            case SetClusterIdentity():
                self.cluster = msg
                return None
            case Rename(name=name):
                name = check_name(name)
                if name != self.name:
                    await self._store.ask(PutSetting("node", "name", name))
                    self.name = name
                    self._publish("peer.updated", self.uid, {"name": name})
                return self.info()
        return await super().handle(msg)
