"""Cache hits answered before Flask: replays of responses Flask built, for the same requests.

When Flask answers a public GET from a representation in the read cache (`api.cache`), this
WSGI middleware records the response's headers, minus the per-request ones, under the request's
shape: path, query string, `Accept`, `Origin`, `Host` and scheme (all the response depends on).
The next request of that shape is answered from the recording while the cache version is
unchanged: a memory read for the version, a rate-limit count, and the stored bytes (or a 304).
No request context, no routing, no hooks: about a fifth of what Flask spends on the same answer.

Booking checks likewise: a body that is plainly valid (a JSON object holding only `treatments`,
1 to 100 references, each a string or `{"system", "id"}` of strings) whose every reference the
booking service already remembers at this version (only references that passed Flask's schema
are remembered) is answered by `booking.service.cached_answer`, with the headers of Flask's
last booking answer for the same `Origin`.

Anything else goes to Flask, which stays the reference: other methods and paths, an
`Authorization` or `Idempotency-Key` header, a client over its limit (Flask answers the 429),
a version still being settled (a write lease, `CACHE_COHERENCE=database`), a shape or reference
not seen at this version, any doubt about a body. `tests/api/test_fastpath.py` holds the
replies to Flask's, header for header and byte for byte.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES, remove_entity_headers

from api.booking.service import cached_answer
from api.cache import REPLAYABLE, Entry, is_fresh
from api.observability import new_request_id, write_access_line
from api.ratelimit import Window, address_key

BOOKING_PATH = "/v1/booking-checks"
BOOKING_ENDPOINT = "booking.BookingChecks"
MAX_REFS = 100  # as BookingCheckSchema
PER_REQUEST = {
    "x-request-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "retry-after",
}
OK, NOT_MODIFIED = (f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in (200, 304))

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class Replay:
    entry: Entry
    endpoint: str  # the rate limit's scope, as Flask counts it
    ok_headers: list[tuple[str, str]]
    not_modified_headers: list[tuple[str, str]]

    @property
    def body(self) -> bytes:  # counted by the read cache's byte bound
        return self.entry.body


class FastPath:
    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.wsgi_app = wsgi_app
        self.cache = app.extensions["read_cache"]
        self.host = app.extensions["host_version"]
        self.limits = app.extensions["rate_limits"]
        self.log_requests = app.config["LOG_REQUESTS"]
        self.max_body = app.config["MAX_CONTENT_LENGTH"]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if self.host is None or "HTTP_AUTHORIZATION" in environ:
            return self.wsgi_app(environ, start_response)
        if method in ("GET", "HEAD"):
            return self._read(environ, start_response)
        if (
            method == "POST"
            and environ.get("PATH_INFO") == BOOKING_PATH
            and "HTTP_IDEMPOTENCY_KEY" not in environ
        ):
            return self._booking(environ, start_response)
        return self.wsgi_app(environ, start_response)

    def _read(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        shape = ("replay", environ.get("PATH_INFO"), environ.get("QUERY_STRING"),
                 environ.get("HTTP_ACCEPT"), environ.get("HTTP_ORIGIN"),
                 environ.get("HTTP_HOST"), environ.get("wsgi.url_scheme"))  # fmt: skip
        _version, replay = self._current(shape)
        if replay is not None:
            answer = self._answer(replay, environ, start_response, started)
            if answer is not None:
                return answer
        return self.wsgi_app(environ, self._recorder(shape, environ, start_response))

    def _booking(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        shape = ("booking-headers", environ.get("HTTP_ORIGIN"))
        version, headers = self._current(shape)
        body = _read_body(environ, self.max_body) if headers is not None else None
        refs = _plain_refs(body) if body is not None else None
        answer = cached_answer(self.cache, version, refs) if refs is not None else None
        window = self._count(self.limits.booking, f"booking:{BOOKING_ENDPOINT}", environ) if answer else None
        if answer is None or (window is not None and not window.allowed):
            if body is not None:
                environ["wsgi.input"] = io.BytesIO(body)  # Flask reads it again
            return self.wsgi_app(environ, self._header_recorder(shape, start_response))
        payload = orjson.dumps(answer)  # as the route's json_response
        response_headers = [*headers, ("Content-Length", str(len(payload)))]
        return self._send(OK, response_headers, [payload], window, environ, start_response, started)

    def _current(self, shape: tuple[Any, ...]) -> tuple[Any, Any]:
        """The host's current version, and what was recorded for this shape at it (or None)."""
        version = self.host.version()
        return (None, None) if version is None else (version, self.cache.get(shape, version))

    def _answer(
        self, replay: Replay, environ: dict[str, Any], start_response: StartResponse, started: float
    ) -> list[bytes] | None:
        window = self._count(self.limits.public, f"public:{replay.endpoint}", environ)
        if window is not None and not window.allowed:
            return None  # Flask answers the 429
        fresh = is_fresh(
            replay.entry, environ.get("HTTP_IF_NONE_MATCH"), environ.get("HTTP_IF_MODIFIED_SINCE")
        )
        if fresh:
            return self._send(
                NOT_MODIFIED, replay.not_modified_headers, [], window, environ, start_response, started
            )
        body = [] if environ["REQUEST_METHOD"] == "HEAD" else [replay.entry.body]
        return self._send(OK, replay.ok_headers, body, window, environ, start_response, started)

    def _count(self, item: Any, scope: str, environ: dict[str, Any]) -> Window | None:
        if not self.limits.enabled:
            return None
        window: Window | None = self.limits.hit(item, scope, address_key(environ.get("REMOTE_ADDR")))
        return window

    def _send(
        self,
        status: str,
        headers: list[tuple[str, str]],
        body: list[bytes],
        window: Window | None,
        environ: dict[str, Any],
        start_response: StartResponse,
        started: float,
    ) -> list[bytes]:
        """Flask's per-request headers on a recorded answer: the request id, the client's limit."""
        request_id = new_request_id(environ.get("HTTP_X_REQUEST_ID"))
        headers = [*headers, ("X-Request-ID", request_id)]
        if window is not None:
            headers.extend(window.headers())
        start_response(status, headers)
        if self.log_requests:
            method = environ["REQUEST_METHOD"]
            path = environ.get("PATH_INFO", "").encode("latin-1").decode(errors="replace")  # as Werkzeug
            write_access_line(request_id, method, path, int(status[:3]), started, environ.get("REMOTE_ADDR"))
        return body

    def _recorder(
        self, shape: tuple[Any, ...], environ: dict[str, Any], start_response: StartResponse
    ) -> StartResponse:
        """Flask's start_response, recording a 200 built from the read cache on its way out."""

        def record(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            built_from = environ.get(REPLAYABLE)
            if built_from is not None and status == OK:
                entry, version, endpoint = built_from
                kept = [(name, value) for name, value in headers if name.lower() not in PER_REQUEST]
                not_modified = list(kept)
                remove_entity_headers(not_modified)  # as Werkzeug does for a 304
                self.cache.put(shape, Replay(entry, endpoint, kept, not_modified), version)
            return start_response(status, headers, *exc_info)

        return record

    def _header_recorder(self, shape: tuple[Any, ...], start_response: StartResponse) -> StartResponse:
        """Flask's start_response, recording the headers of a booking answer (all but the
        per-request ones and the length) for the answers given here. They do not depend on the
        data, so they are kept at whatever version the cache holds."""

        def record(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            if status == OK:
                kept = [(name, value) for name, value in headers
                        if name.lower() not in PER_REQUEST and name.lower() != "content-length"]  # fmt: skip
                self.cache.put(shape, kept, self.cache.version)
            return start_response(status, headers, *exc_info)

        return record


def _read_body(environ: dict[str, Any], limit: int) -> bytes | None:
    """The body, when it is declared JSON with a length within the limit; else None."""
    content_type = environ.get("CONTENT_TYPE", "")
    if content_type.partition(";")[0].strip().lower() != "application/json":
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if not 0 < length <= limit:
        return None
    body: bytes = environ["wsgi.input"].read(length)
    return body


def _plain_refs(body: bytes) -> list[Any] | None:
    """The references of a plainly valid booking check, normalised as the schema loads them."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or len(data) != 1:
        return None
    refs = data.get("treatments")
    if not isinstance(refs, list) or not 1 <= len(refs) <= MAX_REFS:
        return None
    plain: list[Any] = []
    for ref in refs:
        if isinstance(ref, str):
            plain.append(ref)
        elif (isinstance(ref, dict) and len(ref) == 2 and isinstance(ref.get("system"), str)
              and isinstance(ref.get("id"), str)):  # fmt: skip
            plain.append({"system": ref["system"], "id": ref["id"]})
        else:
            return None
    return plain


def init_app(app: Flask) -> None:
    """Install the fast path innermost, under any proxy fix (so addresses are the clients')."""
    if app.config["CACHE_FAST_PATH"]:
        app.wsgi_app = FastPath(app, app.wsgi_app)  # type: ignore[method-assign]
