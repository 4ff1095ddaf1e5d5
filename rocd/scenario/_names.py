"""The names a step's expressions (`expect`, `until`, `capture`) can use, by step kind.

Each kind of step evaluates its expressions over what it saw (rocd.scenario._steps): a
call its `status` and `body`, an event the event's fields, a metrics step one end's
metrics (as the API names them, and short aliases), a run its `status` and `output`, an
audio step its measures. Declared here, once, so that `scenario check` finds a name
that is not there (`recieved > 300`) at its line, before anything runs; the step code
builds its values with the same names (tests/scenario checks both agree).
"""

from __future__ import annotations

from typing import Final

import msgspec

from rocd.actors import EndMetrics, Event

from ._model import Step

__all__ = ["ALIASES", "AUDIO_COMPARE", "AUDIO_TONE", "AUDIO_TONES", "names_of"]

#: Friendlier names for the metrics of a stream's end.
ALIASES: Final = {
    "received": "packetsReceived",
    "lost": "packetsLost",
    "discarded": "packetsDiscarded",
    "recovered": "recovered_packets",
    "late": "late_packets",
    "concealed": "concealedSamples",
    "sent": "packetsSent",
    "fec_sent": "fecPacketsSent",
}

#: What an audio step measures: against a sent sound, against one tone, against several.
AUDIO_COMPARE: Final = frozenset(
    {"correlation", "local_correlation", "snr_db", "offset_s", "gaps_ms", "missing_ms", "level_db"}
)
AUDIO_TONE: Final = frozenset(
    {"frequency_hz", "snr_db", "correlation", "onset_s", "gaps_ms", "duration_s", "level_db"}
)
AUDIO_TONES: Final = AUDIO_TONE | {"tones_db", "tones_spread_db", "peak"}
#: Added to every audio step's measures (latency_ms when it can be known).
_AUDIO_ALWAYS: Final = frozenset({"latency_ms", "recorded_s"})


def _struct_fields(struct: type[msgspec.Struct]) -> frozenset[str]:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    return frozenset(f.encode_name for f in info.fields)


def _end_fields(role: str) -> frozenset[str]:
    """The fields of an end's `receiver` or `sender` metrics (EndMetrics)."""
    info = msgspec.inspect.type_info(EndMetrics)
    assert isinstance(info, msgspec.inspect.StructType)
    (field,) = [f for f in info.fields if f.encode_name == role]
    kinds = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else ()
    for kind in kinds:
        if isinstance(kind, msgspec.inspect.StructType):
            return frozenset(f.encode_name for f in kind.fields)
    raise AssertionError(f"EndMetrics.{role} is not a struct")


_METRICS_BASE: Final = frozenset({"status", "state", "end_state", "reason", "peer"})
_BY_KIND: Final[dict[str, frozenset[str]]] = {
    "call": frozenset({"status", "body"}),
    "run": frozenset({"status", "output"}),
    "event": _struct_fields(Event),
    **{
        f"metrics:{role}": _METRICS_BASE
        | _end_fields(role)
        | {alias for alias, name in ALIASES.items() if name in _end_fields(role)}
        for role in ("receiver", "sender")
    },
    "audio:compare": AUDIO_COMPARE | _AUDIO_ALWAYS,
    "audio:tone": AUDIO_TONE | _AUDIO_ALWAYS,
    "audio:tones": AUDIO_TONES | _AUDIO_ALWAYS,
}


def names_of(step: Step) -> frozenset[str] | None:
    """The names `step`'s expressions may use (None: a kind that evaluates none)."""
    kind = step.kind
    if kind == "metrics":
        kind = f"metrics:{step.role}"
    elif kind == "audio":
        if isinstance(step.tone_hz, list):
            kind = "audio:tones"
        else:
            kind = "audio:compare" if step.tone_hz is None else "audio:tone"
    return _BY_KIND.get(kind)
