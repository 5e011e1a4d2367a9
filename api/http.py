"""Response helpers: JSON bodies with ETags, 304s that never build a body, and bounded bodies"""

from __future__ import annotations

import io
from typing import Any

import orjson
from flask import Request as FlaskRequest
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


class Request(FlaskRequest):
    """Flask's request, closing every file the form parser opened for an upload at the end of the
    request: Werkzeug closes the files it parsed, but drops unclosed the one a malformed multipart
    body (cut short mid-file) left half-written."""

    def _get_file_stream(self, *args: Any, **kwargs: Any) -> Any:
        stream = super()._get_file_stream(*args, **kwargs)
        self.__dict__.setdefault("_upload_streams", []).append(stream)
        return stream

    def close(self) -> None:
        super().close()
        for stream in self.__dict__.pop("_upload_streams", []):
            stream.close()


class BoundedBody:
    """WSGI middleware: a body sent without a Content-Length (`Transfer-Encoding: chunked`) is
    read here, at most one byte past `MAX_CONTENT_LENGTH`, and handed on with its length. Flask
    then refuses one over the limit with its 413, as it does a declared length; Werkzeug alone
    would cut such a stream at the limit and let the view parse the truncated bytes."""

    def __init__(self, wsgi_app: Any, limit: int) -> None:
        self.wsgi_app = wsgi_app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if (
            not environ.get("CONTENT_LENGTH")
            and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        ):
            body = environ["wsgi.input"].read(self.limit + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING")
        return self.wsgi_app(environ, start_response)
