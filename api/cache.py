"""Per-process cache of public representations, kept consistent with the database.

Every public read first works out the version of everything public (`cache_version`, once per
request); when it differs from the one the cache was filled at, something changed: the cache is
emptied and the representation rebuilt. The version comes from one of two places:

- `("host", file, generation)`: the generation shared by every process on this host through
  `api.cache_version.HostVersion` (a memory load). Every public write moves it on when it
  commits. This is the default (`CACHE_COHERENCE=host`).
- `("db", id)`: the id of the newest change event, read from the database (one round trip on a
  connection of its own). Used while a write may be committing (the host version's lease), and
  on every read with `CACHE_COHERENCE=database` (several hosts).

Every write records at least one change event in its own transaction, and ids are handed out in
commit order (see `api.changes.service`), so a read that starts after a write has committed, on
any worker process, never sees the state from before it. Hits answer straight from memory: no
serialisation, and a 304 never builds a body; `api.fastpath` answers most of them before Flask.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from api.cache_version import HostVersion, default_path
from api.changes.service import PUBLIC_WRITES

REPLAYABLE = "tpa.replayable"  # WSGI environ key: (Entry, version, endpoint) of this response
FEED_POSITION_SQL = "SELECT id, occurred_at FROM change_events ORDER BY id DESC LIMIT 1"


@dataclass(frozen=True)
class Entry:
    body: bytes
    etag: str
    last_modified: str | None
    mimetype: str


class ReadCache:
    """An LRU of response bodies and booking facts, valid for one version, bounded both in
    entries and in the bytes of the bodies it holds (a worker's memory stays flat)."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.version: Hashable = None
        self.entries: OrderedDict[Any, Any] = OrderedDict()
        self.bytes = 0
        self.lock = threading.Lock()

    def sync(self, version: Hashable) -> None:
        with self.lock:
            if version != self.version:
                self.entries.clear()
                self.bytes = 0
                self.version = version

    def get(self, key: Any, version: Hashable) -> Any:
        """The value, if the cache still holds `version` (the one the caller read)."""
        with self.lock:
            if version != self.version:
                return None
            value = self.entries.get(key)
            if value is not None:
                self.entries.move_to_end(key)
            return value

    def put(self, key: Any, value: Any, version: Hashable) -> None:
        with self.lock:
            if version != self.version:
                return  # built from an older state than the cache now holds
            old = self.entries.pop(key, None)
            self.bytes += _size(value) - (_size(old) if old is not None else 0)
            self.entries[key] = value
            while len(self.entries) > self.max_entries or self.bytes > self.max_bytes:
                _, evicted = self.entries.popitem(last=False)
                self.bytes -= _size(evicted)


def _size(value: Any) -> int:
    body = getattr(value, "body", None)  # response bodies count; booking facts are small
    return len(body) if isinstance(body, bytes) else 0


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


def cache_version() -> Hashable:
    """The version of everything public, as the module docstring says. Once per request."""
    if "cache_version" not in g:
        host: HostVersion | None = current_app.extensions["host_version"]
        version = host.version() if host is not None else None
        g.cache_version = version if version is not None else ("db", _probe_feed())
        read_cache().sync(g.cache_version)
    return g.cache_version


def _probe_feed() -> int:
    """The newest change event's id (and, in `g`, its time), from the database."""
    try:
        position, g.feed_changed_at = current_app.extensions["feed_probe"].read()
    except current_app.extensions["db_engine"].dialect.dbapi.Error as error:
        raise OperationalError(FEED_POSITION_SQL, {}, error) from error
    return int(position)


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


def body_etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _cache_key() -> tuple[str, bytes, str, str | None]:
    representation = g.get("representation", "json")
    # JSON-LD names the page by its absolute URL: scheme and host are part of it.
    return (
        request.path,
        request.query_string,
        representation,
        request.host_url if representation == "jsonld" else None,
    )


def _fresh(entry: Entry) -> bool:
    return is_fresh(entry, request.headers.get("If-None-Match"), request.headers.get("If-Modified-Since"))


def is_fresh(entry: Entry, if_none_match: str | None, since: str | None) -> bool:
    """Whether the client's copy is current (If-None-Match wins over If-Modified-Since)."""
    if if_none_match:
        tags = {tag.strip() for tag in if_none_match.split(",")}
        return "*" in tags or entry.etag in tags or f"W/{entry.etag}" in tags
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
    request.environ[REPLAYABLE] = (entry, g.cache_version, request.endpoint)
    return response


def http_date(value: Any) -> str:
    return format_datetime(value.astimezone(dt.UTC).replace(microsecond=0), usegmt=True)


def init_app(app: Flask, cacheable_endpoints: set[str]) -> None:
    """Serve public GETs from the cache, and fill it from the views' 200 responses."""
    app.extensions["read_cache"] = ReadCache(
        app.config["READ_CACHE_MAX_ENTRIES"], app.config["READ_CACHE_MAX_BYTES"]
    )
    app.extensions["feed_probe"] = FeedProbe(app.extensions["db_engine"])
    host = None
    if app.config["CACHE_COHERENCE"] == "host":
        path = app.config["CACHE_HOST_FILE"] or default_path(app.config["DATABASE_URL"])
        host = HostVersion(Path(path), app.config["CACHE_WRITE_LEASE_SECONDS"])
        app.extensions["db_sessionmaker"].configure(info={PUBLIC_WRITES: host})
    app.extensions["host_version"] = host
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
        cache_version()
        entry = read_cache().get(_cache_key(), g.cache_version)
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
            read_cache().put(_cache_key(), entry, g.cache_version)
            request.environ[REPLAYABLE] = (entry, g.cache_version, request.endpoint)
            if _fresh(entry):  # the client already held it: answer 304 even on a miss
                response.set_data(b"")
                response.status_code = 304
        return response


def negotiate() -> str:
    """`jsonld` when the client prefers JSON-LD, else `json`."""
    best = request.accept_mimetypes.best_match(["application/json", "application/ld+json"])
    return "jsonld" if best == "application/ld+json" else "json"
