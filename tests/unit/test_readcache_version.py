"""How a worker decides whether to trust its caches (api/readcache/version.py), with a fake
connection in place of PostgreSQL's: no database, no network"""

from __future__ import annotations

import queue
import threading
import time

import pytest

from api.readcache.version import Listener

TRUST = 0.2  # seconds


class FakeConnection:
    """Answers `SELECT 1` at once (or never, once frozen); yields what `notify()` sends."""

    def __init__(self) -> None:
        self.inbox: queue.Queue[object] = queue.Queue()
        self.frozen = threading.Event()
        self.broken = threading.Event()
        self.closed = False
        self.statements: list[str] = []

    def execute(self, sql: str) -> None:
        self.statements.append(sql)
        while self.frozen.is_set() and not self.closed:  # a silent network: no answer
            time.sleep(0.01)
        self._check()

    def notifies(self, timeout: float):
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and not self.frozen.is_set():
            self._check()
            try:
                yield self.inbox.get(timeout=min(left, 0.01))
            except queue.Empty:
                pass
        self._check()

    def _check(self) -> None:
        if self.broken.is_set() or self.closed:
            raise OSError("server closed the connection unexpectedly")

    def close(self) -> None:
        self.closed = True


class Connections:
    def __init__(self) -> None:
        self.made: list[FakeConnection] = []
        self.refuse = False

    def __call__(self) -> FakeConnection:
        if self.refuse:
            raise OSError("connection refused")
        self.made.append(FakeConnection())
        return self.made[-1]


@pytest.fixture
def listening():
    connections = Connections()
    listener = Listener(connections, trust_seconds=TRUST, first_wait=2.0)
    yield listener, connections
    listener.close()


def until(condition, within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_a_new_worker_trusts_its_caches_once_its_listener_is_confirmed(listening):
    listener, connections = listening
    assert listener.version() is not None  # the first call waited for the first connection
    assert connections.made[0].statements[:2] == ["LISTEN tpa_public_changes", "SELECT 1"]
    assert listener.state()["listener"] == "confirmed"


def test_each_notification_and_each_local_write_moves_the_version_on(listening):
    listener, connections = listening
    before = listener.version()
    connections.made[0].inbox.put("notify")
    until(lambda: listener.version() not in (None, before))
    heard = listener.version()
    listener.wrote()
    assert listener.version() not in (before, heard, None)


def test_a_listener_that_goes_silent_is_distrusted_within_the_trust_interval(listening):
    listener, connections = listening
    assert listener.version() is not None
    connections.made[0].frozen.set()
    silent_since = time.monotonic()
    until(lambda: listener.version() is None, within=TRUST * 3)
    assert time.monotonic() - silent_since <= TRUST * 1.5 + 0.1
    assert listener.state() | {"confirmed_seconds_ago": None, "last_error": None} == {
        "coherence": "listen", "trusted": False, "listener": "reconnecting",
        "confirmed_seconds_ago": None, "reconnections": 0, "last_error": None,
    }  # fmt: skip


def test_a_lost_connection_is_distrusted_at_once_and_replaced_with_a_new_version(listening):
    listener, connections = listening
    before = listener.version()
    connections.refuse = True
    connections.made[0].broken.set()
    until(lambda: listener.version() is None, within=TRUST / 2)
    assert "connection" in listener.state()["last_error"]
    connections.refuse = False  # the database is back: the listener reconnects by itself
    until(lambda: listener.version() is not None)
    assert listener.version() != before  # what was cached before the reconnection is dropped
    assert listener.state()["reconnections"] == 1


def test_a_worker_whose_database_is_away_at_start_asks_the_database_until_it_is_back():
    connections = Connections()
    connections.refuse = True
    listener = Listener(connections, trust_seconds=TRUST, first_wait=0.5)
    try:
        assert listener.version() is None
        connections.refuse = False
        until(lambda: listener.version() is not None)
    finally:
        listener.close()
