"""UDP ports for the tools and daemons that tests and benchmarks start on 127.0.0.1."""

from __future__ import annotations

import socket


def free_ports(n: int) -> list[int]:
    """`n` different UDP ports free on 127.0.0.1 right now (all held open while chosen, so
    the kernel cannot hand out one twice), for a tool that needs them named."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()
