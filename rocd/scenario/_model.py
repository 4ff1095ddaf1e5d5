"""What a scenario file holds: msgspec structs, the single source of its schema.

A scenario is a TOML file: the nodes (rocd instances, each a process with its own state
directory, on loopback or in a network namespace of its own), the links between them with
what the network does to their packets, and the steps, in order. Every step does one
thing (its *action* key says which) and may say what must then be true (`expect`). See
scenarios/README.md for the whole reference; `_load.py` checks what types cannot (names,
references, order) and names the line of every error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "ACTIONS",
    "PROFILES",
    "LinkSpec",
    "NodeSpec",
    "Scenario",
    "Step",
]

Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,15}$")]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]
Probability = Annotated[float, msgspec.Meta(ge=0, le=1)]
Millis = Annotated[float, msgspec.Meta(ge=0, le=60_000)]
Hz = Annotated[float, msgspec.Meta(gt=0, lt=24000)]


class NodeSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One rocd instance."""

    #: Extra daemon configuration, merged over the runner's (as in a config file).
    config: dict[str, Any] = {}
    #: None: on 127.0.0.1. "lan": a network namespace with its own address on the
    #: scenario's LAN. "nat": a namespace behind a NAT router of its own on that LAN
    #: (it dials out; nothing on the LAN can dial it).
    netns: Literal["lan", "nat"] | None = None
    #: A sound server for the node (a private headless PulseAudio the daemon runs).
    sound: bool = True
    #: Files put in the node's files directory before it starts (each one a source
    #: device `file:source:NAME`): NAME -> a signal ("chirp:2", "noise:2",
    #: "sine:440:2", "silence:1") or a path relative to the scenario file.
    files: dict[str, str] = {}
    #: Start it with the others (false: a `start` step starts it later).
    start: bool = True


#: Named impairment profiles; a link's own fields override the profile's.
PROFILES: dict[str, dict[str, float]] = {
    "clean": {},
    "wifi": {"loss": 0.05, "jitter_ms": 30.0},
    "lossy": {"loss": 0.1, "burst": 3.0},
    "internet": {"delay_ms": 40.0, "jitter_ms": 20.0, "loss": 0.01},
    "thin": {"rate_kbps": 1000.0, "delay_ms": 20.0},
}


class LinkSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True, rename={"from_": "from"}):
    """What the network does to UDP packets from one node to another (both in namespaces),
    applied in the receiving node's namespace by the seeded impairment model."""

    from_: Name
    to: Name
    profile: str | None = None
    loss: Probability | None = None
    burst: Annotated[float, msgspec.Meta(ge=1, le=1000)] | None = None  # mean burst, packets
    delay_ms: Millis | None = None
    jitter_ms: Millis | None = None
    reorder: Probability | None = None
    reorder_ms: Millis | None = None
    rate_kbps: Annotated[float, msgspec.Meta(gt=0, le=10_000_000)] | None = None
    seed: int = 1

    def values(self) -> dict[str, float]:
        """The profile's values with this link's own over them."""
        out = dict(PROFILES.get(self.profile or "clean", {}))
        for name in (
            "loss",
            "burst",
            "delay_ms",
            "jitter_ms",
            "reorder",
            "reorder_ms",
            "rate_kbps",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = float(value)
        return out


#: The action keys of a step, one per step; the order is the one `kind` reports.
ACTIONS = (
    "call",
    "event",
    "metrics",
    "pair",
    "sleep_s",
    "play",
    "record",
    "audio",
    "run",
    "kill",
    "stop",
    "start",
    "restart",
    "cut",
    "heal",
    "stop_sound",
)


class Step(msgspec.Struct, forbid_unknown_fields=True, frozen=True, rename={"as_": "as"}):
    """One step. Exactly one action key; the others qualify it.

    Actions:
      call = "METHOD /path"   an API call on `node` (`body`: JSON); with `until`, repeated
                              until it holds (a wait for a condition)
      event = "KIND"          wait for an event on `node`'s WebSocket (a kind, or a
                              family ending in "."), matching `until`; `absent`: none
      metrics = "STREAM"      a stream's metrics on `node` (its `role` end)
      pair = ["a", "b"]       trust each other both ways (and wait until linked)
      sleep_s = 1.5           let time pass
      play = "SIGNAL"         play a signal or file into a sink of `node` (paplay);
                              `as` names it for `audio`
      record = "SINK"         record a sink's monitor (or a source) on `node`, `as` NAME
      audio = "NAME"          stop a recording and compare it with `sent`
      run = "COMMAND"         run a command on `node`'s host (in its namespace)
      kill / stop / start / restart = "NODE"   kill -9 / SIGTERM / start / stop+start
      cut / heal = ["a", "b"] drop / let through every packet between two nodes
      stop_sound = "NODE"     kill the node's sound server (the daemon makes a new one)
    """

    name: str | None = None
    node: Name | None = None
    # -- actions
    call: str | None = None
    event: str | None = None
    metrics: str | None = None
    pair: list[Name] | None = None
    sleep_s: Seconds | None = None
    play: str | None = None
    record: str | None = None
    audio: str | None = None
    run: str | list[str] | None = None
    kill: Name | None = None
    stop: Name | None = None
    start: Name | None = None
    restart: Name | None = None
    cut: list[Name] | None = None
    heal: list[Name] | None = None
    stop_sound: Name | None = None
    # -- qualifiers
    body: Any = None
    until: list[str] = []
    within_s: Seconds = 10.0
    every_s: Seconds = 0.2
    expect: list[str] = []
    capture: dict[str, str] = {}
    absent: bool = False
    role: Literal["receiver", "sender"] = "receiver"
    as_: Name | None = None
    device: str | None = None  # play: the sink ("NAME", "pulse:sink:NAME", "vad:UID")
    wait: bool = False  # play / run: until it ends (else it goes on in the background)
    rate: Annotated[int, msgspec.Meta(ge=8000, le=192000)] = 44100
    channels: Annotated[int, msgspec.Meta(ge=1, le=2)] = 2
    sent: str | None = None  # audio: a `play` name or a node's file ("a:chirp.wav")
    sent_at: str | None = None  # audio: the step (name) at whose start it was sent
    #: audio: the sine expected (one), or the sines expected mixed (several)
    tone_hz: Hz | list[Hz] | None = None
    requires: list[str] = []  # run: tools that must be found (else the run is skipped)

    @property
    def kind(self) -> str:
        """The step's action key (the one `Scenario` made sure it has)."""
        for action in ACTIONS:
            if getattr(self, action) is not None:
                return action
        raise ValueError("a step without an action")

    @property
    def actions(self) -> list[str]:
        return [a for a in ACTIONS if getattr(self, a) is not None]


class Scenario(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A whole scenario file."""

    description: str
    nodes: dict[Name, NodeSpec]
    steps: list[Step]
    links: list[LinkSpec] = []
    #: The whole run's deadline (setup, steps and teardown), seconds.
    timeout_s: Seconds = 120.0
    #: Tools the scenario needs (looked up in $ROC_PREFIX/bin, then PATH): when one is
    #: missing the run is skipped, with the reason printed.
    requires: list[str] = []
    #: True for a scenario written to fail (an expectation that cannot hold): the
    #: library's test checks that its run fails.
    expect_failure: bool = False
