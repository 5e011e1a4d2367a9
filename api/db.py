"""The database: declarative base, portable column types, engines and per-request session.

This is the one module that opens connections. Services receive the session from
`get_session()` and decide when to commit. Beside the request pool there are two side
channels, both in autocommit: `side_connector` (a small pool for one-query probes, returned
after each use) and `direct_connector` (a connection of its own, outside any pool, for the read
cache's listener). README "Connections" counts them against `max_connections`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app, g
from sqlalchemy import JSON, DateTime, Enum, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
LISTENER_NAME = "tpa-cache-listener"  # application_name of direct connections (PostgreSQL)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on both databases.

    PostgreSQL keeps the offset; SQLite returns naive values, so UTC is attached on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


def checked_enum(enum: type[StrEnum], name: str) -> Enum:
    """An enum stored as its value in a VARCHAR with a CHECK constraint, the same on both DBs."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_engine(url: str, echo: bool = False, autocommit: bool = False, **options: Any) -> Engine:
    """Create the engine; SQLite gets foreign keys enforced and WAL for concurrent readers."""
    if url.startswith("sqlite"):
        connect_args = {"timeout": 30} | options.pop("connect_args", {})
        engine = create_engine(url, echo=echo, connect_args=connect_args, **options)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            if autocommit:
                dbapi_connection.isolation_level = None

        return engine
    wait_limits = options.pop("wait_limits", None)  # (statements, pings) in seconds
    engine = create_engine(url, echo=echo, pool_pre_ping=not autocommit, **options)
    if wait_limits is not None:
        connect = _bounded_connector(*wait_limits)
        event.listen(engine, "do_connect", lambda _d, _r, cargs, params: connect(*cargs, **params))
    if autocommit:
        event.listen(
            engine, "connect", lambda dbapi_connection, _record: _psycopg_autocommit(dbapi_connection)
        )
    return engine


def _psycopg_autocommit(dbapi_connection: Any) -> None:
    dbapi_connection.autocommit = True


PING = ";"  # what SQLAlchemy's pre-ping sends (DefaultDialect.do_ping, PostgreSQL's "select one")


def _bounded_connector(limit: float, ping_limit: float) -> Callable[..., psycopg.Connection[Any]]:
    """Connects psycopg connections whose every wait on the server is bounded on the client side.

    PostgreSQL's statement timeout is enforced by the server, and TCP keepalives by the kernel:
    a server that is frozen (SIGSTOP, a stalled disk) or a network that swallows bytes while TCP
    stays up defeats both, and a cancel request to such a server hangs as well. So a wait that
    gives no timeout of its own (a statement, COMMIT, ROLLBACK) gives up after `limit` seconds,
    a pool's ping after `ping_limit`, and the socket is closed: the connection is in an unknown
    state, and the request answers 503. Waits that give their own timeout (`notifies`) keep it.
    """

    class BoundedConnection(psycopg.Connection[Any]):
        waiting_limit = limit

        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            if timeout is not None:
                return super().wait(gen, interval, timeout)
            try:
                return super().wait(gen, interval, self.waiting_limit)
            except psycopg.errors._WaitTimeout:  # psycopg 3.3's wait deadline (a private name)
                self.pgconn.finish()
                raise psycopg.OperationalError(
                    f"the database did not answer within {self.waiting_limit:g} s: connection closed"
                ) from None

    class PingBoundCursor(psycopg.Cursor[Any]):
        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            if query != PING:
                return super().execute(query, *args, **kwargs)
            connection: Any = self.connection
            connection.waiting_limit = ping_limit
            try:
                return super().execute(query, *args, **kwargs)
            finally:
                connection.waiting_limit = limit

    def connect(*cargs: Any, **params: Any) -> psycopg.Connection[Any]:
        return BoundedConnection.connect(*cargs, cursor_factory=PingBoundCursor, **params)

    return connect


