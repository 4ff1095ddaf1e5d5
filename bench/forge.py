"""Forged UDP datagrams from any source address, and a sniffer for what a stream carries.

Root only: a raw IPv4 socket sends hand-built IP + UDP headers (the kernel fills in the IP
checksum and length; the UDP checksum is 0, "none", which IPv4 allows), so a receiver
cannot tell a forged datagram from its sender's. The sniffer reads copies of every UDP
datagram that arrives on the host, to learn a stream's sender port, SSRC and FEC block
number as an attacker on the path would.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass

__all__ = ["Forger", "Sniffer", "StreamView"]

_IP = struct.Struct(">BBHHHBBH4s4s")
_UDP = struct.Struct(">HHHH")


class Forger:
    """Sends UDP datagrams with any source (host, port)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        self._id = 0
        self.sent = 0

    def send(self, payload: bytes, src: tuple[str, int], dst: tuple[str, int]) -> None:
        self._id = (self._id + 1) & 0xFFFF
        udp = _UDP.pack(src[1], dst[1], 8 + len(payload), 0)
        ip = _IP.pack(
            0x45, 0, 20 + len(udp) + len(payload), self._id, 0, 64, socket.IPPROTO_UDP, 0,
            socket.inet_aton(src[0]), socket.inet_aton(dst[0]),
        )  # fmt: skip
        self.sock.sendto(ip + udp + payload, (dst[0], 0))
        self.sent += 1

    def close(self) -> None:
        self.sock.close()


@dataclass
class StreamView:
    """What the sniffer last saw of the stream to one source port."""

    sender_port: int = 0
    ssrc: int = 0
    sbn: int = 0
    packets: int = 0


class Sniffer:
    """Watches datagrams to `port` on the loopback (a thread; `stop` ends it)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.view = StreamView()
        self.seen = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
        self._sock.settimeout(0.2)
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self._sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            ihl = (data[0] & 0x0F) * 4
            if len(data) < ihl + 8 + 12 + 6:
                continue
            sport, dport, _len, _sum = _UDP.unpack_from(data, ihl)
            if dport != self.port:
                continue
            payload = data[ihl + 8 :]
            view = self.view
            view.sender_port = sport
            view.ssrc = struct.unpack_from(">I", payload, 8)[0]
            view.sbn = struct.unpack_from(">H", payload, len(payload) - 6)[0]
            view.packets += 1
            self.seen.set()

    def stop(self) -> None:
        self._stop = True
        self._thread.join()
        self._sock.close()
