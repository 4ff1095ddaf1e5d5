"""GET /openapi.json and GET /docs: the API described from its own declarations.

The document is built from the `Operation`s the resource modules declare and the msgspec
models they use (msgspec.json.schema_components), so every route is in it by construction.
/docs renders the same document as a plain HTML page (no scripts, no CDN: it must work on
a machine with no internet access).
"""

from __future__ import annotations

import html
from http import HTTPStatus
from typing import Any

import msgspec

from rocd import __version__

from ._context import ApiContext
from ._guard import guard_statuses
from ._routes import API, Api, ErrorBody, Operation

_REF = "#/components/schemas/{name}"
#: Path parameters that always name something: (name, path or None for any path).
_PATH_EXAMPLES = {
    ("peer", None): "self",
    ("uid", "/peers/{uid}"): "self",
    ("uid", "/peers/{peer}/devices/{uid}"): "tone:sine",
}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _links(op: Operation, api: Api) -> dict[str, Any]:
    """A creation (POST answered 201 with the new resource) links to the operations on
    `<path>/{uid}`, the uid taken from the answer: clients and test generators follow it."""
    if op.method != "POST" or op.status != 201:
        return {}
    item = f"{op.openapi_path}/{{uid}}"
    params = {p: f"$request.path.{p}" for p in op.path_params}
    return {
        f"{other.method.lower()}_{other.handler.__name__}": {
            "operationId": f"{other.tag}_{other.handler.__name__}",
            "parameters": {**params, "uid": f"$response.body#/{op.link_field}"},
        }
        for other in api.operations
        if other.openapi_path == item
    }


def _operation(op: Operation, schema_of: dict[Any, dict[str, Any]], api: Api) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{op.tag}_{op.handler.__name__}",
        "tags": [op.tag],
    }
    if op.description:
        doc["description"] = op.description
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in op.path_params
    ]
    for param in params:
        example = _PATH_EXAMPLES.get((param["name"], op.openapi_path))
        example = example or _PATH_EXAMPLES.get((param["name"], None))
        if example is not None:
            param["example"] = example
    if op.query is not None:
        query_schema = msgspec.json.schema(op.query)
        body = query_schema["$defs"][query_schema["$ref"].rsplit("/", 1)[1]]
        required = set(body.get("required", []))
        for name, prop in body["properties"].items():
            params.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {"required": True, "content": _json_content(schema_of[op.body])}
    responses: dict[str, Any] = {}
    if op.websocket:
        responses["101"] = {
            "description": "Switching to the WebSocket protocol; messages follow this schema.",
            "content": _json_content(schema_of[op.response]),
        }
    elif op.response is None:
        responses[str(op.status)] = {"description": HTTPStatus(op.status).phrase}
    elif op.media_type != "application/json":
        responses[str(op.status)] = {
            "description": HTTPStatus(op.status).phrase,
            "content": {op.media_type: {"schema": {"type": "string"}}},
        }
    else:
        responses[str(op.status)] = {
            "description": HTTPStatus(op.status).phrase,
            "content": _json_content(schema_of[op.response]),
        }
        if links := _links(op, api):
            responses[str(op.status)]["links"] = links
    # 401: a token given that is wrong is refused anywhere (rocd.api._auth).
    for status in sorted({*op.errors, *guard_statuses(has_body=op.body is not None), 401, 500}):
        responses[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": _json_content(schema_of[ErrorBody]),
        }
    doc["responses"] = responses
    return doc


def openapi_document(api: Api) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every operation declared on `api`."""
    types: list[Any] = [ErrorBody]
    for op in api.operations:
        for t in (op.response if op.media_type == "application/json" else None, op.body):
            if t is not None and t not in types:
                types.append(t)
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
    schema_of = dict(zip(types, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in api.operations:
        paths.setdefault(op.openapi_path, {})[op.method.lower()] = _operation(op, schema_of, api)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rocd",
            "version": __version__,
            "description": "Real-time audio streaming daemon: peers, devices, streams, events.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }


def _pretty(value: Any) -> str:
    return msgspec.json.format(msgspec.json.encode(value)).decode()


def docs_page(doc: dict[str, Any]) -> str:
    """A self-contained HTML page listing every operation with its schemas."""
    esc = html.escape
    rows: list[str] = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            params = ", ".join(
                f"{esc(p['name'])} ({esc(p['in'])})" for p in op.get("parameters", [])
            )
            codes = ", ".join(esc(c) for c in op["responses"])
            rows.append(
                f"<tr><td><b>{esc(method.upper())}</b></td><td><code>{esc(path)}</code></td>"
                f"<td>{esc(op['summary'])}</td><td>{params}</td><td>{codes}</td></tr>"
            )
    schemas = "".join(
        f"<h3 id='{esc(name)}'>{esc(name)}</h3><pre>{esc(_pretty(schema))}</pre>"
        for name, schema in doc["components"]["schemas"].items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>rocd API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:4px 10px;"
        "border-bottom:1px solid #ddd}pre{background:#f6f6f6;padding:8px}</style></head><body>"
        f"<h1>rocd API {esc(doc['info']['version'])}</h1>"
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1).</p>"
        "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th>"
        f"<th>responses</th></tr>{''.join(rows)}</table><h2>Schemas</h2>{schemas}"
        "</body></html>"
    )


@API.route(
    "GET",
    "/openapi.json",
    summary="This API's OpenAPI 3.1 document",
    tag="docs",
    response=dict[str, Any],
)
async def openapi(ctx: ApiContext) -> dict[str, Any]:
    return openapi_document(API)


@API.route(
    "GET",
    "/docs",
    summary="This API as a browsable page",
    tag="docs",
    response=str,
    media_type="text/html; charset=utf-8",
)
async def docs(ctx: ApiContext) -> str:
    return docs_page(openapi_document(API))
