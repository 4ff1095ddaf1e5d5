"""One-time join tokens: everything a newcomer needs to join through an instance.

A token carries the inviting instance's listener address, its public key (so the
newcomer can authenticate it in the CURVE handshake without asking anyone) and a random
secret that the newcomer shows once in its `Hello`. The inviter keeps only a hash of the
secret. The token is text a person can paste: "rocd1-" then base64url of a MessagePack
array, no padding.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

import msgspec

from ._errors import MalformedMessage
from ._keys import check_public_key

TOKEN_PREFIX = "rocd1-"
#: Longest token accepted (a token is ~150 characters).
MAX_TOKEN_CHARS = 1024


class Invite(msgspec.Struct, frozen=True, array_like=True):
    address: str  # the inviter's listener, tcp://host:port
    key: str  # the inviter's public key, Z85
    secret: str  # one-time secret, shown once in the newcomer's Hello
    uid: str  # the inviter's uid
    role: str  # the role each side gives the other once joined


def new_secret() -> str:
    return secrets.token_urlsafe(18)


def hash_secret(secret: str) -> str:
    """What the inviter keeps: the secret is random, so a plain SHA-256 is enough."""
    return hashlib.sha256(secret.encode()).hexdigest()


def encode_invite(invite: Invite) -> str:
    raw = msgspec.msgpack.encode(invite)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_invite(token: str) -> Invite:
    """The invite in `token`, or MalformedMessage saying why it is not one."""
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS or not token.startswith(TOKEN_PREFIX):
        raise MalformedMessage(f"not a rocd join token (they start with {TOKEN_PREFIX!r})")
    body = token[len(TOKEN_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        invite = msgspec.msgpack.decode(raw, type=Invite)
        check_public_key(invite.key)
    except (ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedMessage(f"damaged join token: {str(exc)[:120]}".replace("`", "")) from None
    if not invite.address.startswith("tcp://") or not invite.secret:
        raise MalformedMessage("damaged join token: no address or secret")
    return invite
