"""The version of everything public: how a worker learns that another process committed a write.

A worker's caches are valid for one version; when it changes, they are emptied (see `store`).
`Coherence.version()` answers in memory, or None when the worker cannot vouch for its caches:
then the read asks the database for the newest change event (`FeedProbe`), one round trip, as
`TPA_CACHE_COHERENCE=database` does on every read. Three sources, chosen by `make_coherence`:

- `Listener` (PostgreSQL, the default): a thread per worker process holds one connection that
  `LISTEN`s on `CHANNEL`. A trigger on every public table (migration 0004) sends `NOTIFY` in
  each writing transaction, delivered at its commit, whoever wrote: the API on any host, psql,
  `flask import`. Each notification moves the worker's generation on. The worker trusts the
  generation only while the listener is confirmed alive (a notification, or a round trip every
  quarter of `CACHE_LISTENER_TRUST_SECONDS`) within the last `CACHE_LISTENER_TRUST_SECONDS`;
  that interval is the worst case when the listener dies silently. Each (re)connection moves
  the generation on too, so nothing cached before it is trusted after it.
- `DataVersion` (SQLite, one host by nature): `PRAGMA data_version` on a connection of its own,
  which changes whenever any other connection, in any process, commits (a few microseconds).
- `DatabaseOnly` (`TPA_CACHE_COHERENCE=database`): never vouches; every public read asks the
  database (for a pooler in transaction mode, which cannot hold a `LISTEN`).

Within the writing process a read after the write reflects it at once: the session's commit
calls `wrote()` (`api.changes.service` marks transactions that carry change events).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

CHANNEL = "tpa_public_changes"
FEED_POSITION_SQL = "SELECT id, occurred_at FROM change_events ORDER BY id DESC LIMIT 1"
RECONNECT_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0)  # seconds between attempts, the last one repeated


class Coherence(Protocol):
    def version(self) -> Hashable | None: ...
    def wrote(self) -> None: ...
    def state(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


class DatabaseOnly:
    """Never vouches for the caches: every read asks the database."""

    def version(self) -> Hashable | None:
        return None

    def wrote(self) -> None:
        pass

    def state(self) -> dict[str, Any]:
        return {"coherence": "database", "trusted": False}

    def close(self) -> None:
        pass


class DataVersion:
    """SQLite: `PRAGMA data_version` on one connection of its own, shared under a lock."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self.connect = connect
        self.lock = threading.Lock()
        self.connection: Any = None
        self.connections = 0  # opened so far: part of the version, as data_version is per connection
        alive = weakref.ref(self)  # a forked worker opens a connection of its own
        os.register_at_fork(after_in_child=lambda: (source := alive()) and source._forked())

    def _forked(self) -> None:
        self.lock, self.connection = threading.Lock(), None

    def version(self) -> Hashable | None:
        with self.lock:
            try:
                if self.connection is None:
                    self.connection = self.connect()
                    self.connections += 1
                (value,) = self.connection.execute("PRAGMA data_version").fetchone()
            except Exception:  # the file is unreadable: ask the database, which answers 503
                log.warning("SQLite data_version unavailable", exc_info=True)
                self._drop()
                return None
            return ("sqlite", self.connections, value)

    def wrote(self) -> None:
        pass  # a commit on any other connection changes data_version

    def state(self) -> dict[str, Any]:
        return {"coherence": "sqlite-data-version", "trusted": self.version() is not None}

    def close(self) -> None:
        with self.lock:
            self._drop()

    def _drop(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:
                pass
        self.connection = None


class Listener:
    """PostgreSQL: a thread holding a `LISTEN` connection; see the module docstring.

    It starts on the first `version()` in each process (after gunicorn forks its workers, and
    never in CLI commands that do not read), waiting at most `first_wait` seconds for the first
    connection so a new worker starts trusted. It reconnects by itself.
    """

    def __init__(self, connect: Callable[[], Any], trust_seconds: float, first_wait: float) -> None:
        self.connect = connect
        self.trust_ns = int(trust_seconds * 1e9)
        self.heartbeat = trust_seconds / 4
        self.first_wait = first_wait
        self.lock = threading.Lock()
        # Moves on with every notification, every write made here and every (re)connection; only
        # ever up, so a version once left is never met again.
        self.generation = 0
        self.connections = 0
        self.confirmed_ns = 0  # when the listener last proved itself alive (monotonic)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.connection: Any = None
        self.last_error: str | None = None
        alive = weakref.ref(self)  # an app that is gone is not kept for the sake of forks
        os.register_at_fork(after_in_child=lambda: (listener := alive()) and listener._forked())

    def version(self) -> Hashable | None:
        if self.thread is None:
            self._start()
        if time.monotonic_ns() - self.confirmed_ns > self.trust_ns:
            return None
        return ("pg", self.generation)

    def wrote(self) -> None:
        self._advance()

    def _advance(self) -> None:
        with self.lock:
            self.generation += 1

    def state(self) -> dict[str, Any]:
        if self.thread is None:
            self._start()
        trusted = time.monotonic_ns() - self.confirmed_ns <= self.trust_ns
        age = (time.monotonic_ns() - self.confirmed_ns) / 1e9 if self.confirmed_ns else None
        return {
            "coherence": "listen",
            "trusted": trusted,
            "listener": "confirmed" if trusted else "reconnecting",
            "confirmed_seconds_ago": round(age, 3) if age is not None else None,
            "reconnections": max(0, self.connections - 1),
            "last_error": self.last_error,
        }

    def close(self) -> None:
        self.stopping.set()
        self._untrust()
        connection = self.connection
        if connection is not None:
            try:
                connection.close()  # wakes the thread out of its wait
            except Exception:
                pass
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def _forked(self) -> None:
        """In a new process the thread is gone and the connection is the parent's."""
        self.thread, self.connection = None, None
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self._untrust()

    def _start(self) -> None:
        with self.lock:
            if self.thread is not None:
                return
            first = threading.Event()
            self.thread = threading.Thread(target=self._run, args=(first,), name="tpa-cache-listener",
                                           daemon=True)  # fmt: skip
            self.thread.start()
        first.wait(self.first_wait)

    def _run(self, first: threading.Event) -> None:
        attempt = 0
        while not self.stopping.is_set():
            try:
                self.connection = self.connect()
                self.connection.execute(f"LISTEN {CHANNEL}")
                self.connections += 1
                self._advance()  # from here on every commit is heard: what came before is dropped
                attempt = 0
                self.last_error = None
                self._listen(first)
            except Exception as error:
                if self.stopping.is_set():
                    break
                self._untrust()
                self.last_error = f"{type(error).__name__}: {error}".strip()[:200]
                log.warning("cache listener lost its connection; reconnecting", exc_info=True)
            finally:
                first.set()
                self._close_connection()
            self.stopping.wait(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
            attempt += 1

    def _listen(self, first: threading.Event) -> None:
        connection = self.connection
        while not self.stopping.is_set():
            sent = time.monotonic_ns()
            connection.execute("SELECT 1")  # a round trip: the connection is alive
            self._heard(connection.notifies(timeout=0))  # what arrived with the answer
            self.confirmed_ns = sent
            first.set()
            self._heard(connection.notifies(timeout=self.heartbeat), confirm=True)

    def _heard(self, notifications: Any, confirm: bool = False) -> None:
        for _notification in notifications:
            self._advance()
            if confirm:
                self.confirmed_ns = time.monotonic_ns()

    def _untrust(self) -> None:
        self.confirmed_ns = 0

    def _close_connection(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                pass


class FeedProbe:
    """The newest change event's id and time, one round trip on a short-lived checkout from the
    side pool (`api.db.side_connection`): no connection is held beyond the query."""

    def __init__(self, side_connection: Callable[[], Any]) -> None:
        self.side_connection = side_connection

    def read(self) -> tuple[int, Any]:
        with self.side_connection() as connection:
            cursor = connection.cursor()
            try:
                cursor.execute(FEED_POSITION_SQL)
                row = cursor.fetchone()
            finally:
                cursor.close()
        return (int(row[0]), row[1]) if row else (0, None)


def make_coherence(mode: str, engine: Engine, connect: Callable[[], Any], config: Any) -> Coherence:
    """The source for `TPA_CACHE_COHERENCE` (`auto` or `database`) and this database; closed
    with the engine."""
    coherence: Coherence
    if mode == "database":
        coherence = DatabaseOnly()
    elif mode != "auto":
        raise ValueError(f"CACHE_COHERENCE must be 'auto' or 'database', not {mode!r}")
    elif engine.dialect.name == "postgresql":
        coherence = Listener(connect, config["CACHE_LISTENER_TRUST_SECONDS"],
                             first_wait=config["DATABASE_CONNECT_TIMEOUT"] + 1)  # fmt: skip
    else:
        coherence = DataVersion(connect)
    event.listen(engine, "engine_disposed", lambda _engine: coherence.close())
    return coherence
