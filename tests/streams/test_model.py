"""The pure parts of streams: lifecycle and setup state machines, settings, fault specs."""

from __future__ import annotations

import itertools

import msgspec
import pytest

from rocd.actors import InvalidTransition, Lifecycle, StreamSettings, StreamState, combine
from rocd.actors._stream_faults import Faults
from rocd.actors._stream_reports import ReceiverReports
from rocd.actors._stream_settings import (
    CUSTOM_PAYLOAD_TYPE,
    encoding,
    fixed_bounds_ns,
    receiver_config,
    resolve,
    sender_config,
    targets_on,
)
from rocd.actors._stream_setup import InvalidSetupStep, Setup, SetupPhase
from rocd.actors._stream_state import ALLOWED
from rocd.actors._stream_types import END_REQUESTS, EndSpec, ExternalEndpoints, StreamCreate
from rocd.errors import InvalidRequest
from rocd.net.roc import FecScheme, LatencyProfile

S = StreamState


@pytest.mark.parametrize(("current", "wanted"), list(itertools.product(S, S)))
def test_every_transition_is_allowed_or_refused_by_type(current: S, wanted: S) -> None:
    life = Lifecycle("the end", current)
    if wanted is current or wanted in ALLOWED[current]:
        life.to(wanted, "why")
        assert (life.state, life.reason) == (wanted, "why")
    else:
        with pytest.raises(InvalidTransition) as info:
            life.to(wanted)
        assert info.value.status == 409
        assert (info.value.current, info.value.wanted) == (current, wanted)
        assert life.state is current


def test_terminal_states_only_end() -> None:
    assert ALLOWED[S.STOPPED] == frozenset()
    assert ALLOWED[S.FAILED] == {S.STOPPED}
    life = Lifecycle("x", S.ACTIVE)
    assert life.to(S.DEGRADED, "quiet")
    assert not life.to(S.DEGRADED, "quiet")  # no change, no event
    assert life.to(S.DEGRADED, "device gone")


def test_a_stream_shows_the_worst_of_its_ends() -> None:
    assert combine([S.ACTIVE, S.ACTIVE]) is S.ACTIVE
    assert combine([S.ACTIVE, S.STARTING]) is S.STARTING
    assert combine([S.PENDING, S.STARTING]) is S.PENDING
    assert combine([S.ACTIVE, S.DEGRADED]) is S.DEGRADED
    assert combine([S.DEGRADED, S.STOPPED]) is S.STOPPED
    assert combine([S.STOPPED, S.FAILED]) is S.FAILED
    assert combine([]) is S.STOPPED


def test_an_external_receiver_that_stops_reporting_degrades_its_sender() -> None:
    reports = ReceiverReports("rtcp://10.0.0.9:10003")
    assert reports.silence(0) == ""  # none yet: it cannot tell, nothing said
    assert reports.silence(1) == ""
    why = reports.silence(0)  # reports came, then none for 5 s (the table forgot it)
    assert why.startswith("the receiver at rtcp://10.0.0.9:10003 stopped reporting")
    assert "5 s" in why
    assert reports.silence(2) == ""  # back
    reports.reset()  # a new sender: its receivers have not found it yet
    assert reports.silence(0) == ""
    unheard = ReceiverReports(None)  # no control endpoint: no reports can come
    assert unheard.silence(0) == unheard.silence(1) == unheard.silence(0) == ""


def test_setup_walks_its_phases_in_order() -> None:
    setup = Setup("s", receiver="b", sender="a")
    with pytest.raises(InvalidSetupStep):
        setup.committed("receiver")  # before prepared
    setup.prepared("receiver")
    setup.prepared("sender")
    phases = []
    for role in ("receiver", "sender"):
        setup.committed(role)
        phases.append(setup.phase)
    assert phases == [SetupPhase.RECEIVER_COMMITTED, SetupPhase.COMMITTED]
    with pytest.raises(InvalidSetupStep):
        setup.rolling_back()  # nothing committed is undone


@pytest.mark.parametrize(("receiver", "sender"), [("b", None), (None, "a")])
def test_setup_with_one_external_end(receiver: str | None, sender: str | None) -> None:
    setup = Setup("s", receiver=receiver, sender=sender)
    role = "receiver" if receiver else "sender"
    with pytest.raises(InvalidSetupStep):
        setup.prepared("sender" if receiver else "receiver")
    setup.prepared(role)
    setup.committed(role)
    assert setup.phase is SetupPhase.COMMITTED


def test_a_rollback_aborts_every_end_that_may_exist() -> None:
    setup = Setup("s", receiver="b", sender="a")
    setup.prepared("receiver")
    # The sender's prepare was under way when it failed: it is aborted too (a no-op if
    # it never happened).
    assert setup.rolling_back() == {"receiver": "b", "sender": "a"}
    setup.rolled_back()
    assert setup.phase is SetupPhase.ROLLED_BACK


