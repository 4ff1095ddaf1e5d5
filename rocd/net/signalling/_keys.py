"""An instance's CURVE key pair and the public keys of its peers.

The key pair is made once, at first start, in the state directory; the secret key file is
created with mode 0600 from the start (never written first and restricted after) and is
written in ZeroMQ's certificate format, so `zmq.auth.load_certificate` reads it too.
Public keys travel as Z85 text (40 characters); people compare them by fingerprint.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import zmq
from zmq.utils import z85

log = logging.getLogger("rocd.cluster")

#: The file in the state directory that holds the key pair.
KEY_FILE = "cluster.key_secret"
_Z85_CHARS = frozenset(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)


@dataclass(frozen=True)
class KeyPair:
    public: str  # Z85, 40 characters
    secret: str  # Z85, 40 characters; never leaves the instance


def check_public_key(text: str) -> str:
    """`text` if it is a Z85 CURVE public key (40 characters), else ValueError saying why."""
    if len(text) != 40:
        raise ValueError(f"a public key is 40 Z85 characters, got {len(text)}")
    bad = sorted(set(text) - _Z85_CHARS)
    if bad:
        raise ValueError(f"a public key is Z85 text; {''.join(bad)!r} is not Z85")
    return text


def fingerprint(public: str) -> str:
    """A short, stable name for a public key: 16 hex digits of its SHA-256."""
    return hashlib.sha256(z85.decode(public.encode())).hexdigest()[:16]


def load_or_create_keypair(state_dir: Path) -> KeyPair:
    """The key pair in `state_dir`, made there first if there is none (blocking).

    A key file others can read is used but warned about. Raises OSError when the file
    cannot be read or made, ValueError when it holds no key pair.
    """
    path = state_dir / KEY_FILE
    try:
        return _load(path)
    except FileNotFoundError:
        pass
    public, secret = zmq.curve_keypair()
    text = (
        "#   rocd cluster key pair: keep this file secret (mode 0600)\n"
        "metadata\n"
        "curve\n"
        f'    public-key = "{public.decode()}"\n'
        f'    secret-key = "{secret.decode()}"\n'
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load(path)  # another process made it meanwhile
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    log.info("made this instance's cluster key pair in %s", path)
    return KeyPair(public.decode(), secret.decode())


def _load(path: Path) -> KeyPair:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s is readable by others (mode %o): chmod 600 it", path, mode & 0o777)
    public = secret = ""
    for line in path.read_text().splitlines():
        name, _, value = line.strip().partition("=")
        value = value.strip().strip('"')
        if name.strip() == "public-key":
            public = value
        elif name.strip() == "secret-key":
            secret = value
    if not public or not secret:
        raise ValueError(f"{path} holds no CURVE key pair")
    check_public_key(public)
    check_public_key(secret)
    if zmq.curve_public(secret.encode()).decode() != public:
        raise ValueError(f"{path}: the public key does not match the secret key")
    return KeyPair(public, secret)
