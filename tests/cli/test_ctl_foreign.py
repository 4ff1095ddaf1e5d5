"""`rocd ctl` pointed at an HTTP server that is not rocd: one line and exit 1, whatever
bytes come back (never a traceback)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from tests.cli.test_ctl import ctl_process, failed

#: Answers that no rocd gives: JSON with a string that is not UTF-8, and bytes.
ANSWERS = {
    "/ok-latin1": (200, b'[{"name": "K\xfcche"}]'),
    "/error-latin1": (404, b'{"error": "x", "message": "K\xfcche", "details": []}'),
    "/ok-binary": (200, b"\xff\xfe\x00garbage"),
}


class _Foreign(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = ANSWERS[self.path.split("/peers")[0]]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def foreign() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Foreign)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("path", list(ANSWERS))
def test_an_answer_that_is_not_rocds_is_one_line(foreign: str, path: str) -> None:
    line = failed(ctl_process("peers", "list", api=foreign + path), 1, "")
    assert "Traceback" not in line
    assert "rocd" in line
