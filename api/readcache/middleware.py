"""Cache hits answered before Flask: replays of answers Flask built, for requests of the same shape.

When Flask answers a cacheable GET from the read cache (`hooks`), this WSGI middleware records
the response's headers, minus the per-request ones (`PER_REQUEST`), under the request's shape:
path, query string, `Accept` and `Origin` (all the answer depends on: public URLs come from
`PUBLIC_BASE_URL`, never from `Host`). A 200 records the full answer, a 304 the not-modified one.
The next request of that shape is answered from the recording while the version is unchanged: a
memory read for the version, a rate-limit count, the stored bytes or a 304, a request id and the
access line. No request context, no
routing, no hooks: about a fifth of what Flask spends on the same answer.

A feature can answer its own POSTs here too (`ReadPath.answer_before_flask`): the booking
checks do, from the facts they remember, with the headers of Flask's last answer on that path.

Anything else goes to Flask, which stays the reference: other methods and paths, an
`Authorization` or `Idempotency-Key` header, a client over its limit (Flask answers the 429),
a version the worker cannot vouch for (`version.Coherence`), a shape not seen at this version,
any doubt about a body. `tests/api/test_fastpath.py` holds the replies to Flask's, header for
header and byte for byte.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from werkzeug.http import HTTP_STATUS_CODES, remove_entity_headers

from api.observability import new_request_id, write_access_line
from api.ratelimit import Window, address_key
from api.readcache.hooks import REPLAYABLE
from api.readcache.http import is_fresh
from api.readcache.store import Entry

if TYPE_CHECKING:
    from api.readcache import ReadPath

# Headers that belong to one request, never to a recording: the request id and the client's limit.
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
# A feature's answer from memory: (body, version) -> the JSON answer, or None to ask Flask.
Answerer = Callable[[bytes, Hashable], Any]


@dataclass(frozen=True)
class Replay:
    entry: Entry
    endpoint: str  # the rate limit's scope, as Flask counts it
    ok_headers: list[tuple[str, str]] | None  # None while only a 304 was recorded for this shape
    not_modified_headers: list[tuple[str, str]]


@dataclass(frozen=True)
class PostRoute:
    endpoint: str
    limit: str  # the rate limit's kind (`api.ratelimit.RateLimits.count`)
    answer: Answerer


class FastPath:
    def __init__(self, path: ReadPath, wsgi_app: WSGIApp, config: Any) -> None:
        self.wsgi_app = wsgi_app
        self.path = path
        self.cache = path.cache
        self.limits = path.limits
        self.log_requests = config["LOG_REQUESTS"]
        self.max_body = config["MAX_CONTENT_LENGTH"]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if "HTTP_AUTHORIZATION" not in environ:
            method = environ["REQUEST_METHOD"]
            if method in ("GET", "HEAD"):
                return self._read(environ, start_response)
            if method == "POST" and "HTTP_IDEMPOTENCY_KEY" not in environ:
                route = self.path.post_routes.get(environ.get("PATH_INFO", ""))
                if route is not None:
                    return self._post(route, environ, start_response)
        return self.wsgi_app(environ, start_response)

    def _read(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        shape = ("replay", environ.get("PATH_INFO"), environ.get("QUERY_STRING"),
                 environ.get("HTTP_ACCEPT"), environ.get("HTTP_ORIGIN"))  # fmt: skip
        version, replay = self._current(shape)
        if version is None:
            return self.wsgi_app(environ, start_response)  # nothing recorded now would be replayed
        if replay is not None:
            answer = self._replay(replay, environ, start_response, started)
            if answer is not None:
                return answer
        return self.wsgi_app(environ, self._recorder(shape, replay, environ, start_response))

    def _post(
        self, route: PostRoute, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        shape = ("post-headers", environ.get("PATH_INFO"), environ.get("HTTP_ORIGIN"))
        version, headers = self._current(shape)
        body = _read_body(environ, self.max_body) if headers is not None else None
        answer = route.answer(body, version) if body is not None else None
        window = self._count(route.limit, route.endpoint, environ) if answer is not None else None
        if answer is None or (window is not None and not window.allowed):
            if body is not None:
                environ["wsgi.input"] = io.BytesIO(body)  # Flask reads it again
            return self.wsgi_app(environ, self._header_recorder(shape, start_response))
        payload = orjson.dumps(answer)  # as the route's json_response
        response_headers = [*headers, ("Content-Length", str(len(payload)))]
        return self._send(OK, response_headers, [payload], window, environ, start_response, started)

    def _current(self, shape: tuple[Any, ...]) -> tuple[Hashable, Any]:
        """The version this worker vouches for, and what was recorded for this shape at it."""
        version = self.path.coherence.version()
        return (None, None) if version is None else (version, self.cache.get(shape, version))

    def _replay(
        self, replay: Replay, environ: dict[str, Any], start_response: StartResponse, started: float
    ) -> list[bytes] | None:
        fresh = is_fresh(
            replay.entry, environ.get("HTTP_IF_NONE_MATCH"), environ.get("HTTP_IF_MODIFIED_SINCE")
        )
        status, headers = (NOT_MODIFIED, replay.not_modified_headers) if fresh else (OK, replay.ok_headers)
        if headers is None:
            return None  # this answer was not recorded yet: Flask gives it (and it is recorded)
        window = self._count("public", replay.endpoint, environ)
        if window is not None and not window.allowed:
            return None  # Flask answers the 429
        body = [] if fresh or environ["REQUEST_METHOD"] == "HEAD" else [replay.entry.body]
        return self._send(status, headers, body, window, environ, start_response, started)

    def _count(self, kind: str, endpoint: str, environ: dict[str, Any]) -> Window | None:
        if not self.limits.enabled:
            return None
        return self.limits.count(kind, endpoint, address_key(environ.get("REMOTE_ADDR")))

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
        self,
        shape: tuple[Any, ...],
        known: Replay | None,
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> StartResponse:
        """Flask's start_response, recording a 200 or 304 built from the read cache on its way out."""

        def record(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            built_from = environ.get(REPLAYABLE)
            if built_from is not None and status in (OK, NOT_MODIFIED):
                entry, version, endpoint = built_from
                kept = [(name, value) for name, value in headers if name.lower() not in PER_REQUEST]
                if status == OK:  # a 304's headers follow from it, as Werkzeug makes them
                    not_modified = list(kept)
                    remove_entity_headers(not_modified)
                    replay = Replay(entry, endpoint, kept, not_modified)
                else:  # a 304 alone: replayed to revalidations only, until a 200 comes by
                    ok = known.ok_headers if known is not None and known.entry is entry else None
                    replay = Replay(entry, endpoint, ok, kept)
                self.cache.put(shape, replay, version)
            return start_response(status, headers, *exc_info)

        return record

    def _header_recorder(self, shape: tuple[Any, ...], start_response: StartResponse) -> StartResponse:
        """Flask's start_response, recording the headers of a 200 (all but the per-request ones
        and the length) for the answers given here. They do not depend on the data, so they
        are kept at whatever version the cache holds."""

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
