"""LDPC-Staircase decoding: rocd's vectorised numpy decoder against a compiled one.

    python -m bench.ldpc_decoders [--repeat 7]

The compiled core (rocd/net/roc/_ldpc_native.c, loaded with ctypes when scripts/setup.sh
built it) runs the same algorithm as the numpy decoder: the reduced system, peeling, then
Gauss-Jordan elimination, without numpy's cap (ML_MAX_UNKNOWNS) on what elimination takes
on. Both get the same received symbols; times are medians per decode in ms, with the
number of lost source packets each rebuilt. The largest block rocd accepts is 1 MiB of
symbols (N x length) and N <= 1024; one decode may cost at most MAX_DECODE_WORK.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from rocd.net.roc import LdpcStaircaseCodec, _ldpc_native


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if not _ldpc_native.available():
        _ldpc_native.build()
        raise SystemExit("built the compiled decoder: run again to load it")
    compiled = LdpcStaircaseCodec(native=True)
    numpy_codec = LdpcStaircaseCodec(native=False)
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'block (K/R x bytes)':22s} {'loss':>5s} {'numpy ms':>9s} {'rebuilt':>7s} "
          f"{'C ms':>8s} {'rebuilt':>7s}")  # fmt: skip
    cases = [
        (18, 10, 896, 0.1), (18, 10, 896, 0.3), (100, 50, 1800, 0.25),
        (340, 172, 2040, 0.05), (340, 172, 2040, 0.25), (512, 512, 1024, 0.2),
        (512, 512, 1024, 0.4), (1000, 24, 1024, 0.02), (900, 124, 1024, 0.1),
    ]  # fmt: skip
    for k, r, length, loss in cases:
        rng = random.Random(k * 7 + r)
        source = [rng.randbytes(length) for _ in range(k)]
        everything = dict(enumerate(source + numpy_codec.encode(source, r)))
        lost = set(rng.sample(range(k + r), round(loss * (k + r))))
        symbols = {e: s for e, s in everything.items() if e not in lost}
        numpy_codec.recover(k, k + r, symbols)  # the matrix is built once per geometry
        results = []
        for codec in (numpy_codec, compiled):
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter_ns()
                got = codec.recover(k, k + r, symbols)
                times.append((time.perf_counter_ns() - t0) / 1e6)
            assert all(got[e] == source[e] for e in got)
            results.append((statistics.median(times), len(got)))
        label = f"{k}/{r} x {length}"
        print(f"{label:22s} {loss:5.0%} {results[0][0]:9.2f} {results[0][1]:7d} "
              f"{results[1][0]:8.2f} {results[1][1]:7d}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
