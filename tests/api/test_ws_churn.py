"""Thousands of WebSocket subscribers coming and going: none stays registered, memory flat.

Against a `rocd serve` process (its RSS is read from /proc), with raw sockets so that a
cycle costs the daemon, not the test: half the clients close properly, half vanish.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.daemon.process import DaemonProcess, state_args

HANDSHAKE = (
    "GET /events?kind=peer. HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
)
CLOSE_FRAME = bytes([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2])  # masked close, 1000


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    state = tmp_path_factory.mktemp("state")
    cfg = state / "rocd.toml"
    cfg.write_text('[audio]\npulse = "off"\n')
    proc = DaemonProcess([*state_args(state), "--config", str(cfg)])
    try:
        proc.wait_serving()
        yield proc
    finally:
        proc.kill()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def cycle(host: str, port: int, polite: bool) -> None:
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(HANDSHAKE.format(host=f"{host}:{port}").encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            assert chunk, "closed during the handshake"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 101"), answer[:100]
        if polite:
            sock.sendall(CLOSE_FRAME)
            while sock.recv(4096):  # the server's close frame, then its FIN
                pass


def churn(daemon: DaemonProcess, count: int) -> None:
    host, port = daemon.url.removeprefix("http://").rsplit(":", 1)
    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(cycle, host, int(port), i % 2 == 0) for i in range(count)]:
            future.result()


def subscribers(daemon: DaemonProcess) -> int:
    count: int = httpx.get(f"{daemon.url}/health").json()["event_subscribers"]
    return count


@pytest.mark.slow
def test_ten_thousand_subscribers_come_and_go_and_leave_nothing(daemon: DaemonProcess) -> None:
    pid = daemon.proc.pid
    churn(daemon, 2000)  # warm up: allocator pools, caches
    assert subscribers(daemon) == 0
    before = rss_kib(pid)
    churn(daemon, 8000)
    assert subscribers(daemon) == 0
    grown = rss_kib(pid) - before
    assert grown < 4096, f"RSS grew by {grown} KiB over 8000 subscribers ({before} KiB before)"
