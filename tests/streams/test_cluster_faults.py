"""The two-phase setup across two instances (processes paired through the cluster) under
faults at every step: a failing step rolls both back, and after a kill -9 of either
instance at any step no half-made stream is left on either side once they are back.

A is the coordinator and holds the source; B holds the destination. A fault is set on
the instance that performs the step (B for the receiver's steps, A for the sender's),
through a faults file each daemon reads at every step, so the daemons that are not
killed keep running from one case to the next.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rocd.actors._stream_faults import STEPS
from tests.cluster.instances import Instance, wait_for

from .cluster import delete_all, instance, mesh, uids

pytestmark = pytest.mark.slow


class Pair:
    def __init__(self, a: Instance, b: Instance, root: Path) -> None:
        self.a, self.b, self.root = a, b, root

    def faults(self, node: Instance) -> Path:
        return self.root / f"{node.name}.faults"

    def set_fault(self, node: Instance, text: str) -> None:
        self.faults(node).write_text(text)

    def clear(self) -> None:
        for node in (self.a, self.b):
            self.set_fault(node, "")

    def post(self) -> httpx.Response:
        return self.a.post(
            "/streams",
            {
                "source": {"peer": "self", "device": "tone:sine"},
                "destination": {"peer": self.b.uid, "device": "tone:null"},
            },
        )


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("faults")
    nodes = [
        instance(name, root, env={"ROCD_FAULTS_FILE": str(root / f"{name}.faults")})
        for name in ("a", "b")
    ]
    pair = Pair(nodes[0], nodes[1], root)
    pair.clear()
    try:
        mesh(nodes)
        yield pair
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture
def clean(pair: Pair) -> Iterator[Pair]:
    pair.clear()
    yield pair
    pair.clear()
    delete_all([pair.a, pair.b])


def victim(pair: Pair, step: str) -> Instance:
    return pair.b if step.endswith("receiver") else pair.a


def wait_nothing_left(pair: Pair, timeout: float = 5.0) -> float:
    """Seconds until neither instance lists a stream (nor exports an end)."""
    _, took = wait_for(
        "no stream left on either side",
        lambda: (uids(pair.a), uids(pair.b)),
        lambda both: both == ([], []),
        timeout,
    )
    for node in (pair.a, pair.b):
        assert "rocd_stream_state" not in node.get("/metrics").text
    return took


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("step", STEPS)
def test_a_failing_step_on_either_side_rolls_both_back(clean: Pair, step: str, when: str) -> None:
    node = victim(clean, step)
    clean.set_fault(node, f"{step}.{when}=fail")
    r = clean.post()
    assert r.status_code == 503, r.text
    side = "destination" if step.endswith("receiver") else "source"
    body = r.json()
    assert body["message"].startswith(f"{side} ({step}): injected fault"), body
    assert {"end": side, "peer": node.uid, "step": step} in body["details"]
    clean.clear()
    assert wait_nothing_left(clean, 1.0) < 1.0


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("step", STEPS)
def test_a_kill_of_either_side_at_any_step_leaves_no_half_stream(
    clean: Pair, step: str, when: str
) -> None:
    node = victim(clean, step)
    other = clean.a if node is clean.b else clean.b
    clean.set_fault(node, f"{step}.{when}=kill")
    try:
        r = clean.post()
    except httpx.TransportError:
        assert node is clean.a  # the coordinator itself was killed mid-request
    else:
        assert node is clean.b
        assert r.status_code in (503, 504), r.text
    assert node.proc is not None
    assert node.proc.wait(timeout=10) == -9
    clean.clear()
    node.start()
    t0 = time.monotonic()
    other.wait_state(node, "online", 20)
    node.wait_state(other, "online", 20)
    back = time.monotonic() - t0
    if (step, when) == ("commit_sender", "after"):
        # Both ends were committed before the kill: the stream is whole (only the answer
        # to the POST was lost), and it plays again on both sides.
        (uid,) = uids(clean.a)
        assert uids(clean.b) == [uid]
        stream, took = wait_for(
            "the whole stream to play",
            lambda: clean.b.get(f"/streams/{uid}").json(),
            lambda s: s["state"] == "active",
            5.0,
        )
        assert sorted((e["role"], e["peer"]) for e in stream["ends"]) == [
            ("receiver", clean.b.uid),
            ("sender", clean.a.uid),
        ]
        print(f"{step}.{when}: whole again {back + took:.2f} s after the restart")
    else:
        took = wait_nothing_left(clean)
        print(f"{step}.{when}: nothing left {back + took:.2f} s after the restart")


def test_a_stream_to_an_offline_peer_is_refused_without_a_false_alarm(clean: Pair) -> None:
    a, b = clean.a, clean.b
    assert b.stop() == 0
    try:
        a.wait_state(b, "offline", 10)
        r = clean.post()
        assert r.status_code == 503, r.text
        assert "offline" in r.json()["message"]
        assert uids(a) == []
        # Nothing was prepared on b: no warning that its end could not be aborted.
        assert "WARNING rocd.streams: stream" not in a.log()
    finally:
        b.start()
        a.wait_state(b, "online", 20)
        b.wait_state(a, "online", 20)
