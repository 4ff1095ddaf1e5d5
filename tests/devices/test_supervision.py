"""A driver call that fails crashes the device actor, never the daemon.

The audio service runs here on a tone driver whose volume control can be made to fail,
under a root supervisor like the daemon's, with a real store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from rocd.actors import (
    AudioService,
    DeviceUpdate,
    DriverSpec,
    GetDevice,
    Registry,
    Store,
    Supervisor,
    UpdateDevice,
)
from rocd.audio import AudioDriver, AudioError, SampleSpec, ToneDriver
from rocd.errors import ActorCrashed, ActorGone


class FlakyTone(ToneDriver):
    """A tone driver whose volume control fails while `failing` is set."""

    def __init__(self) -> None:
        super().__init__(SampleSpec(48000, 2))
        self.failing = False

    async def set_volume(self, device_id: str, volume: float) -> None:
        if self.failing:
            await trio.lowlevel.checkpoint()
            raise AudioError("the backend exploded")
        await super().set_volume(device_id, volume)


@asynccontextmanager
async def held(driver: AudioDriver) -> AsyncIterator[AudioDriver]:
    yield driver


class Tree:
    def __init__(self, tmp_path: Path) -> None:
        self.registry = Registry()
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        # The daemon's root has 5 restarts in 10 s; scaled down here with the pause.
        self.root = Supervisor(
            "root", registry=self.registry, publish=self.publish, max_restarts=5, within=1.0
        )
        self.store = Store(tmp_path / "state.db")
        self.driver = FlakyTone()
        self.audio = AudioService(
            "peer0",
            [DriverSpec("tone", partial(held, self.driver))],
            store=self.store.ref,
            publish=self.publish,
            registry=self.registry,
        )
        self.audio.restart_pause = 0.3  # 5 restarts take > 1 s: the root never gives up

    def publish(self, kind: str, subject: str, data: dict[str, Any]) -> None:
        self.events.append((kind, subject, data))

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [data for k, _, data in self.events if k == kind]

    async def set_volume(self, volume: float) -> Any:
        ref = self.registry.lookup("device", "tone:sine")
        return await ref.ask(UpdateDevice(DeviceUpdate(volume=volume)))


@pytest.fixture
async def tree(nursery: trio.Nursery, tmp_path: Path) -> Tree:
    t = Tree(tmp_path)
    await nursery.start(t.root.run)
    await t.root.start_child(t.store)
    await t.root.start_child(t.audio)
    return t


async def test_a_failing_call_crashes_and_restarts_the_device_alone(tree: Tree) -> None:
    with trio.fail_after(10):
        tree.driver.failing = True
        with pytest.raises(ActorCrashed, match="the backend exploded"):
            await tree.set_volume(0.5)
        # Restarted in place: the same ref answers (once the new incarnation runs, so
        # the crash has been recorded by then), the others never noticed.
        ref = tree.registry.lookup("device", "tone:sine")
        assert (await ref.ask(GetDevice())).volume == 1.0
        (crash,) = tree.kinds("actor.crashed")
        assert crash["actor"] == "device/tone:sine"
        assert "the backend exploded" in crash["error"]
        tree.driver.failing = False
        assert (await tree.set_volume(0.5)).volume == 0.5
        assert tree.kinds("actor.restarted") == [{"actor": "device/tone:sine", "restarts": 1}]
        assert tree.audio.ref.alive


async def test_a_flood_of_failures_never_brings_the_root_down(tree: Tree) -> None:
    with trio.fail_after(20):
        tree.driver.failing = True
        end = trio.current_time() + 2.0
        crashes = 0
        while trio.current_time() < end:
            if tree.registry.find("device", "tone:sine") is None:
                await trio.sleep(0.01)  # the service is restarting
                continue
            try:
                await tree.set_volume(0.5)
            except (ActorCrashed, ActorGone):
                crashes += 1
        gave_up = [d["supervisor"] for d in tree.kinds("supervisor.gave_up")]
        assert "devices" in gave_up
        assert "root" not in gave_up
        audio_restarts = [d for d in tree.kinds("actor.restarted") if d["actor"] == "audio/peer0"]
        assert len(audio_restarts) >= 2
        assert crashes > 10
        # Once the backend behaves, everything works again.
        tree.driver.failing = False
        while tree.registry.find("device", "tone:sine") is None:  # noqa: ASYNC110
            await trio.sleep(0.01)
        assert (await tree.set_volume(0.25)).volume == 0.25
        assert tree.audio.ref.alive
