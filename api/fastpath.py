"""Cache hits answered before Flask: a replay of the response Flask built for the same request.

When Flask answers a public GET from a representation in the read cache (`api.cache`), this
WSGI middleware records the response's headers, minus the per-request ones, under the request's
shape: path, query string, `Accept` and `Origin` (every request header the response depends on).
The next request of that shape is answered from the recording while the cache version is
unchanged: a memory read for the version, a rate-limit count, and the stored bytes (or a 304).
No request context, no routing, no hooks: about a fifth of what Flask spends on the same answer.

Anything else goes to Flask, which stays the reference: other methods, an `Authorization`
header (its limits need the key checked), a client over its limit (Flask answers the 429),
a version still being settled (a write lease, `CACHE_COHERENCE=database`) or a shape not seen
at this version. `tests/api/test_fastpath.py` holds the replies to Flask's, header for header.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES, remove_entity_headers

from api.cache import REPLAYABLE, Entry, is_fresh
from api.observability import new_request_id, write_access_line
from api.ratelimit import address_key

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

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method not in ("GET", "HEAD") or "HTTP_AUTHORIZATION" in environ or self.host is None:
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        shape = ("replay", environ.get("PATH_INFO"), environ.get("QUERY_STRING"),
                 environ.get("HTTP_ACCEPT"), environ.get("HTTP_ORIGIN"))  # fmt: skip
        replay = self._current(shape)
        if replay is not None:
            answer = self._answer(replay, environ, start_response, started)
            if answer is not None:
                return answer
        return self.wsgi_app(environ, self._recorder(shape, environ, start_response))

    def _current(self, shape: tuple[Any, ...]) -> Replay | None:
        generation = self.host.current()
        if generation is None or self.cache.version != ("host", generation):
            return None
        replay: Replay | None = self.cache.get(shape)
        return replay

    def _answer(
        self, replay: Replay, environ: dict[str, Any], start_response: StartResponse, started: float
    ) -> list[bytes] | None:
        window = None
        if self.limits.enabled:
            window = self.limits.hit(self.limits.public, "public", address_key(environ.get("REMOTE_ADDR")))
            if window is not None and not window.allowed:
                return None  # Flask answers the 429
        fresh = is_fresh(
            replay.entry, environ.get("HTTP_IF_NONE_MATCH"), environ.get("HTTP_IF_MODIFIED_SINCE")
        )
        headers = list(replay.not_modified_headers if fresh else replay.ok_headers)
        request_id = new_request_id(environ.get("HTTP_X_REQUEST_ID"))
        headers.append(("X-Request-ID", request_id))
        if window is not None:
            headers.extend(window.headers())
        start_response(NOT_MODIFIED if fresh else OK, headers)
        if self.log_requests:
            status = 304 if fresh else 200
            method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
            write_access_line(request_id, method, path, status, started, environ.get("REMOTE_ADDR"))
        return [] if fresh or environ["REQUEST_METHOD"] == "HEAD" else [replay.entry.body]

    def _recorder(
        self, shape: tuple[Any, ...], environ: dict[str, Any], start_response: StartResponse
    ) -> StartResponse:
        """Flask's start_response, recording a 200 built from the read cache on its way out."""

        def record(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            built_from = environ.get(REPLAYABLE)
            if built_from is not None and status == OK:
                entry, version = built_from
                kept = [(name, value) for name, value in headers if name.lower() not in PER_REQUEST]
                not_modified = list(kept)
                remove_entity_headers(not_modified)  # as Werkzeug does for a 304
                self.cache.put(shape, Replay(entry, kept, not_modified), version)
            return start_response(status, headers, *exc_info)

        return record


def init_app(app: Flask) -> None:
    """Install the fast path innermost, under any proxy fix (so addresses are the clients')."""
    if app.config["CACHE_FAST_PATH"]:
        app.wsgi_app = FastPath(app, app.wsgi_app)  # type: ignore[method-assign]
