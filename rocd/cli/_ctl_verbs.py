"""What each `rocd ctl` verb asks the API, and how its answer is shown (see _ctl)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from typing import Any

import trio

from rocd.actors import (
    Device,
    DeviceList,
    DeviceUpdate,
    InviteCreated,
    PeerInfo,
    Stream,
    StreamCreate,
    StreamMetrics,
    StreamPatch,
    Vad,
    VadCreate,
    VadUpdate,
)
from rocd.api import InviteCreate, JoinBody, PeerCreate, PeerUpdate, RoleUpdate

from . import _ctl_views as views
from ._ctl_client import Client, CtlError, checked, segment
from ._ctl_events import follow_events
from ._ctl_exit import (
    EXIT_NOT_FOUND,
    EXIT_USAGE,
)

#: What a verb gives back: the decoded answer and how to show it to a person.
Shown = tuple[Any, Callable[[Any], str]]

_PEER_ID = re.compile(r"[0-9a-f]{12}|[0-9a-f]{16}")


def peer_id(client: Client, text: str) -> str:
    """The uid (or `self`, or a fingerprint) a PEER argument names; names are looked up."""
    if text == "self" or _PEER_ID.fullmatch(text):
        return text
    named = [p for p in client.call("GET", "/peers", list[PeerInfo]) if p.name == text and p.uid]
    if len(named) == 1:
        return "self" if named[0].is_self else named[0].uid
    if not named:
        raise CtlError(f"no peer named {text!r} (rocd ctl peers list shows them)", EXIT_NOT_FOUND)
    raise CtlError(f"{len(named)} peers are named {text!r}: give the uid of one", EXIT_USAGE)


# -- peers ------------------------------------------------------------------------------


def peers_list(c: Client, a: argparse.Namespace) -> Shown:
    query = {"state": a.state} if a.state else None
    return c.call("GET", "/peers", list[PeerInfo], query=query), views.peers


def peers_get(c: Client, a: argparse.Namespace) -> Shown:
    return c.call("GET", f"/peers/{segment(peer_id(c, a.peer))}", PeerInfo), views.fields


def peers_create(c: Client, a: argparse.Namespace) -> Shown:
    if not a.uid and not (a.address and a.key):
        raise CtlError("give --address and --key, or --uid of a discovered instance", EXIT_USAGE)
    body = checked(
        {"address": a.address or "", "key": a.key or "", "uid": a.uid or "", "role": a.role},
        PeerCreate,
    )
    return c.call("POST", "/peers", PeerInfo, body=body), views.fields


def peers_set(c: Client, a: argparse.Namespace) -> Shown:
    if a.name is None and a.role is None:
        raise CtlError("nothing to change: give --name or --role", EXIT_USAGE)
    path = f"/peers/{segment(peer_id(c, a.peer))}"
    info: PeerInfo | None = None
    if a.name is not None:
        info = c.call("PUT", path, PeerInfo, body=checked({"name": a.name}, PeerUpdate))
    if a.role is not None:
        info = c.call("PUT", f"{path}/role", PeerInfo, body=checked({"role": a.role}, RoleUpdate))
    return info, views.fields


def peers_delete(c: Client, a: argparse.Namespace) -> Shown:
    c.call("DELETE", f"/peers/{segment(peer_id(c, a.peer))}", type(None))
    return None, str


def peers_invite(c: Client, a: argparse.Namespace) -> Shown:
    body = checked({"role": a.role, "ttl_s": a.ttl}, InviteCreate)
    made = c.call("POST", "/cluster/invites", InviteCreated, body=body)

    def show(invite: InviteCreated) -> str:
        print(
            f"invite {invite.id} ({invite.role}); join with: rocd ctl peers join TOKEN",
            file=sys.stderr,
        )
        return invite.token

    return made, show


def peers_join(c: Client, a: argparse.Namespace) -> Shown:
    body = checked({"token": a.invite}, JoinBody)
    return c.call("POST", "/cluster/join", PeerInfo, body=body), views.fields


# -- devices and VADs -------------------------------------------------------------------


def devices_list(c: Client, a: argparse.Namespace) -> Shown:
    path = f"/peers/{segment(peer_id(c, a.peer))}/devices"
    return c.call("GET", path, DeviceList), views.devices


def device_path(c: Client, a: argparse.Namespace) -> str:
    return f"/peers/{segment(peer_id(c, a.peer))}/devices/{segment(a.id)}"


def devices_get(c: Client, a: argparse.Namespace) -> Shown:
    return c.call("GET", device_path(c, a), Device), views.device


def devices_set(c: Client, a: argparse.Namespace) -> Shown:
    update: dict[str, Any] = {
        k: v
        for k, v in {
            "name": a.name,
            "volume": a.volume,
            "mute": a.mute,
            "enabled": a.enabled,
            "rate": a.rate,
            "channels": a.channels,
            "latency_ms": a.latency_ms,
        }.items()
        if v is not None
    }
    for name in a.reset:
        update[name] = None
    if not update:
        raise CtlError(
            "nothing to change: give --name, --volume, --mute, ... or --reset", EXIT_USAGE
        )
    body = checked(update, DeviceUpdate)
    return c.call("PUT", device_path(c, a), Device, body=body), views.device


def vads_path(c: Client, a: argparse.Namespace, uid: str | None = None) -> str:
    path = f"/peers/{segment(peer_id(c, a.peer))}/vads"
    return path if uid is None else f"{path}/{segment(uid)}"


def vads_list(c: Client, a: argparse.Namespace) -> Shown:
    return c.call("GET", vads_path(c, a), list[Vad]), views.vads


def vads_get(c: Client, a: argparse.Namespace) -> Shown:
    return c.call("GET", vads_path(c, a, a.uid), Vad), views.fields


def vads_create(c: Client, a: argparse.Namespace) -> Shown:
    given = {"name": a.name, "kind": a.kind, "driver": a.driver, "rate": a.rate}
    given["channels"] = a.channels
    body = checked({k: v for k, v in given.items() if v is not None}, VadCreate)
    return c.call("POST", vads_path(c, a), Vad, body=body), views.fields


def vads_set(c: Client, a: argparse.Namespace) -> Shown:
    given = {"name": a.name, "rate": a.rate, "channels": a.channels}
    update = {k: v for k, v in given.items() if v is not None}
    if not update:
        raise CtlError("nothing to change: give --name, --rate or --channels", EXIT_USAGE)
    body = checked(update, VadUpdate)
    return c.call("PUT", vads_path(c, a, a.uid), Vad, body=body), views.fields


def vads_delete(c: Client, a: argparse.Namespace) -> Shown:
    c.call("DELETE", vads_path(c, a, a.uid), type(None))
    return None, str


# -- streams ----------------------------------------------------------------------------


def external(uris: list[str], side: str) -> dict[str, str]:
    """Roc endpoint URIs (any order) as {source, repair, control}, by their scheme."""
    slots: dict[str, str] = {}
    for uri in uris:
        scheme = uri.split("://", 1)[0] if "://" in uri else ""
        slot = {"rs8m": "repair", "ldpc": "repair", "rtcp": "control"}.get(scheme)
        slot = slot or ("source" if scheme.startswith("rtp") else "")
        if not slot or slot in slots:
            raise CtlError(
                f"--{side}-external {uri!r}: give one rtp[+fec]:// source URI, at most one "
                "rs8m:// or ldpc:// repair URI and one rtcp:// control URI",
                EXIT_USAGE,
            )
        slots[slot] = uri
    if "source" not in slots:
        raise CtlError(f"--{side}-external needs an rtp:// (or rtp+FEC://) source URI", EXIT_USAGE)
    return slots


def end(c: Client, a: argparse.Namespace, side: str) -> dict[str, Any]:
    device, vad = getattr(a, side), getattr(a, f"{side}_vad")
    uris, peer = getattr(a, f"{side}_external"), getattr(a, f"{side}_peer")
    if sum(x is not None for x in (device, vad, uris)) != 1:
        raise CtlError(
            f"give the {side}: --{side} DEVICE, --{side}-vad UID or --{side}-external URI...",
            EXIT_USAGE,
        )
    if uris is not None:
        if peer is not None:
            raise CtlError(f"an external {side} names no peer (--{side}-peer)", EXIT_USAGE)
        return {"external": external(uris, side)}
    where = peer_id(c, peer or "self")
    return {"peer": where, "device": device} if device is not None else {"peer": where, "vad": vad}


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


#: No stream setting nests more than a few levels; hundreds exhaust the recursion.
_TOO_DEEP = "--settings: JSON nested too deeply (stream settings nest a few levels)"


def streams_create(c: Client, a: argparse.Namespace) -> Shown:
    settings: dict[str, Any] = {}
    latency: dict[str, Any] = {}
    if a.profile:
        latency["profile"] = a.profile
    if a.latency is not None:
        latency["target_ms"] = a.latency
    if latency:
        settings["latency"] = latency
    if a.fec:
        settings["fec"] = {"scheme": a.fec}
    if a.volume is not None:
        settings["volume"] = a.volume
    if a.settings:
        try:
            extra = json.loads(a.settings)
        except json.JSONDecodeError as exc:
            raise CtlError(f"--settings: not JSON: {exc}", EXIT_USAGE) from None
        except RecursionError:
            raise CtlError(_TOO_DEEP, EXIT_USAGE) from None
        if not isinstance(extra, dict):
            raise CtlError("--settings: give a JSON object", EXIT_USAGE)
        settings = merged(settings, extra)
    source, destination = end(c, a, "source"), end(c, a, "destination")
    try:
        body = checked(
            {"source": source, "destination": destination, "settings": settings}, StreamCreate
        )
    except RecursionError:  # nesting json.loads took, too deep for the conversion
        raise CtlError(_TOO_DEEP, EXIT_USAGE) from None
    return c.call("POST", "/streams", Stream, body=body), views.stream


def streams_list(c: Client, a: argparse.Namespace) -> Shown:
    return c.call("GET", "/streams", list[Stream]), views.streams


def streams_get(c: Client, a: argparse.Namespace) -> Shown:
    return c.call("GET", f"/streams/{segment(a.uid)}", Stream), views.stream


def streams_metrics(c: Client, a: argparse.Namespace) -> Shown:
    return c.call("GET", f"/streams/{segment(a.uid)}/metrics", StreamMetrics), views.metrics


def streams_set(c: Client, a: argparse.Namespace) -> Shown:
    patch: dict[str, Any] = {}
    if a.volume is not None:
        patch["volume"] = a.volume
    bounds = {k: v for k, v in (("min_ms", a.min_latency), ("max_ms", a.max_latency)) if v}
    if bounds:
        patch["latency"] = bounds
    if not patch:
        raise CtlError(
            "nothing to change: give --volume, --min-latency or --max-latency", EXIT_USAGE
        )
    body = checked(patch, StreamPatch)
    return c.call("PATCH", f"/streams/{segment(a.uid)}", Stream, body=body), views.stream


def streams_delete(c: Client, a: argparse.Namespace) -> Shown:
    c.call("DELETE", f"/streams/{segment(a.uid)}", type(None))
    return None, str


# -- events -----------------------------------------------------------------------------


def events(c: Client, a: argparse.Namespace) -> Shown:
    query = {"kind": a.kind} if a.kind else {}
    if a.peer:
        query["peer"] = peer_id(c, a.peer)
    wanted = None if a.follow else a.count
    trio.run(follow_events, c, query, wanted, a.within, a.json)
    return None, str


#: The verbs by the name the parser gives them (rocd.cli._ctl).
VERBS: dict[str, Callable[[Client, argparse.Namespace], Shown]] = {
    "peers_list": peers_list,
    "peers_get": peers_get,
    "peers_create": peers_create,
    "peers_set": peers_set,
    "peers_delete": peers_delete,
    "peers_invite": peers_invite,
    "peers_join": peers_join,
    "devices_list": devices_list,
    "devices_get": devices_get,
    "devices_set": devices_set,
    "vads_list": vads_list,
    "vads_get": vads_get,
    "vads_create": vads_create,
    "vads_set": vads_set,
    "vads_delete": vads_delete,
    "streams_list": streams_list,
    "streams_get": streams_get,
    "streams_metrics": streams_metrics,
    "streams_create": streams_create,
    "streams_set": streams_set,
    "streams_delete": streams_delete,
    "events": events,
}
