"""Small networks of namespaces for multi-host tests (needs root): the package's
`Topology` (hosts, links, a LAN bridge, a NAT router, management legs), made and always
deleted by `topology()`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from rocd.scenario._netns import NetnsError, Topology, check_netns, sh

__all__ = ["Topology", "sh", "topology"]


@contextmanager
def topology() -> Iterator[Topology]:
    try:
        check_netns()
    except NetnsError as exc:
        if "root" in str(exc):
            pytest.skip("network namespaces need root (CI runs as root)")
        raise AssertionError(f"{exc}: scripts/setup.sh installs it") from None
    net = Topology()
    try:
        yield net
    finally:
        net.close()
