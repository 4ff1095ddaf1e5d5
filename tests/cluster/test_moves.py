"""A trusted peer that comes back somewhere else (another cluster port after a restart) is
found there: its hello says where it listens now, the address is tried, and kept (in the
state file too) once a link through it gets through; an address that does not work is
not kept. Daemons as separate processes on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .instances import Instance, free_port, start_all, wait_for

pytestmark = pytest.mark.slow

NO_PULSE = '[audio]\npulse = "off"\n'


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Instance, Instance]]:
    m, n = Instance("m", tmp_path, NO_PULSE), Instance("n", tmp_path, NO_PULSE)
    try:
        start_all([m, n])
        assert m.pair(n).status_code == 201
        assert n.pair(m).status_code == 201
        m.wait_state(n, "online")
        n.wait_state(m, "online")
        yield m, n
    finally:
        m.stop()
        n.stop()


def listed(one: Instance, other: Instance) -> tuple[str, str, str | None]:
    entry = one.peer(other)
    return entry.get("state", ""), entry.get("address", ""), entry.get("route")


def test_a_peer_back_on_another_port_is_dialled_there_and_kept(
    pair: tuple[Instance, Instance],
) -> None:
    m, n = pair
    old = n.address
    assert n.stop() == 0
    n.cluster_port = free_port()
    n.start()
    new = n.address
    assert new == f"tcp://127.0.0.1:{n.cluster_port}" != old
    # n dials m (m did not move) and says where it is now: m dials it there.
    wait_for(
        "m dials n at its new address",
        lambda: listed(m, n),
        lambda seen: seen == ("online", new, "direct"),
        timeout=15,
    )
    assert "now at " + new in m.log()
    # Kept across a restart of m, before n says anything again.
    assert n.stop() == 0
    assert m.stop() == 0
    m.start()
    assert listed(m, n) == ("offline", new, None)
    n.start()  # its port as before
    wait_for(
        "m and n linked again",
        lambda: (listed(m, n), n.state_of(m)),
        lambda seen: seen == (("online", new, "direct"), "online"),
        timeout=15,
    )


def test_a_peer_whose_old_port_another_instance_took_is_found_at_its_new_one(
    pair: tuple[Instance, Instance], tmp_path: Path
) -> None:
    """Where the peer was, another instance answers now (it took the free port): the
    handshake there fails for the key, not for silence, and that proves the peer is not
    there either; its new address is tried all the same."""
    m, n = pair
    old_port = n.cluster_port
    assert n.stop() == 0
    squatter = Instance("o", tmp_path, NO_PULSE, cluster_port=old_port)
    try:
        squatter.start()
        n.cluster_port = free_port()
        n.start()
        new = n.address
        wait_for(
            "m dials n at its new address",
            lambda: listed(m, n),
            lambda seen: seen == ("online", new, "direct"),
            timeout=20,
        )
        assert "now at " + new in m.log()
    finally:
        squatter.stop()


def test_an_address_a_peer_claims_that_does_not_work_is_not_kept(
    pair: tuple[Instance, Instance],
) -> None:
    """A hello's address is the peer's word: tried, and not kept when no link gets
    through it (here a wrong `advertise`; say, an address inside the peer's NAT)."""
    m, n = pair
    old = n.address
    nowhere = free_port()  # nothing listens there
    assert n.stop() == 0
    n.cluster_port = free_port()
    n.config = NO_PULSE + f'[cluster]\nadvertise = "127.0.0.1:{nowhere}"\n'
    n.start()
    claimed = f"tcp://127.0.0.1:{nowhere}"
    assert n.address == claimed
    wait_for(
        "m tried the claimed address",
        lambda: f"not reached at {claimed}" in m.log(),
        bool,
        timeout=20,
    )
    # Linked back over n's own connection, the address as it was (m cannot know better).
    wait_for(
        "m linked to n over n's connection",
        lambda: listed(m, n),
        lambda seen: seen == ("online", old, "reverse"),
        timeout=20,
    )
    assert "now at" not in m.log()


def test_an_address_that_works_is_kept_whatever_the_peer_says(tmp_path: Path) -> None:
    """The address a user gave (a NAT's forwarded port, say) is kept while it works, even
    when the peer names another one that would work too (its inside address)."""
    port = free_port()
    m = Instance("m", tmp_path, NO_PULSE)
    n = Instance(
        "n",
        tmp_path,
        NO_PULSE + f'[cluster]\ndiscovery = false\nadvertise = "127.0.0.2:{port}"\n',
        cluster_port=port,
        host="0.0.0.0",
    )
    try:
        start_all([m, n])
        given = f"tcp://127.0.0.1:{port}"
        assert n.address == f"tcp://127.0.0.2:{port}" != given
        assert m.post("/peers", {"address": given, "key": n.key}).status_code == 201
        assert n.pair(m).status_code == 201
        for restart in (False, True):  # at the first contact, and when n comes back
            if restart:
                assert n.stop() == 0
                n.start()
            wait_for(
                "m linked to n where it was told",
                lambda: (listed(m, n), n.state_of(m)),
                lambda seen: seen == (("online", given, "direct"), "online"),
                timeout=15,
            )
            assert "now at" not in m.log()
    finally:
        m.stop()
        n.stop()