def init_app(app: Flask) -> None:
    """Attach an engine and session factory to the app and close sessions after each request."""
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    connect: dict[str, Any] = {}
    if url.startswith("postgresql"):
        connect = {
            "connect_timeout": app.config["DATABASE_CONNECT_TIMEOUT"],
            # A silent network on an open connection: the kernel gives up instead of waiting.
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
            "tcp_user_timeout": app.config["DATABASE_STATEMENT_TIMEOUT_MS"],
            "options": f"-c statement_timeout={app.config['DATABASE_STATEMENT_TIMEOUT_MS']}",
        }
    else:
        connect = {"check_same_thread": False}  # side connections are shared under a lock
    echo, timeout = app.config["DATABASE_ECHO"], app.config["DATABASE_POOL_TIMEOUT"]
    bounded: dict[str, Any] = {}
    if url.startswith("postgresql"):
        margin_ms = app.config["DATABASE_WAIT_MARGIN_MS"]
        bounded = {
            "wait_limits": (
                (app.config["DATABASE_STATEMENT_TIMEOUT_MS"] + margin_ms) / 1000,
                margin_ms / 1000,
            )
        }
    engine = make_engine(url, echo, connect_args=connect, pool_timeout=timeout, **bounded,
                         pool_size=app.config["DATABASE_POOL_SIZE"],
                         max_overflow=app.config["DATABASE_MAX_OVERFLOW"])  # fmt: skip
    side = make_engine(url, echo, autocommit=True, connect_args=connect, pool_timeout=timeout, **bounded,
                       pool_size=1, max_overflow=app.config["DATABASE_SIDE_MAX_OVERFLOW"],
                       pool_reset_on_return=None)  # fmt: skip
    # Named, so an operator (or a test) can tell the cache listeners apart in pg_stat_activity.
    named = connect | ({"application_name": LISTENER_NAME} if url.startswith("postgresql") else {})
    direct = make_engine(url, echo, autocommit=True, connect_args=named, poolclass=NullPool, **bounded)
    app.extensions["db_engine"] = engine
    app.extensions["db_side_engine"] = side
    app.extensions["db_direct_engine"] = direct
    app.extensions["db_sessionmaker"] = sessionmaker(bind=engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)
    # Disposing of the app's engine (tests, shutdown) closes the side channels too.
    event.listen(engine, "engine_disposed", lambda _engine: (side.dispose(), direct.dispose()))


def side_connector(app: Flask) -> Callable[[], AbstractContextManager[Any]]:
    """Checkouts from the side pool, for one short query in autocommit; returned after it, and
    thrown away if the query failed (the next checkout connects afresh)."""
    engine: Engine = app.extensions["db_side_engine"]

    @contextmanager
    def checkout() -> Iterator[Any]:
        connection = engine.raw_connection()
        try:
            yield connection
        except BaseException:
            connection.invalidate()
            raise
        finally:
            connection.close()

    return checkout


def direct_connector(app: Flask) -> Callable[[], Any]:
    """Opens a connection of its own in autocommit, outside any pool; the caller closes it."""
    engine: Engine = app.extensions["db_direct_engine"]
    return engine.raw_connection


def after_commit(app: Flask, flag: str, callback: Callable[[], None]) -> None:
    """Call `callback` after each commit of a session whose transaction set `session.info[flag]`."""

    def committed(session: Session) -> None:
        if session.info.pop(flag, False):
            callback()

    factory = app.extensions["db_sessionmaker"]
    event.listen(factory, "after_commit", committed)
    event.listen(factory, "after_soft_rollback", lambda session, _previous: session.info.pop(flag, None))


def get_engine() -> Engine:
    engine: Engine = current_app.extensions["db_engine"]
    return engine


def get_session() -> Session:
    """The session for this request or CLI command, created on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["db_sessionmaker"]()
    session: Session = g.db_session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        try:
            session.close()
        except SQLAlchemyError:  # the connection died under it: drop it, the answer stands
            session.invalidate()


def alembic_config(url: str) -> AlembicConfig:
    """Alembic configured in code, so no alembic.ini is needed: `flask db ...` uses this."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = url
    return config
