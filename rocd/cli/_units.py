"""Command-line values the way Roc's tools write them.

TIME: a number with a mandatory unit, `ns`, `us`, `ms`, `s`, `m` or `h` (`5ms`, `0.2s`).
PROBABILITY: a fraction (`0.05`) or a percentage (`5%`).
ADDRESS: `HOST:PORT`, `:PORT` (127.0.0.1) or `[V6]:PORT`.
"""

from __future__ import annotations

import argparse
import math
import re

_TIME_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_TIME_UNITS |= {"m": 60 * _TIME_UNITS["s"], "h": 3600 * _TIME_UNITS["s"]}
_TIME = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ns|us|ms|s|m|h)\s*$")


def duration_ns(text: str) -> int:
    """'5ms' -> 5_000_000; a unit is required so '5' is never ambiguous."""
    match = _TIME.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: expected a number and a unit (ns, us, ms, s, m, h)"
        )
    value = float(match.group(1)) * _TIME_UNITS[match.group(2)]
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: too long")
    return round(value)


def probability(text: str) -> float:
    """'0.05' or '5%' -> 0.05, within [0, 1]."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid probability {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"probability {text!r} is not within 0..1 (0%..100%)")
    return value


def address(text: str) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port); ':PORT' means 127.0.0.1."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"invalid address {text!r}: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def seconds(text: str) -> float:
    """A plain number of seconds above 0, finite (a timeout or deadline: socket timeouts
    take no other, and a deadline of 0 or less could never be met)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"give seconds above 0, not {text!r}")
    return value


#: Sample rates and channel counts the audio layer takes (rocd.audio.SampleSpec).
MIN_RATE, MAX_RATE = 1000, 768000
MAX_CHANNELS = 32


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid {what} {text!r}: expected a whole number"
        ) from None


def sample_rate(text: str) -> int:
    """'44100' -> 44100, within MIN_RATE..MAX_RATE Hz."""
    rate = _int(text, "sample rate")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise argparse.ArgumentTypeError(
            f"sample rate {rate} Hz is out of range ({MIN_RATE}..{MAX_RATE})"
        )
    return rate


def channel_count(text: str) -> int:
    """'2' -> 2, within 1..MAX_CHANNELS."""
    channels = _int(text, "channel count")
    if not 1 <= channels <= MAX_CHANNELS:
        raise argparse.ArgumentTypeError(
            f"channel count {channels} is out of range (1..{MAX_CHANNELS})"
        )
    return channels


def count(text: str) -> int:
    """A whole number >= 1 (packets per FEC block, ...)."""
    value = _int(text, "count")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive whole number")
    return value


def whole(text: str) -> int:
    """A whole number >= 0 (a rate limit where 0 means none, ...)."""
    value = _int(text, "number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value