def test_fault_specs() -> None:
    faults = Faults.parse(" prepare_sender.before=fail, commit_receiver.after=kill ")
    assert faults.points == {"prepare_sender.before": "fail", "commit_receiver.after": "kill"}
    assert Faults.from_env({}).points == {}
    for bad in ("prepare_sender=fail", "prepare_sender.before=explode", "nothing"):
        with pytest.raises(ValueError, match="bad fault"):
            Faults.parse(bad)


@pytest.mark.parametrize(
    ("latency", "target", "adaptive", "bounds", "block"),
    [
        ({}, 200.0, False, (None, None), (18, 10)),
        ({"profile": "lan"}, 60.0, False, (None, None), (10, 6)),
        ({"profile": "wifi"}, 120.0, True, (40.0, 500.0), (18, 10)),
        ({"profile": "internet"}, 300.0, True, (100.0, 2000.0), (20, 10)),
        ({"profile": "lan", "target_ms": 80}, 80.0, False, (None, None), (10, 6)),
        ({"adaptive": True, "target_ms": 100}, 100.0, True, (15.0, 500.0), (18, 10)),
        ({"target_ms": 100, "min_ms": 50, "max_ms": 300}, 100.0, False, (50.0, 300.0),
         (18, 10)),
    ],
)  # fmt: skip
def test_settings_are_filled_in_from_profiles(
    latency: dict[str, object],
    target: float,
    adaptive: bool,
    bounds: tuple[float | None, float | None],
    block: tuple[int, int],
) -> None:
    given = msgspec.convert({"latency": latency}, StreamSettings)
    settings = resolve(given, [])
    lat = settings.latency
    assert (lat.target_ms, lat.adaptive, (lat.min_ms, lat.max_ms)) == (target, adaptive, bounds)
    assert (settings.fec.source_packets, settings.fec.repair_packets) == block
    assert resolve(settings, []) == settings  # resolving twice changes nothing


def test_external_ends_decide_the_fec_scheme() -> None:
    settings = resolve(StreamSettings(), [FecScheme.LDPC_STAIRCASE])
    assert settings.fec.scheme == "ldpc"
    assert resolve(StreamSettings(), [None]).fec.scheme == "none"
    given = msgspec.convert({"fec": {"scheme": "rs8m", "source_packets": 20}}, StreamSettings)
    with pytest.raises(InvalidRequest, match="contradicts"):
        resolve(given, [FecScheme.LDPC_STAIRCASE])
    wide = msgspec.convert({"encoding": {"rate": 48000}}, StreamSettings)
    with pytest.raises(InvalidRequest, match="built-in encodings"):
        resolve(wide, [FecScheme.RS8M])


def test_settings_become_transport_configs() -> None:
    given = msgspec.convert(
        {
            "encoding": {"rate": 48000, "channels": 2},
            "fec": {"scheme": "ldpc", "source_packets": 20, "repair_packets": 10},
            "packet_ms": 10,
            "latency": {"target_ms": 100, "min_ms": 60, "tuning": "intact"},
            "drift_compensation": False,
        },
        StreamSettings,
    )
    settings = resolve(given, [])
    enc = encoding(settings)
    assert (enc.payload_type, enc.rate, enc.channels) == (CUSTOM_PAYLOAD_TYPE, 48000, 2)
    sender = sender_config(settings)
    assert sender.fec is FecScheme.LDPC_STAIRCASE
    assert (sender.fec_source_packets, sender.fec_repair_packets) == (20, 10)
    assert sender.packet_length_ns == 10_000_000
    receiver = receiver_config(settings, 44100, 1)
    assert (receiver.rate, receiver.channels) == (44100, 1)
    assert receiver.latency.profile is LatencyProfile.INTACT
    assert receiver.drift_compensation is False
    assert receiver.adaptive is None
    low, high = fixed_bounds_ns(settings) or (0, 0)
    assert low == 60_000_000
    assert high > 100_000_000  # Roc's tolerance on the other side
    # Roc's bounds are symmetric: the wider side, and the session gets exactly [min, max].
    assert receiver.latency.tolerance_ns == max(100_000_000 - low, high - 100_000_000)
    assert encoding(resolve(StreamSettings(), [])).payload_type == 10  # Roc's L16 stereo


def test_a_sender_reaches_the_ports_a_receiver_bound() -> None:
    bound = ExternalEndpoints(
        source="rtp+rs8m://0.0.0.0:4001",
        repair="rs8m://0.0.0.0:4002",
        control="rtcp://0.0.0.0:4003",
    )
    assert targets_on(bound, "10.0.0.7") == ExternalEndpoints(
        source="rtp+rs8m://10.0.0.7:4001",
        repair="rs8m://10.0.0.7:4002",
        control="rtcp://10.0.0.7:4003",
    )
    assert targets_on(bound, "::1").source == "rtp+rs8m://[::1]:4001"


def test_end_requests_travel_as_msgpack() -> None:
    create = StreamCreate(
        source=EndSpec(peer="a", device="x"), destination=EndSpec(peer="b", vad="v")
    )
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(create), type=StreamCreate) == create
    for request in END_REQUESTS:
        assert issubclass(request, msgspec.Struct)
        msgspec.msgpack.Decoder(request)  # every field has a wire type
