"""Command-line value parsers: durations, probabilities, addresses."""

from __future__ import annotations

import argparse

import pytest

from rocd.cli._units import address, duration_ns, probability


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("5ms", 5_000_000),
        ("0.2s", 200_000_000),
        ("250us", 250_000),
        ("7ns", 7),
        ("1m", 60_000_000_000),
        ("1h", 3_600_000_000_000),
        ("1.5ms", 1_500_000),
        ("2e1ms", 20_000_000),
    ],
)
def test_durations_need_a_unit(text: str, ns: int) -> None:
    assert duration_ns(text) == ns


@pytest.mark.parametrize("text", ["5", "ms", "-5ms", "5 sec", "", "5msms"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number and a unit"):
        duration_ns(text)


def test_probabilities_as_fraction_or_percent() -> None:
    assert probability("0.05") == pytest.approx(0.05)
    assert probability("5%") == pytest.approx(0.05)
    assert probability("100%") == 1.0
    for bad in ("1.5", "-1%", "x", "101%"):
        with pytest.raises(argparse.ArgumentTypeError):
            probability(bad)


def test_addresses() -> None:
    assert address("10.0.0.1:5000") == ("10.0.0.1", 5000)
    assert address(":5000") == ("127.0.0.1", 5000)
    assert address("[::1]:5000") == ("::1", 5000)
    for bad in ("host", "host:x", "host:70000"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected HOST:PORT"):
            address(bad)
