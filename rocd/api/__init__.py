"""The HTTP + WebSocket front: requests in, actor messages out; nothing else."""

from ._app import create_app
from ._auth import token_required
from ._context import ApiContext
from ._openapi import openapi_document
from ._routes import API, Api, ErrorBody, Operation

__all__ = [
    "API",
    "Api",
    "ApiContext",
    "ErrorBody",
    "Operation",
    "create_app",
    "openapi_document",
    "token_required",
]
