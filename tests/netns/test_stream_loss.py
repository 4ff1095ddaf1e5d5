"""Two daemons on two hosts (network namespaces), a stream between them through external
endpoints, 5% of the packets dropped by the kernel on the receiving host (iptables): the
sink on B plays the file A streams, sample for sample (every FEC block repaired).

The daemons' APIs listen on each namespace's loopback, so the test speaks to them with
curl run inside the namespace, as a user logged into that host would.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.e2e.signals import assert_exact_stream, whole_fec_blocks
from tests.pulse_server import PulseServer
from tests.streams.conftest import (
    LOSSY,
    NullSink,
    Recorder,
    Rocd,
    device,
    external,
    l16_noise,
    ports_of,
    write_wav,
)

from .conftest import Hosts

NOISE = l16_noise(3.0, seed=33)


class CurlResponse:
    def __init__(self, status: int, text: str) -> None:
        self.status_code = status
        self.text = text

    def json(self) -> Any:
        return json.loads(self.text)


class CurlClient:
    """The part of httpx.Client that `Rocd` uses, through curl inside a namespace."""

    def __init__(self, hosts: Hosts, ns: str, url: str) -> None:
        self.hosts, self.ns, self.url = hosts, ns, url

    def request(self, method: str, path: str, body: Any = None) -> CurlResponse:
        cmd = ["curl", "-s", "-X", method, "-w", "\n%{http_code}", f"{self.url}{path}"]
        if body is not None:
            cmd += ["-H", "content-type: application/json", "-d", json.dumps(body)]
        done = subprocess.run(
            self.hosts.run(self.ns, *cmd), capture_output=True, text=True, timeout=30, check=True
        )
        text, _, status = done.stdout.rpartition("\n")
        return CurlResponse(int(status), text)

    def get(self, path: str) -> CurlResponse:
        return self.request("GET", path)

    def post(self, path: str, json: Any = None) -> CurlResponse:
        return self.request("POST", path, json)

    def delete(self, path: str) -> CurlResponse:
        return self.request("DELETE", path)

    def close(self) -> None:
        pass


def start_in(hosts: Hosts, ns: str, root: Path, pulse: PulseServer) -> Rocd:
    rocd = Rocd(root, pulse, wrap=["ip", "netns", "exec", ns])
    write_wav(rocd.files / "noise.wav", NOISE)
    rocd.start()
    rocd.http = CurlClient(hosts, ns, rocd.url)  # type: ignore[assignment]
    return rocd


def test_kernel_loss_between_two_hosts_is_repaired(
    hosts: Hosts, pulse_server: PulseServer, tmp_path: Path
) -> None:
    subprocess.run(
        hosts.run(hosts.b, "iptables", "-A", "INPUT", "-p", "udp", "-m", "statistic",
                  "--mode", "random", "--probability", "0.05", "-j", "DROP"),
        check=True,
    )  # fmt: skip
    a = start_in(hosts, hosts.a, tmp_path / "a", pulse_server)
    b = start_in(hosts, hosts.b, tmp_path / "b", pulse_server)
    sink = NullSink(pulse_server, "netns_b")
    try:
        b.wait_device(sink.device)
        recorder = Recorder(pulse_server, sink.name, tmp_path / "rec.raw")
        into_b = b.create(external([0, 0, 0], host="0.0.0.0"), device(sink.device), **LOSSY)
        ports = ports_of(into_b["ends"][0])
        from_a = a.create(
            device("file:source:noise.wav"), external(ports, host=hosts.addr_b), **LOSSY
        )
        a.wait_state(from_a["uid"], "stopped", timeout=20)
        time.sleep(0.6)
        metrics = b.http.get(f"/streams/{into_b['uid']}/metrics").json()
        got = recorder.stop()
    finally:
        sink.unload()
        a.kill()
        b.kill()
    receiver = metrics["ends"][0]["receiver"]
    assert receiver["packetsLost"] > 0, receiver  # the kernel did drop packets
    assert receiver["recovered_packets"] > 0, receiver
    assert_exact_stream(whole_fec_blocks(NOISE), got, expected_delay_s=(0.0, 30.0))
