"""The HTTP + WebSocket front: requests in, actor messages out; nothing else."""

from ._app import create_app
from ._auth import token_required
from ._cluster import InviteCreate, JoinBody, PeerCreate, RoleUpdate, TokenCreate
from ._context import ApiContext
from ._early_close import CloseEarlyAnswers
from ._events_ws import EventQuery
from ._guard import GuardPolicy
from ._openapi import openapi_document
from ._peers import PeerUpdate
from ._routes import API, Api, ErrorBody, Operation

__all__ = [
    "API",
    "Api",
    "ApiContext",
    "CloseEarlyAnswers",
    "ErrorBody",
    "EventQuery",
    "GuardPolicy",
    "InviteCreate",
    "JoinBody",
    "Operation",
    "PeerCreate",
    "PeerUpdate",
    "RoleUpdate",
    "TokenCreate",
    "create_app",
    "openapi_document",
    "token_required",
]
