"""The netfilter queue codec (bytes in, bytes out) and, as root, the queue impairing
real packets between two network namespaces."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rocd.net.roc._nfqueue import (
    MSG_PACKET,
    NF_ACCEPT,
    NfqueueError,
    NfqueueMessage,
    QueuedPacket,
    bind_request,
    params_request,
    parse_messages,
    verdict_request,
)
from tests.netns.topology import topology


def packet_message(queue: int, packet_id: int, payload: bytes, seq: int = 0) -> bytes:
    """A packet message as the kernel sends it (with a hook and a mark attribute too)."""

    def attr(kind: int, value: bytes) -> bytes:
        size = 4 + len(value)
        return struct.pack("=HH", size, kind) + value + b"\0" * (-size % 4)

    body = struct.pack("!BBH", 2, 0, queue)
    body += attr(1, struct.pack("!IHB", packet_id, 0x0800, 1))
    body += attr(3, struct.pack("!I", 7))  # NFQA_MARK: ignored
    body += attr(10 | 0x4000, payload)  # a byte-order flag on the type is masked away
    return struct.pack("=IHHII", 16 + len(body), MSG_PACKET, 0, seq, 0) + body


def test_requests_are_the_bytes_the_kernel_expects() -> None:
    assert bind_request(7).hex() == (
        "1c000000" "0203" "0500" "01000000" "00000000" "00000007" "0800" "0100" "01000002"
    )  # fmt: skip
    params = params_request(7, copy_range=0xFFFF, maxlen=100)
    assert params[16:20] == bytes([0, 0, 0, 7])
    assert params[20:29] == struct.pack("=HH", 9, 2) + struct.pack("!IB", 0xFFFF, 2)
    assert params[-8:] == struct.pack("=HH", 8, 3) + struct.pack("!I", 100)
    verdict = verdict_request(7, 0x01020304, NF_ACCEPT)
    assert verdict[4:6] == struct.pack("=H", (3 << 8) | 1)
    assert verdict[-8:] == bytes([0, 0, 0, 1, 1, 2, 3, 4])
    with pytest.raises(ValueError, match="queue number"):
        verdict_request(70000, 1, NF_ACCEPT)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.binary(max_size=300))
def test_a_queued_packet_parses_back(queue: int, packet_id: int, payload: bytes) -> None:
    two = packet_message(queue, packet_id, payload) + packet_message(queue, 1, b"x")
    assert parse_messages(two) == [
        QueuedPacket(queue, packet_id, payload),
        QueuedPacket(queue, 1, b"x"),
    ]


def test_acks_and_errors() -> None:
    ack = struct.pack("=IHHII", 36, 2, 0, 5, 0) + struct.pack("=i", 0) + bytes(16)
    err = struct.pack("=IHHII", 36, 2, 0, 6, 0) + struct.pack("=i", -1) + bytes(16)
    assert parse_messages(ack + err) == [NfqueueMessage(5, 0), NfqueueMessage(6, 1)]


@given(st.binary(max_size=200))
def test_hostile_bytes_raise_one_error_type(data: bytes) -> None:
    try:
        messages = parse_messages(data)
    except NfqueueError:
        return
    assert all(isinstance(m, QueuedPacket | NfqueueMessage) for m in messages)


def test_a_packet_without_its_id_is_refused() -> None:
    body = struct.pack("!BBH", 2, 0, 1)
    with pytest.raises(NfqueueError, match="without its id"):
        parse_messages(struct.pack("=IHHII", 16 + len(body), MSG_PACKET, 0, 0, 0) + body)


@pytest.mark.slow
def test_the_queue_drops_and_delays_real_packets_between_namespaces() -> None:
    if os.geteuid() != 0:
        pytest.skip("netfilter queues need root (CI runs as root)")
    with topology() as net:
        o = net.octet
        a, b = net.ns("QA"), net.ns("QB")
        net.link(a, f"10.84.{o}.1/24", b, f"10.84.{o}.2/24")
        net.run(b, "iptables", "-A", "INPUT", "-p", "udp", "-s", f"10.84.{o}.1",
                "-j", "NFQUEUE", "--queue-num", "3", "--queue-bypass")  # fmt: skip
        relay = subprocess.Popen(
            ["ip", "netns", "exec", b, sys.executable, "-m", "rocd.cli", "relay",
             "--nfqueue", "3", "--loss", "30%", "--delay", "150ms", "--seed", "4"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert relay.stdout is not None
            assert relay.stdout.readline().strip() == "nfqueue 3 bound"
            receiver = subprocess.Popen(
                ["ip", "netns", "exec", b, sys.executable, "-c",
                 "import socket,time\n"
                 f"s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('10.84.{o}.2',9))\n"
                 "s.settimeout(1.5);print('ready',flush=True);n=0;first=None\n"
                 "try:\n while True:\n  s.recv(99);n+=1;first=first or time.time()\n"
                 "except OSError: pass\nprint(n, first)"],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert receiver.stdout is not None
            assert receiver.stdout.readline().strip() == "ready"
            sent_at = time.time()
            script = (
                "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                f"for i in range(400): s.sendto(b'x', ('10.84.{o}.2', 9))"
            )
            net.run(a, sys.executable, "-c", script)
            count, first = receiver.communicate(timeout=15)[0].split()
        finally:
            relay.terminate()
            relay.wait(timeout=10)
            if relay.stdout is not None:
                relay.stdout.close()
    assert 400 * 0.6 < int(count) < 400 * 0.8  # 30% lost, seeded
    assert float(first) - sent_at >= 0.15  # and delayed by the queue's verdicts
