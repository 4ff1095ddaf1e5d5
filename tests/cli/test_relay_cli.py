"""`rocd relay` as a process: forwards through seeded loss; bad flags exit 2."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_relay_forwards_with_the_seeded_loss() -> None:
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target.bind(("127.0.0.1", 0))
    target.settimeout(0.5)
    listen = free_udp_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rocd.cli", "relay", "--route",
         f"127.0.0.1:{listen}=127.0.0.1:{target.getsockname()[1]}",
         "--loss", "30%", "--seed", "3", "--stats"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        deadline = time.monotonic() + 10
        got: list[bytes] = []
        while not got and time.monotonic() < deadline:  # wait until the relay listens
            sender.sendto(b"probe", ("127.0.0.1", listen))
            with contextlib.suppress(TimeoutError):
                got.append(target.recv(2048))
        received: list[int] = []
        target.setblocking(False)
        for i in range(1000):
            sender.sendto(f"{i}".encode(), ("127.0.0.1", listen))
            time.sleep(0.0002)
            with contextlib.suppress(BlockingIOError):  # keep the socket buffer from filling
                while True:
                    received.append(int(target.recv(2048)))
        target.settimeout(0.5)
        with contextlib.suppress(TimeoutError):
            while True:
                received.append(int(target.recv(2048)))
        assert received == sorted(received)  # no reordering asked for
        assert 600 < len(received) < 800  # about 70% of 1000 get through
        assert proc.stdout is not None
        stats = json.loads(proc.stdout.readline())
        assert stats["forward"]["impairment"]["received"] >= 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.communicate()
        target.close()
        sender.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--route", "nonsense"], "expected LISTEN=TARGET"),
        (["--route", ":1=:2", "--jitter", "5"], "expected a number and a unit"),
        (["--route", ":1=:2", "--loss", "2"], "not within 0..1"),
    ],
)
def test_bad_relay_flags_exit_2(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rocd.cli", "relay", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert message in done.stderr
