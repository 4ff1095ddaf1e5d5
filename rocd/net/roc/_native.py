"""Small C libraries beside their Python module: compiled by `scripts/setup.sh`, loaded
with ctypes when present (each caller keeps a pure-Python path for when they are not)."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

__all__ = ["NativeLibrary"]


class NativeLibrary:
    """`lib<name>.so` built from `_<name>.c`, both in this package's folder."""

    def __init__(self, name: str, *flags: str) -> None:
        here = Path(__file__).parent
        self.source = here / f"_{name}.c"
        self.path = here / f"lib{name}.so"  # not importable as a module
        self._flags = flags

    def load(self) -> ctypes.CDLL | None:
        """The library, or None when it was not built (or cannot be loaded here)."""
        if not self.path.exists():
            return None
        try:
            return ctypes.CDLL(str(self.path))
        except OSError:
            return None

    def build(self) -> Path:
        """Compile the library next to its source; CalledProcessError / FileNotFoundError
        when no C compiler is there."""
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise FileNotFoundError("no C compiler (cc, gcc) on PATH")
        temp = self.path.with_suffix(".so.tmp")
        command = [cc, *self._flags, "-shared", "-fPIC", "-o", str(temp), str(self.source)]
        subprocess.run(command, check=True)
        temp.replace(self.path)
        return self.path
