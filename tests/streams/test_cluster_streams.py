"""A stream between two paired instances (processes, cluster over ZeroMQ): one call."""

from __future__ import annotations

from pathlib import Path

from tests.cluster.instances import Instance, start_all, wait_for


def test_a_stream_between_two_paired_instances_is_one_call(tmp_path: Path) -> None:
    a, b = Instance("a", tmp_path), Instance("b", tmp_path)
    start_all([a, b])
    try:
        a.pair(b)
        b.pair(a)
        a.wait_state(b, "online")
        b.wait_state(a, "online")
        r = a.post(
            "/streams",
            {
                "source": {"peer": "self", "device": "tone:sine"},
                "destination": {"peer": b.uid, "device": "tone:null"},
            },
        )
        assert r.status_code == 201, r.text
        stream = r.json()
        assert {(e["role"], e["peer"]) for e in stream["ends"]} == {
            ("receiver", b.uid),
            ("sender", a.uid),
        }
        uid = stream["uid"]
        wait_for(
            "the stream to play",
            lambda: a.get(f"/streams/{uid}").json()["state"],
            lambda state: state == "active",
        )
        metrics = a.get(f"/streams/{uid}/metrics").json()
        receiver = next(e for e in metrics["ends"] if e["role"] == "receiver")
        assert receiver["peer"] == b.uid
        assert receiver["receiver"]["packetsReceived"] > 50
        assert [s["uid"] for s in b.get("/streams").json()] == [uid]
        assert a.delete(f"/streams/{uid}").status_code == 204
        assert b.get("/streams").json() == []
    finally:
        a.stop()
        b.stop()
