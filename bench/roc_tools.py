"""What the side-by-side benchmarks share: the reference Roc tools, ports, input, checks.

The reference `roc-send` / `roc-recv` (Roc Toolkit 0.4) are found in ROC_PREFIX/bin, then
on PATH. When neither has them and a Roc build script is at hand (ROC_BUILD, or
`../shared/roc/build.sh` beside the repository), they are built into
~/.cache/rocd/roc-prefix (offline, once; about a minute).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from tests.e2e.signals import align, quantise_l16, snr_db

ROCD = [sys.executable, "-m", "rocd.cli"]
REPO = Path(__file__).resolve().parent.parent
RATE = 44100

Frames = npt.NDArray[np.float32]


@cache
def roc_tool(name: str) -> str:
    """Path of `roc-send` / `roc-recv`, building them if needed (see the module doc)."""
    prefix = os.environ.get("ROC_PREFIX")
    if prefix and (Path(prefix) / "bin" / name).is_file():
        return str(Path(prefix) / "bin" / name)
    found = shutil.which(name)
    if found:
        return found
    script = Path(os.environ.get("ROC_BUILD", REPO.parent / "shared" / "roc" / "build.sh"))
    if not script.is_file():
        sys.exit(
            f"{name} not found: set ROC_PREFIX to a Roc Toolkit 0.4 prefix, put it on PATH, "
            "or set ROC_BUILD to Roc's build script"
        )
    cache_prefix = Path.home() / ".cache" / "rocd" / "roc-prefix"
    print(f"building the reference Roc tools into {cache_prefix} ...", flush=True)
    subprocess.run([str(script), str(cache_prefix)], check=True)
    return str(cache_prefix / "bin" / name)


def reap(proc: subprocess.Popen[bytes]) -> None:
    """Kill `proc` if it still runs, wait for it, close its stderr pipe."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


def uris(ports: list[int], fec: str = "rs8m") -> list[str]:
    """-s/-r/-c options for one slot on 127.0.0.1 (no repair endpoint without FEC)."""
    if fec == "none":
        return ["-s", f"rtp://127.0.0.1:{ports[0]}", "-c", f"rtcp://127.0.0.1:{ports[2]}"]
    return [
        "-s", f"rtp+{fec}://127.0.0.1:{ports[0]}",
        "-r", f"{fec}://127.0.0.1:{ports[1]}",
        "-c", f"rtcp://127.0.0.1:{ports[2]}",
    ]  # fmt: skip


def make_input(path: Path, seconds: float, seed: int = 3) -> Path:
    """A 16-bit stereo WAV (exact through L16): a slow sweep with a little noise, so the
    copy that arrives can be aligned by correlation, then ~0.2 s of silence."""
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    f0, f1 = 200.0, 4000.0
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    left = 0.4 * np.sin(phase) + np.random.default_rng(seed).normal(0, 0.01, n)
    frames = np.stack([left, -0.6 * left], axis=1)
    frames[-RATE // 5 :] = 0
    sf.write(path, frames, RATE, subtype="PCM_16")
    return path


def stream_check(sent: Frames, out: Path) -> str:
    """How well `out` holds `sent`: 'exact', or 'SNR x dB' (and what is missing)."""
    got, rate = sf.read(out, dtype="float32", always_2d=True)
    if rate != RATE or len(got) == 0:
        return f"bad output ({len(got)} frames at {rate} Hz)"
    offset = align(sent, got)
    part = got[offset : offset + len(sent)]
    expected = quantise_l16(sent)[: len(part)]
    short = len(sent) - len(part)
    tail = f", {short / RATE * 1000:.0f} ms missing at the end" if short > 0 else ""
    differs = np.nonzero(np.any(part != expected, axis=1))[0]
    if len(differs) == 0:
        return f"exact{tail}"
    # A receiver may leave up to one 10 ms read of the start out (silence instead).
    if differs[-1] < RATE // 100 and not np.any(part[: differs[-1] + 1]):
        return f"exact (start trimmed by {differs[-1] + 1} samples){tail}"
    return f"SNR {snr_db(expected, part):.1f} dB ({len(differs)} frames differ){tail}"


def arrival_check(sent: Frames, out: Path) -> str:
    """How much of `sent` reached `out` when it went through a resampler (drift
    compensation: not sample-exact): seconds of sound that arrived, by the count of frames
    that are not silence, against the input's."""
    got, rate = sf.read(out, dtype="float32", always_2d=True)
    heard = int(np.count_nonzero(np.any(np.abs(got) > 1e-4, axis=1)))
    total = int(np.count_nonzero(np.any(np.abs(sent) > 1e-4, axis=1)))
    return f"{heard / rate:.2f} s of {total / RATE:.2f} s of sound arrived"
