"""The captured Roc traffic in tests/vectors is what the other tests assume it is."""

import pytest

from tests.pcap import CONTROL_PORT, REPAIR_PORT, SOURCE_PORT, VECTORS, read_udp


@pytest.mark.parametrize("name", ["rs8m_default.pcap", "ldpc_default.pcap"])
def test_capture_holds_one_sender_on_one_socket(name: str) -> None:
    datagrams = read_udp(VECTORS / name)
    to_receiver = [d for d in datagrams if d.dst[1] in (SOURCE_PORT, REPAIR_PORT, CONTROL_PORT)]
    # Roc sends source, repair and RTCP from one socket: one sender address for all three.
    assert {d.src for d in to_receiver} == {to_receiver[0].src}
    assert sum(d.dst[1] == SOURCE_PORT for d in datagrams) == 399
    assert sum(d.dst[1] == REPAIR_PORT for d in datagrams) == 220  # 22 blocks x 10 repair
    # The receiver answers from its control port to the sender's socket.
    replies = [d for d in datagrams if d.src[1] == CONTROL_PORT]
    assert replies
    assert {d.dst for d in replies} == {to_receiver[0].src}
