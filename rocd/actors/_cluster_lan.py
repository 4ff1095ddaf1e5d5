"""The cluster's LAN discovery: announcing this instance over mDNS and listing the
instances announced there that it does not trust (state "discovered").

Off when the listener is on a loopback address (no one on the LAN could dial it) or
`[cluster] discovery = false`. The table of discovered instances is capped; nothing in it
is trusted until a POST /peers names it (rocd.actors._cluster). A trusted instance
announced at another address than the one dialled is dialled there when it cannot be
reached where it is known (and that address kept once its handshake, with the trusted
key, gets through; see _peer.TryAddress).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import TYPE_CHECKING

import ifaddr
import trio

from rocd import __version__
from rocd.config import ClusterConfig
from rocd.net.signalling import (
    Announcement,
    KeyPair,
    LocalInfo,
    MdnsDiscovery,
    announcement_properties,
)

from ._node import PeerInfo
from ._supervisor import Publish
from ._trust import TrustBook

log = logging.getLogger("rocd.cluster")

#: Instances discovered on the LAN that are remembered (the oldest is forgotten first).
MAX_DISCOVERED = 64


class ClusterLan:
    """The cluster actor's discovery part (a mixin of `Cluster`)."""

    uid: str
    config: ClusterConfig
    keys: KeyPair
    book: TrustBook
    address: str
    _name: str
    _publish: Publish
    #: Instances announced on the LAN, by uid, with the Unix time last heard of.
    discovered: dict[str, tuple[Announcement, float]]
    discovery: MdnsDiscovery | None

    if TYPE_CHECKING:  # given by Actor and Cluster

        @property
        def nursery(self) -> trio.Nursery: ...

        def local(self) -> LocalInfo: ...

        def _moved(self, key: str, address: str) -> None: ...

    def _discovered_infos(self) -> list[PeerInfo]:
        """Instances announced on the LAN that this one does not trust (yet)."""
        out: list[PeerInfo] = []
        for seen, last_seen in self.discovered.values():
            if seen.key in self.book.peers or seen.key == self.keys.public:
                continue
            reason = "" if seen.compatible else f"speaks signalling {seen.signalling}"
            out.append(
                PeerInfo(
                    uid=seen.uid,
                    name=seen.name,
                    is_self=False,
                    state="discovered",
                    version=seen.version,
                    api="",
                    started=0.0,
                    key=seen.key,
                    fingerprint=seen.fingerprint,
                    address=seen.address,
                    last_seen=round(last_seen, 3),
                    reason=reason,
                )
            )
        return out

    def _discover(self, endpoint: str) -> None:
        """Announce this instance on the LAN and list the others (not on loopback)."""
        host, _, port = endpoint.removeprefix("tcp://").rpartition(":")
        host = host.strip("[]")
        if _is_loopback(host) or ":" in host:
            log.info("LAN discovery off: the cluster listener is on %s", host)
            return
        specific = host not in ("0.0.0.0", "*", "")
        advertised_host = self.address.removeprefix("tcp://").rpartition(":")[0]
        addresses = [host] if specific else _lan_addresses(advertised_host)
        self.discovery = MdnsDiscovery(
            uid=self.uid,
            port=int(port),
            addresses=addresses,
            properties=lambda: announcement_properties(
                uid=self.uid,
                name=self.local().name,
                key=self.keys.public,
                version=__version__,
                address=self.address,
            ),
            found=self._found,
            lost=lambda uid: self.discovered.pop(uid, None) and None,
            interfaces=[host] if specific else None,
        )
        self.nursery.start_soon(self.discovery.run)

    def _found(self, announcement: Announcement) -> None:
        trusted = self.book.trusted(announcement.key)
        if trusted is not None and trusted.address and announcement.address != trusted.address:
            self._moved(trusted.key, announcement.address)  # tried, kept only if it works
        known = self.discovered.pop(announcement.uid, None)
        self.discovered[announcement.uid] = (announcement, time.time())
        while len(self.discovered) > MAX_DISCOVERED:
            self.discovered.pop(next(iter(self.discovered)))
        if known is None and announcement.key not in self.book.peers:
            log.info(
                "discovered %s (%s) at %s",
                announcement.name,
                announcement.uid,
                announcement.address,
            )
            self._publish(
                "peer.discovered",
                announcement.uid,
                {
                    "uid": announcement.uid,
                    "name": announcement.name,
                    "address": announcement.address,
                    "fingerprint": announcement.fingerprint,
                    "key": announcement.key,
                },
            )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _lan_addresses(preferred: str) -> list[str]:
    """This machine's IPv4 addresses others on a LAN may dial (`preferred` first)."""
    found = [
        str(ip.ip)
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if isinstance(ip.ip, str) and not ip.ip.startswith("127.")
    ]
    if preferred in found:
        found.remove(preferred)
        found.insert(0, preferred)
    return found
