"""Every kind of event rocd publishes, with what it means: the one list filters check.

A subscriber's filter names exact kinds or families ("device." = every device event);
anything not listed here is a typo the subscriber would otherwise wait on for ever, so it
is refused. Whoever publishes a new kind adds it here (tests/actors check that every kind
published in rocd/ is listed).
"""

from __future__ import annotations

import re

EVENT_KINDS: dict[str, str] = {
    "daemon.started": "the daemon serves its API (data: api, version)",
    "peer.updated": "an instance's display name changed (data: name)",
    "peer.joined": "a trusted peer is online (data: uid, name, address, fingerprint, role)",
    "peer.left": "a peer went offline or said goodbye (data: uid, name, reason)",
    "peer.changed": "a peer's route or details changed while it stayed online, e.g. a "
    "relayed link moved to a direct one (data: uid, peer)",
    "peer.removed": "trust in a peer was revoked (data: uid)",
    "peer.discovered": "an instance announced itself on the LAN; not trusted until paired "
    "(data: uid, name, address, fingerprint, key)",
    "peer.refused": "a key this instance does not trust was refused; at most once a minute per "
    "key (data: fingerprint, key, address, reason, count)",
    "device.added": "a device appeared (data: device)",
    "device.removed": "a device went away (data: id)",
    "device.updated": "a device's state or settings changed (data: device, changed, origin)",
    "device.error": "a device's settings could not be applied (data: device, error)",
    "vad.created": "a virtual device was made (data: vad)",
    "vad.updated": "a virtual device changed: name, format or state (data: vad, changed)",
    "vad.deleted": "a virtual device was deleted (data: uid)",
    "driver.up": "an audio driver works again (data: driver)",
    "driver.down": "an audio driver stopped working (data: driver, reason)",
    "stream.created": "a stream was set up, both ends committed (data: stream)",
    "stream.state": "an end of a stream changed state: pending, starting, active, degraded, "
    "failed, stopped (data: stream, role, state, reason)",
    "stream.metrics": "once a second per stream end here: its metrics (data: stream, ends)",
    "stream.deleted": "a stream was deleted, both ends torn down (data: stream)",
    "actor.crashed": "an actor failed; its supervisor decides (data: actor, error)",
    "actor.restarted": "a crashed actor was restarted (data: actor, restarts)",
    "supervisor.gave_up": "restarts came too fast; the parent restarts it (data: supervisor)",
    "store.error": "the state file takes no writes: changes get 503 (data: error)",
    "store.recovered": "the state file takes writes again",
}

#: The families, each usable as a prefix filter ("device.").
EVENT_FAMILIES: frozenset[str] = frozenset(kind.split(".", 1)[0] + "." for kind in EVENT_KINDS)


def check_kind_filter(entry: str) -> str | None:
    """None if `entry` (an exact kind, or a family ending in ".") names published events,
    else why not."""
    if entry.endswith("."):
        if entry in EVENT_FAMILIES:
            return None
        return f"no event family {entry!r} (families: {', '.join(sorted(EVENT_FAMILIES))})"
    if entry in EVENT_KINDS:
        return None
    return f"no event kind {entry!r} (give a kind such as 'device.added' or a family 'device.')"


def kind_filter_pattern() -> str:
    """A regular expression of every valid `kind` filter (comma-separated kinds and
    families, blanks allowed), for the API's document: clients see what is accepted."""
    names = sorted([*EVENT_KINDS, *EVENT_FAMILIES], key=lambda k: (-len(k), k))
    one = "(" + "|".join(re.escape(n) for n in names) + ")"
    return rf"^\s*({one}\s*)?(,\s*({one}\s*)?)*$"
