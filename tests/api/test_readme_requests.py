"""The README's curl examples that write send JSON, as the API requires (a form body is
a 415, no body a 422): a reader who copies one gets the answer the README shows."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent.parent / "README.md"


def curl_writes() -> list[tuple[int, str]]:
    """(line number, command) of every curl in the README that POSTs, PUTs or PATCHes,
    with its continuation lines joined."""
    lines = README.read_text().splitlines()
    found: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        for command in re.findall(r"curl [^`]*", line):
            follow = number
            while command.rstrip().endswith("\\") and follow < len(lines):
                command = command.rstrip()[:-1] + lines[follow]
                follow += 1
            if re.search(r"-X (POST|PUT|PATCH)\b", command):
                found.append((number, command))
    return found


def test_the_readme_has_curl_writes() -> None:
    assert len(curl_writes()) >= 10


def test_every_curl_write_in_the_readme_sends_json() -> None:
    wrong = [f"README.md:{n}: {c.strip()}" for n, c in curl_writes() if "--json" not in c]
    assert not wrong, "\n".join(wrong)
