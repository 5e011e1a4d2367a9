"""Response helpers: JSON bodies with ETags, and 304s that never build a body"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response, request

IF_MATCH_PARAMETER = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "schema": {"type": "string"},
    "description": "The ETag of the representation you last read (428 without, 412 if stale).",
}
ETAG_HEADER = {"ETag": {"description": "Entity tag of this representation", "schema": {"type": "string"}}}


def json_response(
    payload: Any,
    status: int = 200,
    etag: str | None = None,
    headers: dict[str, str] | None = None,
    mimetype: str = "application/json",
) -> Response:
    response = Response(orjson.dumps(payload), status=status, mimetype=mimetype)
    if etag is not None:
        response.headers["ETag"] = etag
    response.headers.update(headers or {})
    return response


def if_match() -> str | None:
    return request.headers.get("If-Match")
