"""roc-send 0.4 traffic captured on the wire, replayed into the receiver with its capture
timing: the output must be the sent file, sample for sample, as roc-recv's was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from rocd.net.roc import EndReason, FecScheme, LatencyConfig, Receiver, ReceiverConfig
from tests.pcap import REPAIR_PORT, SOURCE_PORT, VECTORS, read_udp
from tests.receiver.sim import FRAME, MS, NS, find_offset

CAPTURES = {"rs8m_default.pcap": FecScheme.RS8M, "ldpc_default.pcap": FecScheme.LDPC_STAIRCASE}
FOOTER = 6
K = 18


def replay(
    path: Path, scheme: FecScheme, *, drop_esis: frozenset[int] = frozenset()
) -> tuple[npt.NDArray[np.float32], Receiver]:
    """Feed the capture at its own pace (time 0 = first datagram) and read every 10 ms, at
    5 ms past each 10 ms tick of the capture (the sender sends two packets per tick)."""
    datagrams = [d for d in read_udp(path) if d.dst[1] in (SOURCE_PORT, REPAIR_PORT)]
    t0 = datagrams[0].time
    config = ReceiverConfig(
        fec=scheme,
        drift_compensation=False,
        latency=LatencyConfig(target_ns=100 * MS),
    )
    receiver = Receiver(config)
    out = []
    i = 0
    reads = 260  # 2.6 s: the 2 s stream, its 100 ms latency, and some silence
    for k in range(reads):
        now = 5 * MS + k * 10 * MS
        while i < len(datagrams) and round((datagrams[i].time - t0) * NS) <= now:
            d = datagrams[i]
            at = round((d.time - t0) * NS)
            if d.dst[1] == SOURCE_PORT:
                if esi(d.payload, scheme) not in drop_esis:
                    receiver.on_source(d.payload, d.src, at)
            else:
                receiver.on_repair(d.payload, d.src, at)
            i += 1
        out.append(receiver.read(FRAME, now))
    return np.concatenate(out), receiver


def esi(payload: bytes, scheme: FecScheme) -> int:
    footer = payload[-FOOTER:]
    return footer[3] if scheme is FecScheme.RS8M else int.from_bytes(footer[2:4], "big")


@pytest.fixture(scope="module")
def wav() -> npt.NDArray[np.float32]:
    data, rate = soundfile.read(VECTORS / "sig2s_stereo.wav", dtype="int16")
    assert rate == 44100
    samples: npt.NDArray[np.float32] = data.astype(np.float32) / np.float32(32768)
    return samples


@pytest.mark.parametrize("name", sorted(CAPTURES))
@pytest.mark.parametrize("drop", [frozenset(), frozenset({3, 7, 11})], ids=["all", "esi3-7-11"])
def test_capture_replays_to_the_sent_file(
    name: str, drop: frozenset[int], wav: npt.NDArray[np.float32]
) -> None:
    output, receiver = replay(VECTORS / name, CAPTURES[name], drop_esis=drop)
    sent = 399 * 221  # roc-send does not send the last, partial packet of the file
    offset = find_offset(output, wav)
    np.testing.assert_array_equal(output[offset : offset + sent], wav[:sent])
    # Nothing before (the first sample of the file is the first one played), silence after.
    assert not output[:offset].any()
    # Started at the read of 105 ms, the first with the 100 ms target queued (21 packets:
    # roc-send sends them in pairs, 10 ms apart), from the target plus one frame before the
    # newest end: the frame then leaves exactly the target queued, its first samples being
    # the silence before the stream.
    assert offset == 10 * FRAME + (4410 + FRAME - 21 * 221)
    (ended,) = receiver.pop_ended()  # the stream ended: the watchdog removed the session
    assert ended.reason is EndReason.NO_PLAYBACK
    metrics = ended.metrics
    dropped = 22 * len(drop)  # 22 whole blocks of 18 (+ 3 packets)
    assert (metrics.received, metrics.lost, metrics.recovered) == (399 - dropped, dropped, dropped)
    assert (metrics.late, metrics.duplicated, metrics.filtered, metrics.malformed) == (0, 0, 0, 0)
