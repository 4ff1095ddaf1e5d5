"""Connections on which the daemon answered before the body arrived: never hung, never leaked.

Raw sockets against a `rocd serve` process, so the file descriptors counted are the
daemon's own (/proc/PID/fd).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.process import DaemonProcess, state_args


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    state = tmp_path_factory.mktemp("state")
    proc = DaemonProcess([*state_args(state), "--config", str(_no_sound_config(state))])
    try:
        proc.wait_serving()
        yield proc
    finally:
        proc.kill()


def _no_sound_config(state: Path) -> Path:
    cfg = state / "rocd.toml"
    cfg.write_text('[audio]\npulse = "off"\n')
    return cfg


def _address(proc: DaemonProcess) -> tuple[str, int]:
    host, port = proc.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _read_answer(sock: socket.socket) -> tuple[bytes, bytes] | None:
    """(head, body) of one HTTP answer; None when the server closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body


EARLY = [
    # 404: no such route; 405: no such method; 413: too large, known from the header.
    (b"POST /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n", b" 404 "),
    (b"POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n", b" 405 "),
    (
        b"PUT /peers/self HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 99999999\r\n\r\n",
        b" 413 ",
    ),
]


@pytest.mark.parametrize(("request_head", "status"), EARLY, ids=["404", "405", "413"])
def test_an_early_answer_never_leaves_the_connection_hanging(
    daemon: DaemonProcess, request_head: bytes, status: bytes
) -> None:
    """The next request on the connection is answered, or the connection is closed: it
    never waits for an answer that does not come."""
    body = b'{"name": "x"}'
    if b"Content-Length" not in request_head:
        request_head += b"Content-Length: %d\r\n\r\n" % len(body)
    for _ in range(20):
        with socket.create_connection(_address(daemon), timeout=3) as sock:
            sock.sendall(request_head)
            answer = _read_answer(sock)
            assert answer is not None
            assert status in answer[0].split(b"\r\n")[0]
            assert b"connection: close" in answer[0].lower()
            try:
                sock.sendall(body + b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                again = _read_answer(sock)
            except ConnectionResetError:
                again = None
            assert again is None  # closed after the early answer, not left waiting


def test_early_answers_leak_no_file_descriptors(daemon: DaemonProcess) -> None:
    pid = daemon.proc.pid
    head = EARLY[0][0] + b"Content-Length: 10\r\n\r\n"
    baseline = _fds(pid)
    socks = []
    for _ in range(100):
        sock = socket.create_connection(_address(daemon), timeout=3)
        sock.sendall(head)
        assert _read_answer(sock) is not None
        # In three segments: the rest of the body, then two more requests (the server
        # handles one h11 event per segment once it stopped listening to the stream).
        with contextlib.suppress(OSError):
            for segment in (
                b"0123456789",
                *[b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"] * 2,
            ):
                sock.sendall(segment)
                time.sleep(0.005)
        socks.append(sock)
    for sock in socks:
        sock.close()
    deadline = time.monotonic() + 5
    while _fds(pid) > baseline + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _fds(pid) <= baseline + 2, f"{baseline} fds before, {_fds(pid)} after"


def test_keep_alive_still_works_for_complete_requests(daemon: DaemonProcess) -> None:
    body = b'{"name": "Keep"}'
    with socket.create_connection(_address(daemon), timeout=3) as sock:
        for _ in range(3):
            sock.sendall(
                b"PUT /peers/self HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            answer = _read_answer(sock)
            assert answer is not None
            assert b" 200 " in answer[0].split(b"\r\n")[0]
            assert b"connection: close" not in answer[0].lower()
