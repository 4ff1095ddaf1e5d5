"""Relayed links: where a frame that is not its own link's goes, and who may send it.

Two instances that cannot dial each other can still talk: their frames ride inside links
that do exist, marked with the side of the relayed link that wrote them (see
`_messages`). Every open direct link is a *carrier* to the instance at its other end
(its uid and its key proven in the CURVE handshake): a connection this instance dialled,
or a session of its listener. Over a carrier X-N, a relayed link between X and T runs

- *back* over the connection T dialled (N = T): T is behind a NAT or a firewall and
  cannot be dialled, but its own connection can carry our link to it;
- *through* a rendezvous (N = R, an instance started with `[cluster] rendezvous = true`)
  that has a carrier to T too, and forwards the frames between its two carriers.

The switchboard of each instance sorts the frames its carriers hand up (`receive`):

- for this instance, written by the dialling end: a session of our listener, opened by
  a Hello (`Listener.feed_relayed`);
- for this instance, written by the listening end: the relayed `Connection` we dialled
  to that instance through that very carrier (`dialled`);
- for another instance: forwarded unchanged, if this instance is a rendezvous and the
  frame passes the rules below; otherwise dropped and counted.

Rules of a rendezvous (what makes relaying safe):
- the frame's `src` must be the uid of the carrier it came on: an instance cannot speak
  for another (a forged src is dropped and counted as "forged_src");
- a relayed Hello or Welcome must name that same uid and carry the carrier's own key:
  the far end learns who is talking (and so what role applies) from that key, which the
  rendezvous has seen proven;
- only frames of relayed links (side set) are forwarded, and only to a carrier of the
  frame's `dst`; frames that arrive on a relayed link are never forwarded again.

The end that receives a relayed Hello through a rendezvous relies on the rendezvous for
the sender's key; the cluster caps the role of such a session at the rendezvous's own
(`Session.via`), so a rendezvous can never make anyone do more than it may do itself.

Plain synchronous code: carriers queue frames without blocking (ZeroMQ's own queues),
and nothing here waits.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ._connection import Carrier, Connection
from ._errors import SignallingError
from ._listener import Listener, Session
from ._messages import SIDE_DIALLER, SIDE_LISTENER, Frame, Hello, Welcome

log = logging.getLogger("rocd.cluster")


class SessionCarrier:
    """A direct session of our listener, as a carrier (it dialled us)."""

    def __init__(self, listener: Listener, session: Session, *, rendezvous: bool = False):
        self.listener = listener
        self.session = session
        self.rendezvous = rendezvous  # it said it relays for others

    @property
    def uid(self) -> str:
        return self.session.uid

    @property
    def key(self) -> str:
        return self.session.key

    def send_nowait(self, data: bytes) -> None:
        self.listener.send_raw(self.session, data)

    def __repr__(self) -> str:
        return f"<SessionCarrier {self.uid}>"


class ConnectionCarrier:
    """A direct connection we dialled, as a carrier (welcomed: its uid is known)."""

    def __init__(self, connection: Connection, uid: str, key: str, *, rendezvous: bool = False):
        self.connection = connection
        self._uid = uid
        self._key = key
        self.rendezvous = rendezvous  # it said it relays for others

    @property
    def uid(self) -> str:
        return self._uid

    @property
    def key(self) -> str:
        return self._key

    def send_nowait(self, data: bytes) -> None:
        self.connection.send_raw(data)

    def __repr__(self) -> str:
        return f"<ConnectionCarrier {self.uid}>"


@dataclass
class RelayStats:
    """What a switchboard did with the frames it was handed."""

    forwarded: int = 0  # frames passed on to another instance (a rendezvous)
    delivered: int = 0  # frames for this instance's own relayed links
    dropped: Counter[str] = field(default_factory=Counter)  # by reason


class Switchboard:
    """The carriers of one instance and its relayed links; see the module docstring."""

    def __init__(
        self,
        uid: str,
        *,
        rendezvous: bool = False,
        listener: Listener | None = None,
        on_carriers: Callable[[], None] | None = None,
    ) -> None:
        self.uid = uid
        self.rendezvous = rendezvous
        self.listener = listener
        self._on_carriers = on_carriers
        self._carriers: dict[str, list[Carrier]] = {}
        #: Relayed connections this instance dialled, by the uid they lead to.
        self.dialled: dict[str, Connection] = {}
        self.stats = RelayStats()

    # -- carriers ------------------------------------------------------------------------

    def add_carrier(self, carrier: Carrier) -> None:
        if not carrier.uid or carrier.uid == self.uid:
            return
        carriers = self._carriers.setdefault(carrier.uid, [])
        if carrier not in carriers:
            carriers.append(carrier)
            self._changed()

    def remove_carrier(self, carrier: Carrier, why: str = "the link under it closed") -> None:
        """Forget a carrier; every relayed link it held ends."""
        carriers = self._carriers.get(carrier.uid, [])
        if carrier in carriers:
            carriers.remove(carrier)
            if not carriers:
                del self._carriers[carrier.uid]
            self._changed()
        for conn in list(self.dialled.values()):
            if conn.carrier is carrier:
                conn.carrier_lost(why)
        if self.listener is not None:
            self.listener.carrier_lost(carrier, why)

    def carriers_to(self, uid: str) -> list[Carrier]:
        """The open direct links to instance `uid` (none: it is not a neighbour)."""
        return list(self._carriers.get(uid, ()))

    def carriers_of_key(self, key: str) -> list[Carrier]:
        """The open direct links to the instance whose key is `key`."""
        return [c for carriers in self._carriers.values() for c in carriers if c.key == key]

    def neighbours(self) -> list[str]:
        """The uids this instance has a direct link with."""
        return list(self._carriers)

    def _changed(self) -> None:
        if self._on_carriers is not None:
            self._on_carriers()

    # -- relayed connections we dial -------------------------------------------------------

    def dial(self, uid: str, connection: Connection) -> None:
        """Route the frames `uid`'s listening end writes back to `connection` (relayed)."""
        self.dialled[uid] = connection

    def hang_up(self, uid: str, connection: Connection) -> None:
        if self.dialled.get(uid) is connection:
            del self.dialled[uid]

    # -- frames ----------------------------------------------------------------------------

    def receive(self, carrier: Carrier, frame: Frame, data: bytes) -> None:
        """A frame `carrier` handed up as not its own (see the module docstring)."""
        if frame.dst == self.uid and frame.side:
            self._deliver(carrier, frame, data)
        elif frame.dst and frame.dst != self.uid:
            self._forward(carrier, frame, data)
        else:
            self._drop("not for a relayed link", frame, carrier)

    def _deliver(self, carrier: Carrier, frame: Frame, data: bytes) -> None:
        if frame.side == SIDE_LISTENER:
            conn = self.dialled.get(frame.src)
            # The neighbour may answer on any of its links with us (both are its key).
            if conn is None or conn.carrier is None or conn.carrier.uid != carrier.uid:
                self._drop("no such relayed link", frame, carrier)
                return
            self.stats.delivered += 1
            conn.feed(data)
            return
        assert frame.side == SIDE_DIALLER
        if self.listener is None:
            self._drop("no listener", frame, carrier)
            return
        msg = frame.msg
        key = ""
        if isinstance(msg, Hello):
            if frame.src == carrier.uid:
                key = carrier.key  # back over its own connection: its key is proven
                if msg.key and msg.key != key:
                    self._drop("forged_key", frame, carrier)
                    return
            elif not msg.key:
                self._drop("relayed hello without a key", frame, carrier)
                return
            else:
                key = msg.key  # vouched for by the rendezvous that carried it
        self.stats.delivered += 1
        self.listener.feed_relayed(carrier, frame.src, key, data)

    def _forward(self, carrier: Carrier, frame: Frame, data: bytes) -> None:
        if not self.rendezvous:
            self._drop("not a rendezvous", frame, carrier)
            return
        if not frame.side:
            self._drop("direct frame for another instance", frame, carrier)
            return
        if frame.src != carrier.uid:
            self._drop("forged_src", frame, carrier)
            return
        msg = frame.msg
        if isinstance(msg, Hello | Welcome) and (msg.uid != frame.src or msg.key != carrier.key):
            self._drop("forged_key", frame, carrier)
            return
        targets = self._carriers.get(frame.dst)
        if not targets:
            self._drop("no_route", frame, carrier)
            return
        for target in targets:
            try:
                target.send_nowait(data)
            except SignallingError:
                continue
            self.stats.forwarded += 1
            return
        self._drop("undeliverable", frame, carrier)

    def _drop(self, reason: str, frame: Frame, carrier: Carrier) -> None:
        self.stats.dropped[reason] += 1
        count = self.stats.dropped[reason]
        loud = reason.startswith("forged") and (count == 1 or count % 100 == 0)
        log.log(
            logging.WARNING if loud else logging.DEBUG,
            "relay: %s frame %s -> %s from %s dropped: %s (%d so far)",
            type(frame.msg).__name__,
            frame.src[:40],
            frame.dst[:40],
            carrier.uid,
            reason,
            count,
        )
