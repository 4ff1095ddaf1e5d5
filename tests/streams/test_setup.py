"""The two-phase setup under faults, with real daemons: a failure, a hang or a kill -9 at
any step leaves no half-made stream, also once the daemon is back; streams come back
after a restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from rocd.actors._stream_faults import STEPS

from .conftest import Rocd, device

SOURCE = device("tone:sine")
DESTINATION = device("tone:null")


def no_ends_left(rocd: Rocd) -> None:
    assert rocd.streams() == []
    metrics = rocd.http.get("/metrics").text
    assert "rocd_stream_state" not in metrics, metrics


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("step", STEPS)
def test_a_failing_step_rolls_both_ends_back(tmp_path: Path, step: str, when: str) -> None:
    rocd = Rocd(tmp_path, env={"ROCD_FAULTS": f"{step}.{when}=fail"}).start()
    try:
        r = rocd.http.post("/streams", json={"source": SOURCE, "destination": DESTINATION})
        assert r.status_code == 503, r.text
        body = r.json()
        side = "destination" if step.endswith("receiver") else "source"
        assert body["message"].startswith(f"{side} ({step}): injected fault"), body
        assert {"end": side, "peer": rocd.uid(), "step": step} in body["details"]
        no_ends_left(rocd)
    finally:
        rocd.kill()
    rocd.env = {}
    rocd.start()  # nothing was left in the store either
    try:
        no_ends_left(rocd)
    finally:
        rocd.kill()


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("step", STEPS)
def test_a_kill_at_any_step_leaves_no_half_stream(tmp_path: Path, step: str, when: str) -> None:
    rocd = Rocd(tmp_path, env={"ROCD_FAULTS": f"{step}.{when}=kill"}).start()
    try:
        with pytest.raises(httpx.TransportError):
            rocd.http.post("/streams", json={"source": SOURCE, "destination": DESTINATION})
        assert rocd.wait_dead() == -9
    finally:
        rocd.kill()
    rocd.env = {}
    rocd.start()
    try:
        streams = rocd.streams()
        if step == "commit_sender" and when == "after":
            # Both ends were committed before the kill: the stream is whole (only its
            # answer was lost), and it plays again.
            (stream,) = streams
            assert sorted(e["role"] for e in stream["ends"]) == ["receiver", "sender"]
            rocd.wait_state(stream["uid"], "active")
        else:
            no_ends_left(rocd)
    finally:
        rocd.kill()


def test_a_hung_step_times_out_and_is_undone(tmp_path: Path) -> None:
    rocd = Rocd(tmp_path, env={"ROCD_FAULTS": "prepare_sender.after=hang"}).start()
    try:
        start = time.monotonic()
        r = rocd.http.post("/streams", json={"source": SOURCE, "destination": DESTINATION})
        assert r.status_code == 504, r.text
        assert "rolled back" in r.json()["message"]
        assert time.monotonic() - start < 7.5
        # The hung host resumes after the hang and takes the queued aborts.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if rocd.streams() == [] and "rocd_stream_state" not in rocd.http.get("/metrics").text:
                break
            time.sleep(0.5)
        no_ends_left(rocd)
    finally:
        rocd.kill()


def test_streams_come_back_after_a_restart(tmp_path: Path) -> None:
    rocd = Rocd(tmp_path).start()
    try:
        stream = rocd.create(SOURCE, DESTINATION, latency={"profile": "lan"}, volume=0.8)
        rocd.wait_state(stream["uid"], "active")
        r = rocd.http.patch(f"/streams/{stream['uid']}", json={"volume": 0.6})
        assert r.status_code == 200, r.text
        started = time.monotonic()
        assert rocd.stop() == 0
        assert time.monotonic() - started < 3.0
        rocd.start()
        back = rocd.wait_state(stream["uid"], "active")
        assert back["settings"]["volume"] == 0.6  # the live change was kept
        assert back["ends"] == [
            {**end, "state": "active", "reason": ""}
            for end in stream["ends"]  # the receiver listens on the same ports
        ]
        rocd.delete(stream["uid"])
        assert rocd.streams() == []
        rocd.stop()
        rocd.start()
        assert rocd.streams() == []
    finally:
        rocd.kill()
