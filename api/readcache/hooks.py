"""The read cache inside Flask: a hit answered in `before_request`, a miss stored in `after_request`.

Only GETs declared `@cacheable` take part. Each request reads the version once (`cache_version`);
a 200 or 304 built here is marked for `api.readcache.middleware` to record and replay.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable
from typing import TYPE_CHECKING

from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import OperationalError

from api.readcache.http import body_etag, http_date, is_fresh
from api.readcache.store import Entry, VersionedStore
from api.readcache.version import FEED_POSITION_SQL

if TYPE_CHECKING:
    from api.readcache import ReadPath

REPLAYABLE = "tpa.replayable"  # WSGI environ key: (Entry, version, endpoint) of this response


def read_path() -> ReadPath:
    path: ReadPath = current_app.extensions["readcache"]
    return path


def cache_version() -> Hashable:
    """The version of everything public, once per request (see `api.readcache.version`); the
    process's stores are emptied when it has moved on."""
    if "cache_version" not in g:
        path = read_path()
        version = path.coherence.version()
        g.cache_version = version if version is not None else ("db", _probe_feed())
        for store in path.stores:
            store.sync(g.cache_version)
    return g.cache_version


def _probe_feed() -> int:
    """The newest change event's id (and, in `g`, its time), from the database."""
    engine = current_app.extensions["db_engine"]
    try:
        position, g.feed_changed_at = read_path().probe.read()
    except engine.dialect.dbapi.Error as error:
        raise OperationalError(FEED_POSITION_SQL, {}, error) from error
    return position


def catalogue_last_modified() -> str | None:
    """When anything public last changed, as an HTTP date (for lists and the feed)."""
    if "feed_changed_at" not in g:
        _probe_feed()
    changed_at = g.feed_changed_at
    if changed_at is None:
        return None
    if isinstance(changed_at, str):  # SQLite through a plain connection gives text
        changed_at = dt.datetime.fromisoformat(changed_at)
    if changed_at.tzinfo is None:
        changed_at = changed_at.replace(tzinfo=dt.UTC)
    return http_date(changed_at)


def negotiate() -> str:
    """`jsonld` when the client prefers JSON-LD, else `json`."""
    best = request.accept_mimetypes.best_match(["application/json", "application/ld+json"])
    return "jsonld" if best == "application/ld+json" else "json"


def _cache_key() -> tuple[str, bytes, str]:
    # Nothing depends on the request's Host or scheme: public URLs come from PUBLIC_BASE_URL.
    return request.path, request.query_string, g.get("representation", "json")


def _fresh(entry: Entry) -> bool:
    return is_fresh(entry, request.headers.get("If-None-Match"), request.headers.get("If-Modified-Since"))


def init_app(app: Flask, path: ReadPath) -> None:
    cache: VersionedStore = path.cache

    def label(response: Response) -> None:
        response.headers["Cache-Control"] = path.cache_control
        for name in path.vary:
            response.vary.add(name)

    def respond(entry: Entry) -> Response:
        """A hit: the stored bytes, or a 304 with no body, labelled here (after_request skips it)."""
        response = Response(status=304) if _fresh(entry) else Response(entry.body, mimetype=entry.mimetype)
        response.headers["ETag"] = entry.etag
        if entry.last_modified:
            response.headers["Last-Modified"] = entry.last_modified
        label(response)
        g.cacheable = False
        request.environ[REPLAYABLE] = (entry, g.cache_version, request.endpoint)
        return response

    @app.before_request
    def _serve_from_cache() -> Response | None:
        if request.method not in {"GET", "HEAD"} or request.endpoint not in path.endpoints:
            return None
        g.cacheable = True
        g.representation = negotiate()
        entry = cache.get(_cache_key(), cache_version())
        return respond(entry) if entry is not None else None

    @app.after_request
    def _store_and_label(response: Response) -> Response:
        if not g.get("cacheable"):
            return response
        if response.status_code not in {200, 304}:
            response.vary.add("Accept")
            response.headers["Cache-Control"] = "no-store"
            return response
        label(response)
        if response.status_code == 200 and "Last-Modified" not in response.headers:
            last_modified = catalogue_last_modified()
            if last_modified:
                response.headers["Last-Modified"] = last_modified
        if response.status_code == 200 and not response.direct_passthrough:
            body = response.get_data()
            etag = response.headers.get("ETag") or body_etag(body)
            response.headers["ETag"] = etag
            entry = Entry(body, etag, response.headers.get("Last-Modified"), response.mimetype or "")
            cache.put(_cache_key(), entry, g.cache_version)
            request.environ[REPLAYABLE] = (entry, g.cache_version, request.endpoint)
            if _fresh(entry):  # the client already held it: answer 304 even on a miss
                response.set_data(b"")
                response.status_code = 304
        return response
