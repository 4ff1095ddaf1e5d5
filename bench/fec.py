"""FEC cost on Roc's default block (18 source + 10 repair, 896-byte RTP packets = 5 ms of
44.1 kHz stereo L16). Run: `python -m bench.fec`. Times are medians per call, in us.

A default stream sends one block every 90 ms, so 1000 us per block is ~1% of a core.
The writer+reader lines run 3600 packets (200 blocks) through both ends, dropping a share
of the datagrams at random, and report the best of 9 runs per RTP packet.
"""

from __future__ import annotations

import functools
import random
import statistics
import time
from collections.abc import Callable

from rocd.net.roc import FecReader, FecScheme, FecWriter, LdpcStaircaseCodec, Rs8mCodec

K, R, L = 18, 10, 896
N = K + R


def _median_us(fn: Callable[[], object], repeat: int = 300) -> float:
    fn()  # warm caches (matrices, zfec tables)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1000


def _time_us(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / 1000


def _patterns(
    rng: random.Random,
    codec: LdpcStaircaseCodec,
    symbols: dict[int, bytes],
    lose: Callable[[], list[int]],
    count: int,
) -> list[dict[int, bytes]]:
    """`count` loss patterns drawn by `lose` that the code fully decodes."""
    out: list[dict[int, bytes]] = []
    while len(out) < count:
        lost = set(lose())
        kept = {e: s for e, s in symbols.items() if e not in lost}
        if len(codec.recover(K, N, kept)) == sum(e < K for e in lost):
            out.append(kept)
    return out


def bench_codecs() -> None:
    rng = random.Random(1)
    source = [rng.randbytes(L) for _ in range(K)]

    rs = Rs8mCodec()
    rs_all = dict(enumerate(source + rs.encode(source, R)))
    rs_lost10 = {e: s for e, s in rs_all.items() if e >= 10}  # 10 source lost
    encode_us = _median_us(lambda: rs.encode(source, R))
    print(f"RS8M  encode 18+10 x {L} B                 {encode_us:8.1f} us")
    print(
        f"RS8M  decode, 10 source lost               "
        f"{_median_us(lambda: rs.decode(K, 255, rs_lost10)):8.1f} us"
    )

    ldpc = LdpcStaircaseCodec()
    ldpc_all = dict(enumerate(source + ldpc.encode(source, R)))
    encode_us = _median_us(lambda: ldpc.encode(source, R))
    print(f"LDPC  encode 18+10 x {L} B                 {encode_us:8.1f} us")
    # 10% random loss: ~3 of 28 symbols. Then the hardest decodable cases: 10 of 28 lost,
    # and 10 source packets lost with only the 10 repair symbols to rebuild them from.
    cases: list[tuple[str, Callable[[], list[int]]]] = [
        ("10% loss (3 of 28 lost)", lambda: rng.sample(range(N), 3)),
        ("10 of 28 lost", lambda: rng.sample(range(N), 10)),
        ("10 source lost, all repair", lambda: rng.sample(range(K), 10)),
    ]
    for label, lose in cases:
        patterns = _patterns(rng, ldpc, ldpc_all, lose, 50)
        times = [_median_us(functools.partial(ldpc.recover, K, N, p), repeat=30) for p in patterns]
        print(
            f"LDPC  decode, {label:27s}  {statistics.median(times):8.1f} us median, "
            f"{max(times):.1f} us worst of {len(times)} decodable patterns"
        )


def bench_pipeline(scheme: FecScheme, loss: float) -> None:
    """Writer + reader per RTP packet, for a stream with `loss` of its datagrams dropped."""
    rng = random.Random(2)
    blocks = 200
    packets = [rng.randbytes(L) for _ in range(K * blocks)]

    def run() -> FecReader:
        writer = FecWriter(scheme, first_sbn=65500)
        reader = FecReader(scheme)
        drop = random.Random(3)
        for rtp in packets:
            out = writer.write(rtp)
            if drop.random() >= loss:
                reader.feed_source(out.source)
            for d in out.repair:
                if drop.random() >= loss:
                    reader.feed_repair(d)
        return reader

    reader = run()
    best = min(_time_us(run) for _ in range(9))  # best of 9: the least disturbed run
    per_packet = best / len(packets)
    print(
        f"{scheme.name:14s} writer+reader, {loss:4.0%} loss  {per_packet:8.1f} us per RTP packet "
        f"(recovered {reader.stats.recovered}, unrepaired blocks {reader.stats.unrepaired_blocks})"
    )


def main() -> None:
    bench_codecs()
    for scheme in FecScheme:
        for loss in (0.0, 0.1):
            bench_pipeline(scheme, loss)


if __name__ == "__main__":
    main()
