"""The node actor: this instance as a peer of the cluster (identity, display name).

The uid comes from the store and never changes; the display name is persisted and can be
changed through the API. Seen from the API, this instance is just the peer with
`"self": true`; remote peers will answer the same messages through their peer actors.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Annotated, Any

import msgspec

from rocd import __version__
from rocd.errors import InvalidRequest, StorageFailed

from ._actor import Actor, ActorRef, Request
from ._store import GetSetting, PutSetting
from ._supervisor import Publish

log = logging.getLogger("rocd.node")


class PeerInfo(msgspec.Struct, frozen=True):
    """What the cluster knows of one instance."""

    uid: str  # "" for a trusted peer not reached yet
    name: str
    is_self: bool = msgspec.field(name="self")
    #: "online" | "offline" | "refused" (a key this instance turned away) | "discovered"
    #: (announced on the LAN, not trusted)
    state: str
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
    #: How this instance reaches it: "direct", "reverse" (back over the connection it
    #: dialled to us), "relay" (through the rendezvous `relay`); None when not linked.
    route: str | None = None
    relay: str = ""  # uid of the rendezvous that carries the link (route "relay")
    observed: str = ""  # the IP address its connection came from, as seen here
    #: "host:port" its UDP datagrams were seen from by a rendezvous (behind a NAT: the
    #: public side of its mapping), for media that tries a direct path first.
    observed_udp: str = ""
    #: Set on an instance known only through a trusted peer (its uid): listed with the
    #: state that peer sees; not trusted here. `/peers/{uid}/...` goes through `via`.
    via: str = ""


class GetPeerInfo(Request[PeerInfo], frozen=True):
    pass


class Rename(Request[PeerInfo], frozen=True):
    name: str


class SetApiUrl(msgspec.Struct, frozen=True):
    """Told once the HTTP server has bound its address."""

    url: str


class SetObservedUdp(msgspec.Struct, frozen=True):
    """Told when a rendezvous answered a probe: where this instance's datagrams come from."""

    address: str  # host:port


class SetClusterIdentity(msgspec.Struct, frozen=True):
    """Told once the cluster listener is up: this instance's public key and address."""

    key: str
    fingerprint: str
    address: str


#: Characters a display name may not hold: control characters (C0, DEL, C1), line and
#: paragraph separators, bidirectional overrides (they make a name look like another).
#: Everything else goes, emoji sequences included. (Lone surrogates are not text either;
#: JSON decoding refuses them already, `check_name` too: a regular expression engine
#: that works on Unicode scalar values cannot even name them.)
_NOT_IN_NAMES = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_SURROGATE = re.compile("[\ud800-\udfff]")
#: A display name: 1-64 such characters, not only white space. The same expression is in
#: the OpenAPI document (JSON Schema `pattern`), so clients can check names before sending.
NAME_PATTERN = f"^[^{_NOT_IN_NAMES}]*[^\\s{_NOT_IN_NAMES}][^{_NOT_IN_NAMES}]*$"
_NAME = re.compile(NAME_PATTERN)
NAME_MAX = 64

DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)]


def check_name(name: str) -> str:
    """A display name stripped of surrounding space, or InvalidRequest saying why not."""
    if not 1 <= len(name) <= NAME_MAX or not 1 <= len(name.strip()) <= NAME_MAX:
        raise InvalidRequest(
            f"name must be 1 to {NAME_MAX} characters",
            details=[{"field": "name", "value": name}],
        )
    if _NAME.search(name) is None or _SURROGATE.search(name):
        raise InvalidRequest(
            "name must be printable text", details=[{"field": "name", "value": name}]
        )
    return name.strip()


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
        self.observed_udp = ""

    async def on_start(self) -> None:
        stored = await self._store.ask(GetSetting("node", "name"))
        if self._name_override is not None:
            self.name = check_name(self._name_override)
            if stored != self.name:
                await self._save_name()
        elif isinstance(stored, str):
            self.name = stored
        else:
            self.name = self._default_name
            await self._save_name()

    async def _save_name(self) -> None:
        """Persist the name at start; a disk that takes no writes must not stop the start
        (the store reports itself degraded, and the name is saved at the next rename)."""
        try:
            await self._store.ask(PutSetting("node", "name", self.name))
        except StorageFailed as exc:
            log.warning("display name not saved: %s", exc)

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
            observed_udp=self.observed_udp,
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
            case SetObservedUdp(address=address):
                if address != self.observed_udp:
                    self.observed_udp = address
                    self._publish("peer.updated", self.uid, {"observed_udp": address})
                return None
            case Rename(name=name):
                name = check_name(name)
                if name != self.name:
                    await self._store.ask(PutSetting("node", "name", name))
                    self.name = name
                    self._publish("peer.updated", self.uid, {"name": name})
                return self.info()
        return await super().handle(msg)
