"""The read path: every public GET and booking check answered from memory while nothing changed.

A request meets, in order:
1. `middleware.FastPath` (WSGI, before Flask): a request of a shape already answered at the
   current version is replayed from memory; a booking check whose every treatment is
   remembered is answered by the booking feature (`api.booking.facts`).
2. `hooks` (Flask's before/after request, for GETs declared `@cacheable`): a hit answers from
   the read cache, a miss is built by the view and stored.
Both key everything by the version of everything public (`version.Coherence`: PostgreSQL's
LISTEN/NOTIFY, SQLite's data_version, or a query per read), and the stores (`store`) empty
themselves when it moves on. A worker that cannot vouch for its version asks the database.

To add a public GET, write the route with `@cacheable` (or `@uncacheable("why")`): nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask

from api import db
from api.changes.service import PUBLIC_WRITE
from api.ratelimit import RateLimits
from api.readcache import hooks
from api.readcache.declare import cacheable, cacheable_endpoints, uncacheable
from api.readcache.hooks import cache_version, negotiate, read_path
from api.readcache.http import http_date
from api.readcache.middleware import Answerer, FastPath, PostRoute
from api.readcache.store import VersionedStore
from api.readcache.version import Coherence, FeedProbe, make_coherence

__all__ = [
    "ReadPath", "cache_version", "cacheable", "create", "http_date", "init_app", "negotiate",
    "read_path", "uncacheable",
]  # fmt: skip


@dataclass
class ReadPath:
    coherence: Coherence
    probe: FeedProbe
    cache: VersionedStore
    limits: RateLimits
    cache_control: str
    vary: tuple[str, ...]
    endpoints: frozenset[str] = frozenset()
    stores: list[VersionedStore] = field(default_factory=list)
    post_routes: dict[str, PostRoute] = field(default_factory=dict)

    def add_store(self, store: VersionedStore) -> VersionedStore:
        """A feature's own store, emptied with the read cache when the version moves on."""
        self.stores.append(store)
        return store

    def answer_before_flask(self, path: str, endpoint: str, limit: str, answer: Answerer) -> None:
        """Let `answer(body, version)` reply to POSTs on `path` from memory (None: ask Flask)."""
        self.post_routes[path] = PostRoute(endpoint, limit, answer)

    def forget(self) -> None:
        """Empty every store now: for a write this process made behind the session's back."""
        self.coherence.wrote()
        for store in self.stores:
            store.sync(None)


def create(app: Flask) -> ReadPath:
    """The read path's parts, made before the blueprints so features can add theirs."""
    config = app.config
    engine = app.extensions["db_engine"]
    coherence = make_coherence(config["CACHE_COHERENCE"], engine, db.direct_connector(app), config)
    cache = VersionedStore(config["READ_CACHE_MAX_ENTRIES"], config["READ_CACHE_MAX_BYTES"])
    path = app.extensions["readcache"] = ReadPath(
        coherence=coherence,
        probe=FeedProbe(db.side_connector(app)),
        cache=cache,
        limits=app.extensions["rate_limits"],
        cache_control=f"public, max-age={config['CACHE_MAX_AGE']}, "
        f"stale-while-revalidate={config['CACHE_STALE_WHILE_REVALIDATE']}",
        vary=("Accept", "Origin") if config["CORS_ORIGINS"] else ("Accept",),
        stores=[cache],
    )
    db.after_commit(app, PUBLIC_WRITE, coherence.wrote)
    return path


def init_app(app: Flask) -> None:
    """Once every route is registered: serve the `@cacheable` ones, and answer before Flask."""
    path: ReadPath = app.extensions["readcache"]
    path.endpoints = cacheable_endpoints(app)
    hooks.init_app(app, path)
    if app.config["CACHE_FAST_PATH"]:
        app.wsgi_app = FastPath(path, app.wsgi_app, app.config)  # type: ignore[method-assign]
