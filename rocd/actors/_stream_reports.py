"""Whether the external receiver a sender streams to is still there, from its RTCP reports.

A sender cannot see an external receiver (a `roc-recv`, another daemon's external end)
play; what it can see is RTCP: a Roc receiver with a control endpoint reports on every
sender it plays, every 200 ms, and the sender's RTCP table forgets a receiver after 5 s
without a report from it (`INACTIVITY_TIMEOUT_NS`, the same silence after which a Roc
receiver drops a sender). So:

- no report ever (no control endpoint, or a receiver that sends none): the sender cannot
  tell whether anyone listens, and the end stays as its source makes it (active while
  the source delivers);
- reports came, and for 5 s none has (the table is empty again): the receiver stopped,
  went away or cannot be reached; the end is degraded, saying so;
- reports again: active again.

Pure state over what the sender's metrics say at each check; no clock of its own.
"""

from __future__ import annotations

from rocd.net.roc import INACTIVITY_TIMEOUT_NS

__all__ = ["ReceiverReports"]

_SILENT_S = INACTIVITY_TIMEOUT_NS / 1e9


class ReceiverReports:
    """Tracks whether the receivers at `control` (an rtcp:// URI, None if none) report."""

    def __init__(self, control: str | None) -> None:
        self.control = control
        self.heard = False  # a report came at least once

    def reset(self) -> None:
        """A new sender: nothing heard yet (its receivers learn its address anew)."""
        self.heard = False

    def silence(self, receivers: int) -> str:
        """Why the end should be degraded ("" when not), given how many receivers the
        sender's RTCP table holds now (each heard from within the last 5 s)."""
        if receivers > 0:
            self.heard = True
            return ""
        if not self.heard or self.control is None:
            return ""
        return (
            f"the receiver at {self.control} stopped reporting (no RTCP for {_SILENT_S:g} s):"
            " it stopped or cannot be reached"
        )
