"""How `rocd ctl` shows the API's answers to a person: tables for lists, `field: value`
lines for one resource. (`--json` prints the API's own JSON instead; see _ctl_client.)"""

from __future__ import annotations

import json
import time
import unicodedata
from collections.abc import Sequence
from typing import Any

import msgspec

from rocd.actors import (
    Device,
    DeviceList,
    EndSpec,
    Event,
    PeerInfo,
    Stream,
    StreamMetrics,
    Vad,
)


def width(text: str) -> int:
    """Columns `text` takes in a terminal (wide characters count two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned on the widest cell; the last column is not padded."""
    widths = [max([width(h)] + [width(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [c + " " * (widths[i] - width(c)) for i, c in enumerate(cells[:-1])]
        return "  ".join([*padded, cells[-1]]).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


#: Fields that hold a Unix time (seconds) in the API's models: shown as a date and time.
UNIX_TIMES = frozenset({"created", "started", "last_seen", "expires"})


def when(unix: float) -> str:
    """A Unix time as local date and time, with how long ago (or ahead) it is."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(unix))
    delta = time.time() - unix
    return f"{stamp} ({delta:.0f} s ago)" if delta >= 0 else f"{stamp} (in {-delta:.0f} s)"


def fields(value: msgspec.Struct, skip: Sequence[str] = ()) -> str:
    """One `field: value` line per field of a resource (nested values as JSON, Unix
    times as dates: `--json` gives the numbers)."""
    data = {k: v for k, v in msgspec.to_builtins(value).items() if k not in skip}
    pad = max(len(k) for k in data) if data else 0
    lines = []
    for key, item in data.items():
        if item is None or item == "" or (key in UNIX_TIMES and item == 0):
            shown = "-"
        elif key in UNIX_TIMES and isinstance(item, int | float):
            shown = when(item)
        else:
            shown = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
        lines.append(f"{key + ':':<{pad + 1}} {shown}")
    return "\n".join(lines)


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def ago(unix: float | None) -> str:
    if unix is None:
        return "-"
    seconds = max(0.0, time.time() - unix)
    return (
        f"{seconds:.0f} s ago" if seconds < 120 else time.strftime("%H:%M:%S", time.localtime(unix))
    )


def peers(items: list[PeerInfo]) -> str:
    rows = []
    for p in items:
        state = "self" if p.is_self else p.state + (f" via {p.via}" if p.via else "")
        route = p.route or "-"
        if p.route == "relay":
            route = f"relay {p.relay}"
        rows.append(
            [
                p.uid or "-",
                p.name or "-",
                state,
                p.role or "-",
                ms(p.rtt_ms),
                route,
                p.address or "-",
                p.fingerprint or "-",
                "-" if p.is_self else ago(p.last_seen),
            ]
        )
    headers = ["UID", "NAME", "STATE", "ROLE", "RTT", "ROUTE", "ADDRESS", "FINGERPRINT", "SEEN"]
    return table(headers, rows)


def devices(listing: DeviceList) -> str:
    drivers = ", ".join(
        f"{d.driver} {'up' if d.up else 'down: ' + d.reason}" for d in listing.drivers
    )
    rows = [
        [
            d.id,
            d.direction,
            d.state if d.enabled else "disabled",
            f"{d.volume * 100:.0f}%",
            "muted" if d.mute else "-",
            f"{d.rate}/{d.channels}",
            d.name,
        ]
        for d in listing.devices
    ]
    stale = f" (offline: as seen {listing.age_s:.0f} s ago)" if listing.stale is True else ""
    head = f"drivers: {drivers}{stale}"
    return head + "\n" + table(["ID", "DIR", "STATE", "VOLUME", "MUTE", "RATE/CH", "NAME"], rows)


def device(d: Device) -> str:
    return fields(d)


def vads(items: list[Vad]) -> str:
    rows = [
        [
            v.uid,
            v.kind,
            v.driver,
            f"{v.rate}/{v.channels}",
            v.state + (f" ({v.reason})" if v.reason else ""),
            v.device or "-",
            v.name,
        ]
        for v in items
    ]
    return table(["UID", "KIND", "DRIVER", "RATE/CH", "STATE", "DEVICE", "NAME"], rows)


def end(spec: EndSpec) -> str:
    """An end in one word: PEER:DEVICE, PEER:vad/UID, or the external source URI."""
    if spec.external is not None:
        return spec.external.source
    if spec.vad is not None:
        return f"{spec.peer}:vad/{spec.vad}"
    return f"{spec.peer}:{spec.device}"


def streams(items: list[Stream]) -> str:
    rows = [
        [
            s.uid,
            s.state.value + (f" ({s.reason})" if s.reason else ""),
            end(s.source),
            end(s.destination),
        ]
        for s in items
    ]
    return table(["UID", "STATE", "SOURCE", "DESTINATION"], rows)


def stream(s: Stream) -> str:
    lines = [fields(s, skip=("ends",)), "ends:"]
    rows = [
        [
            e.role,
            e.peer,
            e.state.value + (f" ({e.reason})" if e.reason else ""),
            " ".join(u for u in (e.endpoints.source, e.endpoints.repair, e.endpoints.control) if u)
            if e.endpoints
            else "-",
        ]
        for e in s.ends
    ]
    lines.append(
        table(["  ROLE", "PEER", "STATE", "ENDPOINTS"], [["  " + r[0], *r[1:]] for r in rows])
    )
    return "\n".join(lines)


def metrics(m: StreamMetrics) -> str:
    rows = []
    for e in m.ends:
        r, s = e.receiver, e.sender
        if r is not None:
            total = r.packetsReceived + r.packetsLost
            loss = f"{100 * r.packetsLost / total:.2f}%" if total else "0%"
            rows.append(
                [
                    e.role,
                    e.peer,
                    e.state.value,
                    f"{r.latency_ms:.1f}/{r.target_latency_ms:.0f} ms",
                    str(r.packetsReceived),
                    f"{r.packetsLost} ({loss})",
                    str(r.recovered_packets),
                    f"{r.drift_ppm:.1f} ppm",
                    f"{r.bitrate_bps / 1000:.0f} kb/s",
                ]
            )
        elif s is not None:
            rtt = "-" if s.rtt_ms is None else f"rtt {s.rtt_ms:.1f} ms"
            rows.append(
                [
                    e.role,
                    e.peer,
                    e.state.value,
                    rtt,
                    f"{s.packetsSent} sent",
                    "-",
                    f"{s.fecPacketsSent} fec",
                    "-",
                    f"{s.bitrate_bps / 1000:.0f} kb/s",
                ]
            )
    headers = ["ROLE", "PEER", "STATE", "LATENCY/TARGET", "PACKETS", "LOST", "RECOVERED", "DRIFT"]
    return f"{m.uid}  {m.state.value}\n" + table([*headers, "BITRATE"], rows)


def event(e: Event) -> str:
    """One line: time, instance, kind, subject and what the event says."""
    clock = time.strftime("%H:%M:%S", time.localtime(e.time)) + f".{int(e.time * 1000) % 1000:03d}"
    data = json.dumps(e.data, ensure_ascii=False, separators=(",", ":"))
    if len(data) > 160:
        data = data[:157] + "..."
    return f"{clock}  {e.peer}  {e.kind:<16} {e.subject or '-'}  {data}"


def any_value(value: Any) -> str:
    """Anything else: its fields, or each item's."""
    if isinstance(value, msgspec.Struct):
        return fields(value)
    if isinstance(value, list):
        return "\n\n".join(any_value(v) for v in value)
    return str(value)
