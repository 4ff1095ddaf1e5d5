"""Roles: what a peer's key or an API token may do, from least to most.

- viewer: read anything (peers, devices, VADs, streams, events);
- operator: also change devices, VADs and streams;
- admin: also manage trust (pair, revoke, invite), roles and API tokens.

Each role includes the ones before it. The role a request needs is declared where the
request is (the wire registry for requests that cross between instances, the API's
route table for HTTP).
"""

from __future__ import annotations

from typing import Final, Literal

from rocd.errors import Forbidden, InvalidRequest

Role = Literal["viewer", "operator", "admin"]
ROLES: Final[tuple[Role, ...]] = ("viewer", "operator", "admin")


def check_role(text: str, *, field: str = "role") -> Role:
    """`text` as a Role, or InvalidRequest naming the roles there are."""
    if text not in ROLES:
        raise InvalidRequest(
            f"invalid body: {field}: expected one of {', '.join(ROLES)}, got {text!r}",
            details=[{"in": "body", "field": field, "message": f"one of {', '.join(ROLES)}"}],
        )
    return text


def allows(have: str, need: Role) -> bool:
    """True if role `have` may do what `need` allows (an unknown role allows nothing)."""
    return have in ROLES and ROLES.index(have) >= ROLES.index(need)


def require(have: str, need: Role, who: str) -> None:
    """Forbidden, naming the missing role, unless `have` allows `need`."""
    if not allows(have, need):
        raise Forbidden(
            f"role {need} required; {who} has role {have or 'none'}",
            details=[{"required": need, "role": have}],
        )
