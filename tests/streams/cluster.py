"""Instances of a cluster (processes paired over ZeroMQ) for stream tests: their config,
the session's PulseAudio if asked, and the stream calls the tests make."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.cluster.instances import Instance, start_all
from tests.pulse_server import PulseServer

QUIET = "[cluster]\ndiscovery = false\n"

#: Silence before the signal of a test file (samples at 44.1 kHz). A receiver that starts
#: late (a loaded machine) drops what it holds beyond its target latency, to the sample:
#: from this silence, not from the signal compared.
LEAD = 8820


def with_lead(frames: Any) -> Any:
    """`frames` after `LEAD` samples of silence (what a test file holds)."""
    return np.concatenate([np.zeros((LEAD, frames.shape[1]), frames.dtype), frames])


def after_lead(played: Any) -> Any:
    """What a receiver must play of a file written by `with_lead`, once the parts a
    sender does not send (see `whole_packets`, `whole_fec_blocks`) are cut: `played`."""
    return played[LEAD:]


def instance(
    name: str,
    root: Path,
    pulse: PulseServer | None = None,
    *,
    extra: str = "",
    **kw: Any,
) -> Instance:
    """An instance using `pulse` (the session's sound server) or no sound server."""
    env: dict[str, str] = dict(kw.pop("env", {}))
    if pulse is not None:
        audio = f'[audio]\npulse = "system"\npulse_server = "{pulse.env["PULSE_SERVER"]}"\n'
        env.update({k: v for k, v in pulse.client_env().items() if k.startswith("PULSE")})
    else:
        audio = '[audio]\npulse = "off"\n'
    files = root / name / "files"
    files.mkdir(parents=True, exist_ok=True)
    return Instance(name, root, audio + extra + QUIET, env=env, **kw)


def files_of(node: Instance) -> Path:
    return node.state_dir / "files"


def mesh(nodes: list[Instance], *, start: bool = True) -> None:
    """Start the instances and pair each with each; back when all list all online."""
    if start:
        start_all(nodes)
    for one in nodes:
        for other in nodes:
            if one is not other:
                r = one.pair(other)
                assert r.status_code == 201, r.text
    for one in nodes:
        for other in nodes:
            if one is not other:
                one.wait_state(other, "online", 20)


def end(node: Instance, what: str) -> dict[str, str]:
    """A device (or `vad:UID`) end on `node`."""
    if what.startswith("vad:"):
        return {"peer": node.uid, "vad": what[4:]}
    return {"peer": node.uid, "device": what}


def create(coordinator: Instance, source: dict[str, Any], destination: dict[str, Any],
           **settings: Any) -> dict[str, Any]:  # fmt: skip
    r = coordinator.post(
        "/streams", {"source": source, "destination": destination, "settings": settings}
    )
    assert r.status_code == 201, r.text
    stream: dict[str, Any] = r.json()
    return stream


def stream_of(node: Instance, uid: str) -> dict[str, Any]:
    r = node.get(f"/streams/{uid}")
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


def wait_stream(
    node: Instance, uid: str, *states: str, timeout: float = 15.0
) -> tuple[dict[str, Any], float]:
    """Wait until `node` shows the stream in one of `states`; (stream, seconds taken)."""
    t0 = time.monotonic()
    stream: dict[str, Any] = {}
    while time.monotonic() - t0 < timeout:
        r = node.get(f"/streams/{uid}")
        if r.status_code == 200:
            stream = r.json()
            if stream["state"] in states:
                return stream, time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"stream {uid} not {states} on {node.name} in {timeout:g} s: {stream}")


def uids(node: Instance) -> list[str]:
    r = node.get("/streams")
    assert r.status_code == 200, r.text
    return [s["uid"] for s in r.json()]


def delete_all(nodes: list[Instance]) -> None:
    for node in nodes:
        for uid in uids(node):
            node.delete(f"/streams/{uid}")
