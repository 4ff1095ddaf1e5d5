"""GET /metrics: this instance's stream ends in Prometheus' text format (prometheus-client).

Each instance exposes the ends it holds (scrape every instance for the cluster). Names
start with `rocd_`, in base units (seconds, bytes, ratios), counters end in `_total`;
labels are `stream` (uid), `peer` (the instance at the other end: this one's uid for a
local stream, "external" for a Roc endpoint) and `direction` ("receive" or "send"), never
addresses or SSRCs. Every counter of the receiver and of its sessions is exported, also
those this module does not name (as rocd_stream_receiver_<name>_total and
rocd_stream_session_<name>_total). What the receive path refused (forged or foreign
packets: the security model in README.md) is counted as rocd_receiver_fec_<name>_total
(the FEC readers' counters over every session of the end) and
rocd_receiver_rtcp_<name>_total (the receiver's RTCP), with the size and cap of its RTCP
sender table as gauges. A hub also exports its relays (`rocd_hub_relays`, and per relay
labelled by `stream`: datagrams by `direction`, bytes, and what it dropped by `reason`).
The daemon's event loop: `rocd_loop_stalls_total` (wakes 50 ms late or more) and
`rocd_loop_worst_lateness_seconds` (see rocd.loop_watch).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rocd.actors import (
    HUB_KIND,
    EndInfo,
    EndMetrics,
    GetEndMetrics,
    ListEnds,
    ListRelays,
    RelayInfo,
)
from rocd.errors import RocdError
from rocd.loop_watch import LoopStats

from ._context import ApiContext
from ._routes import API

_LABELS = ("stream", "peer", "direction")
#: Fields of the receiver's RTCP statistics that are levels, not counts.
_RTCP_GAUGES = frozenset({"senders", "max_senders"})
#: Session fields with a name of their own here, or that are not counters.
_NAMED = frozenset(
    {"ssrc", "address", "payload_type", "state", "latency_ms", "target_ms", "jitter_ms",
     "received", "lost", "recovered", "late", "concealed_samples", "drift_ppm",
     "resampler_ratio", "underruns"}
)  # fmt: skip


def _other_peer(info: EndInfo) -> str:
    spec = info.stream
    other = spec.source if info.role == "receiver" else spec.destination
    return "external" if other.peer is None else other.peer


class _Snapshot(Collector):
    """The families of one scrape, from end metrics gathered just before."""

    def __init__(
        self,
        ends: list[tuple[EndInfo, EndMetrics]],
        relays: list[RelayInfo] | None = None,
        loop: LoopStats | None = None,
    ) -> None:
        self.ends = ends
        self.relays = relays
        self.loop = loop

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Any] = {}

        def family(kind: type[Any], name: str, doc: str, extra: tuple[str, ...] = ()) -> Any:
            if name not in families:
                families[name] = kind(name, doc, labels=(*_LABELS, *extra))
            return families[name]

        def counter(name: str, doc: str, labels: list[str], value: float) -> None:
            family(CounterMetricFamily, name, doc).add_metric(labels, value)

        def gauge(name: str, doc: str, labels: list[str], value: float) -> None:
            family(GaugeMetricFamily, name, doc).add_metric(labels, value)

        peers: dict[str, int] = {}
        for info, m in self.ends:
            direction = "receive" if info.role == "receiver" else "send"
            peer = _other_peer(info)
            peers[peer] = peers.get(peer, 0) + 1
            labels = [m.stream, peer, direction]
            family(GaugeMetricFamily, "rocd_stream_state", "1 for the end's state", ("state",))
            families["rocd_stream_state"].add_metric([*labels, m.state.value], 1)
            r = m.receiver
            if r is not None:
                counter("rocd_stream_packets_received", "RTP packets received", labels,
                        r.packetsReceived)  # fmt: skip
                counter("rocd_stream_packets_lost", "packets lost on the way (before FEC)",
                        labels, r.packetsLost)  # fmt: skip
                counter("rocd_stream_packets_recovered", "packets rebuilt by FEC", labels,
                        r.recovered_packets)  # fmt: skip
                counter("rocd_stream_packets_late", "packets dropped for arriving too late",
                        labels, r.late_packets)  # fmt: skip
                counter("rocd_stream_concealed_samples", "samples concealed (per channel)",
                        labels, r.concealedSamples)  # fmt: skip
                counter("rocd_stream_underruns", "output underruns", labels, r.underruns)
                gauge("rocd_stream_latency_seconds", "latency measured at the receiver",
                      labels, r.latency_ms / 1000)  # fmt: skip
                gauge("rocd_stream_target_latency_seconds", "latency the receiver holds",
                      labels, r.target_latency_ms / 1000)  # fmt: skip
                gauge("rocd_stream_jitter_seconds", "interarrival jitter", labels, r.jitter)
                gauge("rocd_stream_clock_drift_ratio", "sender clock rate / ours - 1", labels,
                      r.drift_ppm / 1e6)  # fmt: skip
                gauge("rocd_stream_bitrate_bits_per_second", "media bitrate", labels,
                      r.bitrate_bps)  # fmt: skip
                for name, value in r.counters.items():
                    counter(f"rocd_stream_receiver_{name}", f"receiver counter {name}",
                            labels, value)  # fmt: skip
                totals: dict[str, int] = {}
                for session in r.session_metrics:
                    for name, value in session.items():
                        if name not in _NAMED and isinstance(value, int):
                            totals[name] = totals.get(name, 0) + value
                for name, value in totals.items():
                    counter(f"rocd_stream_session_{name}", f"session counter {name}",
                            labels, value)  # fmt: skip
                for name, value in r.fec.items():
                    counter(f"rocd_receiver_fec_{name}", f"FEC reader counter {name}",
                            labels, value)  # fmt: skip
                for name, value in r.rtcp.items():
                    if name in _RTCP_GAUGES:
                        gauge(f"rocd_receiver_rtcp_{name}", f"RTCP {name}", labels, value)
                    else:
                        counter(f"rocd_receiver_rtcp_{name}", f"RTCP counter {name}",
                                labels, value)  # fmt: skip
            s = m.sender
            if s is not None:
                counter("rocd_stream_packets_sent", "RTP source packets sent", labels,
                        s.packetsSent)  # fmt: skip
                counter("rocd_stream_fec_packets_sent", "FEC repair packets sent", labels,
                        s.fecPacketsSent)  # fmt: skip
                counter("rocd_stream_sent_bytes", "bytes sent (source and repair)", labels,
                        s.bytesSent)  # fmt: skip
                gauge("rocd_stream_bitrate_bits_per_second", "media bitrate", labels,
                      s.bitrate_bps)  # fmt: skip
                if s.rtt_ms is not None:
                    gauge("rocd_stream_rtt_seconds", "round trip to the receiver", labels,
                          s.rtt_ms / 1000)  # fmt: skip
        peer_family = GaugeMetricFamily(
            "rocd_peer_stream_ends", "stream ends held here, by the peer at the other end",
            labels=("peer",),
        )  # fmt: skip
        for peer, count in sorted(peers.items()):
            peer_family.add_metric([peer], count)
        yield from families.values()
        yield peer_family
        if self.relays is not None:
            yield from _hub_families(self.relays)
        if self.loop is not None:
            stalls = CounterMetricFamily(
                "rocd_loop_stalls", "event loop wakes 50 ms late or more (every stream at risk)"
            )
            stalls.add_metric([], self.loop.stalls)
            worst = GaugeMetricFamily(
                "rocd_loop_worst_lateness_seconds", "the event loop's worst lateness so far"
            )
            worst.add_metric([], self.loop.worst_ms / 1000)
            yield from (stalls, worst)


def _hub_families(relays: list[RelayInfo]) -> Iterator[Metric]:
    count = GaugeMetricFamily("rocd_hub_relays", "media relays this hub runs now")
    count.add_metric([], len(relays))
    datagrams = CounterMetricFamily(
        "rocd_hub_relay_datagrams", "datagrams relayed", labels=("stream", "direction")
    )
    octets = CounterMetricFamily("rocd_hub_relay_bytes", "bytes relayed", labels=("stream",))
    dropped = CounterMetricFamily(
        "rocd_hub_relay_dropped", "datagrams a relay refused", labels=("stream", "reason")
    )
    for relay in relays:
        stats = relay.stats
        datagrams.add_metric([relay.stream, "to_receiver"], stats.to_receiver)
        datagrams.add_metric([relay.stream, "to_sender"], stats.to_sender)
        octets.add_metric([relay.stream], stats.bytes)
        for reason in ("unknown_source", "bad_token", "no_receiver", "over_rate"):
            dropped.add_metric([relay.stream, reason], getattr(stats, reason))
    yield from (count, datagrams, octets, dropped)


async def gather(ctx: ApiContext) -> list[tuple[EndInfo, EndMetrics]]:
    """Every end this instance holds, with its metrics now."""
    host = ctx.stream_host
    if host is None:
        return []
    out = []
    for info in await host.ask(ListEnds()):
        try:
            out.append(
                (info, await host.ask(GetEndMetrics(stream=info.stream.uid, role=info.role)))
            )
        except RocdError:
            continue  # removed meanwhile
    return out


@API.route(
    "GET",
    "/metrics",
    summary="This instance's stream metrics, in Prometheus' text format",
    tag="system",
    response=str,
    media_type="text/plain; version=0.0.4; charset=utf-8",
)
async def metrics(ctx: ApiContext) -> str:
    registry = CollectorRegistry(auto_describe=False)
    relays = None
    hub = ctx.registry.find(HUB_KIND, ctx.peers.local.uid) if ctx.peers is not None else None
    if hub is not None:
        try:
            relays = await hub.ask(ListRelays())
        except RocdError:
            relays = None
    loop = ctx.loop_stats() if ctx.loop_stats is not None else None
    registry.register(_Snapshot(await gather(ctx), relays, loop))
    return generate_latest(registry).decode()
