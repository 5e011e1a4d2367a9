"""Per-process cache of public representations, kept consistent with the database.

Every public read first asks the database one cheap question: the id of the newest change
event (`max(change_events.id)`, an index lookup). Every write records at least one change event
in its own transaction, and ids are handed out in commit order (see `api.changes.service`), so
when that id differs from the one the cache was filled at, something changed: the cache is
emptied and the representation rebuilt. A read that starts after a write has committed, on any
worker process, therefore never sees the state from before it. Hits answer straight from
memory: no query beyond that one, no serialisation, and a 304 never builds a body.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

FEED_POSITION_SQL = "SELECT id, occurred_at FROM change_events ORDER BY id DESC LIMIT 1"


@dataclass(frozen=True)
class Entry:
    body: bytes
    etag: str
    last_modified: str | None
    mimetype: str


class ReadCache:
    """An LRU of response bodies and booking facts, valid for one feed position, bounded both
    in entries and in the bytes of the bodies it holds (a worker's memory stays flat)."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.position: int | None = None
        self.entries: OrderedDict[Any, Any] = OrderedDict()
        self.bytes = 0
        self.lock = threading.Lock()

    def sync(self, position: int) -> None:
        with self.lock:
            if position != self.position:
                self.entries.clear()
                self.bytes = 0
                self.position = position

    def get(self, key: Any) -> Any:
        with self.lock:
            value = self.entries.get(key)
            if value is not None:
                self.entries.move_to_end(key)
            return value

    def put(self, key: Any, value: Any, position: int) -> None:
        with self.lock:
            if position != self.position:
                return  # built from an older state than the cache now holds
            old = self.entries.pop(key, None)
            self.bytes += _size(value) - (_size(old) if old is not None else 0)
            self.entries[key] = value
            while len(self.entries) > self.max_entries or self.bytes > self.max_bytes:
                _, evicted = self.entries.popitem(last=False)
                self.bytes -= _size(evicted)


def _size(value: Any) -> int:
    return len(value.body) if isinstance(value, Entry) else 0


def read_cache() -> ReadCache:
    cache: ReadCache = current_app.extensions["read_cache"]
    return cache


class FeedProbe:
    """Reads the newest change event on a connection of its own, one per thread, in autocommit.

    That is one round trip per request: no pool checkout, no liveness ping, no BEGIN and no
    ROLLBACK around it. A connection that fails is thrown away and the error propagates (the
    request answers 503); the next request opens a fresh one.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.local = threading.local()
        self.opened: list[Any] = []  # every thread's connection, closed with the engine
        event.listen(engine, "engine_disposed", lambda _engine: self.close())

    def close(self) -> None:
        for connection in self.opened:
            connection.invalidate()
        self.opened.clear()
        self.local = threading.local()

    def read(self) -> tuple[int, Any]:
        """The newest event's id and time; a connection that died since is replaced once."""
        for attempt in (1, 2):
            connection = getattr(self.local, "connection", None) or self._connect()
            try:
                cursor = connection.cursor()
                cursor.execute(FEED_POSITION_SQL)
                row = cursor.fetchone()
                cursor.close()
                return (row[0], row[1]) if row else (0, None)
            except Exception:
                self.local.connection = None
                self.opened.remove(connection)
                connection.invalidate()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _connect(self) -> Any:
        connection = self.local.connection = self.engine.raw_connection()
        self.opened.append(connection)
        driver = connection.driver_connection
        if self.engine.dialect.name == "postgresql":
            driver.autocommit = True  # type: ignore[union-attr]
        else:
            driver.isolation_level = None  # type: ignore[union-attr]  # sqlite3: autocommit
        return connection


def feed_position() -> int:
    """The newest change event's id: the version of everything public. Once per request."""
    if "feed_position" not in g:
        try:
            g.feed_position, g.feed_changed_at = current_app.extensions["feed_probe"].read()
        except current_app.extensions["db_engine"].dialect.dbapi.Error as error:
            raise OperationalError(FEED_POSITION_SQL, {}, error) from error
        read_cache().sync(g.feed_position)
    position: int = g.feed_position
    return position


def catalogue_last_modified() -> str | None:
    """When anything public last changed, as an HTTP date (for lists and the feed)."""
    feed_position()
    changed_at = g.feed_changed_at
    if changed_at is None:
        return None
    if isinstance(changed_at, str):  # SQLite through a plain connection gives text
        changed_at = dt.datetime.fromisoformat(changed_at)
    if changed_at.tzinfo is None:
        changed_at = changed_at.replace(tzinfo=dt.UTC)
    return http_date(changed_at)


def body_etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _cache_key() -> tuple[str, bytes, str]:
    return (request.path, request.query_string, g.get("representation", "json"))


def _fresh(entry: Entry) -> bool:
    """Whether the client's copy is current (If-None-Match wins over If-Modified-Since)."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match:
        tags = {tag.strip() for tag in if_none_match.split(",")}
        return "*" in tags or entry.etag in tags or f"W/{entry.etag}" in tags
    since = request.headers.get("If-Modified-Since")
    if since and entry.last_modified:
        try:
            return parsedate_to_datetime(entry.last_modified) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


def _respond(entry: Entry, cache_control: str) -> Response:
    """A hit: the stored bytes, or a 304 with no body, labelled here (after_request skips it)."""
    response = Response(status=304) if _fresh(entry) else Response(entry.body, mimetype=entry.mimetype)
    headers = response.headers
    headers["ETag"] = entry.etag
    if entry.last_modified:
        headers["Last-Modified"] = entry.last_modified
    headers["Cache-Control"] = cache_control
    headers["Vary"] = "Accept"
    g.cacheable = False
    return response


def http_date(value: Any) -> str:
    return format_datetime(value.astimezone(dt.UTC).replace(microsecond=0), usegmt=True)


def init_app(app: Flask, cacheable_endpoints: set[str]) -> None:
    """Serve public GETs from the cache, and fill it from the views' 200 responses."""
    app.extensions["read_cache"] = ReadCache(
        app.config["READ_CACHE_MAX_ENTRIES"], app.config["READ_CACHE_MAX_BYTES"]
    )
    app.extensions["feed_probe"] = FeedProbe(app.extensions["db_engine"])
    cache_control = (
        f"public, max-age={app.config['CACHE_MAX_AGE']}, "
        f"stale-while-revalidate={app.config['CACHE_STALE_WHILE_REVALIDATE']}"
    )

    @app.before_request
    def _serve_from_cache() -> Response | None:
        if request.method not in {"GET", "HEAD"} or request.endpoint not in cacheable_endpoints:
            return None
        g.cacheable = True
        g.representation = negotiate()
        position = feed_position()
        g.cache_position = position
        entry = read_cache().get(_cache_key())
        return _respond(entry, cache_control) if entry is not None else None

    @app.after_request
    def _store_and_label(response: Response) -> Response:
        if not g.get("cacheable"):
            return response
        response.vary.add("Accept")
        if response.status_code not in {200, 304}:
            response.headers["Cache-Control"] = "no-store"
            return response
        response.headers["Cache-Control"] = cache_control
        if response.status_code == 200 and "Last-Modified" not in response.headers:
            last_modified = catalogue_last_modified()
            if last_modified:
                response.headers["Last-Modified"] = last_modified
        if response.status_code == 200 and not response.direct_passthrough:
            body = response.get_data()
            etag = response.headers.get("ETag") or body_etag(body)
            response.headers["ETag"] = etag
            entry = Entry(body, etag, response.headers.get("Last-Modified"), response.mimetype or "")
            read_cache().put(_cache_key(), entry, g.cache_position)
            if _fresh(entry):  # the client already held it: answer 304 even on a miss
                response.set_data(b"")
                response.status_code = 304
        return response


def negotiate() -> str:
    """`jsonld` when the client prefers JSON-LD, else `json`."""
    best = request.accept_mimetypes.best_match(["application/json", "application/ld+json"])
    return "jsonld" if best == "application/ld+json" else "json"
