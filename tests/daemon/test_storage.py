"""A disk that takes no writes never stops the daemon: 503s, an event, degraded, recovered.

The state directory is a real small filesystem (tmpfs, mounted for the test: needs root,
as CI has), filled up or remounted read-only while the daemon runs.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from tests.client import EventFeed, RunningDaemon, device_path, events, running_daemon


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root (CI runs as root)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "rocd-test-state", str(mnt)],
        check=True,
        capture_output=True,
    )
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk` with one file; returns it (delete it to free them)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1 << 8, 1):
            with pytest.raises(OSError, match="No space left") as full:  # noqa: PT012
                while True:
                    os.write(fd, b"\0" * size)
            assert full.value.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def remount(disk: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], check=True, capture_output=True)


async def renames(rocd: RunningDaemon, count: int) -> list[int]:
    statuses = []
    for i in range(count):
        r = await rocd.http.put("/peers/self", json={"name": f"Attempt {i}"})
        statuses.append(r.status_code)
        if r.status_code == 503:
            body = r.json()
            assert body["error"] == "storage"
            assert body["message"].startswith("state not saved: ")
            assert "Error" not in body["message"]  # no exception reprs
    return statuses


async def wait_health(rocd: RunningDaemon, status: str, within: float = 8.0) -> dict[str, object]:
    with trio.fail_after(within):
        while True:
            health: dict[str, object] = (await rocd.http.get("/health")).json()
            if health["status"] == status:
                return health
            await trio.sleep(0.1)


async def check_refused_then_recovered(
    rocd: RunningDaemon, feed: EventFeed, problem: str, restore: Callable[[], object]
) -> None:
    statuses = await renames(rocd, 20)
    # A write may still fit in space the file had; after the first refusal, all are.
    first = statuses.index(503)
    assert statuses[first:] == [503] * (20 - first), statuses
    health = await wait_health(rocd, "degraded")
    store = health["store"]
    assert isinstance(store, dict)
    assert store["ok"] is False
    assert problem in store["error"]
    assert health["crashes"] == 0  # the environment is not a bug: nothing restarted
    # Device settings are refused too, and nothing changes.
    tone = device_path("tone:sine")
    before = (await rocd.http.get(tone)).json()
    r = await rocd.http.put(tone, json={"volume": 0.25})
    assert r.status_code == 503
    assert (await rocd.http.get(tone)).json() == before
    # Still serving.
    assert (await rocd.http.get("/peers/self")).status_code == 200

    restore()
    await feed.kind("store.recovered")
    health = await wait_health(rocd, "ok")
    assert health["store"] == {"ok": True, "error": ""}
    r = await rocd.http.put("/peers/self", json={"name": "Recovered"})
    assert r.status_code == 200
    assert (await rocd.http.put(tone, json={"volume": 0.25})).json()["volume"] == 0.25


async def test_a_full_disk_is_503_and_the_daemon_recovers(small_disk: Path) -> None:
    async with running_daemon(small_disk) as rocd, events(rocd, "store.") as feed:
        filler = fill(small_disk)
        await check_refused_then_recovered(rocd, feed, "full", filler.unlink)
        assert "full" in (await feed.kind("store.error"))["data"]["error"]
    async with running_daemon(small_disk) as again:
        assert (await again.http.get("/peers/self")).json()["name"] == "Recovered"


async def test_a_read_only_state_file_is_503_and_the_daemon_recovers(small_disk: Path) -> None:
    async with running_daemon(small_disk) as rocd:
        assert (await rocd.http.put("/peers/self", json={"name": "Before"})).status_code == 200
    remount(small_disk, "ro")
    # It starts on a read-only state file, reads it, and says so at once.
    async with running_daemon(small_disk) as rocd, events(rocd, "store.") as feed:
        assert (await rocd.http.get("/peers/self")).json()["name"] == "Before"
        health = await wait_health(rocd, "degraded", within=1.0)
        assert health["store"] == {"ok": False, "error": "the state file is read-only"}
        await check_refused_then_recovered(
            rocd, feed, "read-only", lambda: remount(small_disk, "rw")
        )
    async with running_daemon(small_disk) as again:
        assert (await again.http.get("/peers/self")).json()["name"] == "Recovered"


async def test_a_stream_whose_commit_cannot_be_saved_is_rolled_back(small_disk: Path) -> None:
    """A committed end plays before it is saved (its first packet does not wait for the
    disk); a save that fails still fails the setup, which removes both ends."""
    body = {
        "source": {"peer": "self", "device": "tone:sine"},
        "destination": {"peer": "self", "device": "tone:null"},
    }
    async with running_daemon(small_disk) as rocd:
        filler = fill(small_disk)
        try:
            r = await rocd.http.post("/streams", json=body)
            assert r.status_code == 503, r.text
            assert r.json()["error"] == "storage"
            assert {"end": "destination", "step": "commit_receiver"}.items() <= (
                r.json()["details"][-1].items()
            )
            assert (await rocd.http.get("/streams")).json() == []
        finally:
            filler.unlink()
        await wait_health(rocd, "ok")
        r = await rocd.http.post("/streams", json=body)
        assert r.status_code == 201, r.text
        assert [e["role"] for e in r.json()["ends"]] == ["receiver", "sender"]
