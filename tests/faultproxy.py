"""A fault-injecting TCP proxy for outage tests: the database, as the app sees it, can fail.

`FaultProxy` listens on 127.0.0.1 (a free port) and forwards each connection to an upstream
(PostgreSQL on 127.0.0.1:5432 by default), one pair of threads per connection. It can be
switched at any moment:

- `up()`: forward normally (new connections reach the database);
- `down()`: cut every open connection and close each new one as soon as it is accepted, as a
  database that has gone away;
- `blackhole()`: accept new connections but never answer them (nothing is forwarded), as a
  network that drops packets; open connections are cut too, unless `cut_existing=False`, in
  which case they stay open and silently swallow what is sent through them;
- `cut()`: cut the open connections once, without changing the mode;
- `cut_on(...)`: arm a one-shot trigger that cuts a connection when the client sends a
  chosen message (by a byte pattern, or the n-th message since arming), before or just after
  forwarding it: a write's transaction can be interrupted at any step, COMMIT included.

A cut closes both sides with a FIN (never a reset), so a message already forwarded reaches the
server before the end of the stream: "forward COMMIT, then cut" really commits.
Every socket and thread it makes is closed and joined by `close()`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

UP, DOWN, BLACKHOLE = "up", "down", "blackhole"
# PostgreSQL's SSLRequest and GSSENCRequest: length 8, then their request codes.
NEGOTIATIONS = {bytes.fromhex("0000000804d2162f"), bytes.fromhex("0000000804d21630")}
CHUNK = 65536


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv() on it
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.frozen = False  # blackholed: read and drop in both directions
        self.closed = False
        self.started = False  # its startup message was seen
        self.ignored = False  # its startup message named an application the triggers ignore
        self._lock = threading.Lock()

    def close(self) -> None:
        """Cut: the server gets a FIN after whatever was already forwarded, the client too.

        The upstream socket is closed by its reader once the server has closed its end, so
        unread data never turns the FIN into a reset.
        """
        with self._lock:
            if self.closed:
                return
            self.closed = True
        with contextlib.suppress(OSError):
            self.upstream.shutdown(socket.SHUT_WR)
        _close(self.client)


@dataclass
class Trigger:
    """A one-shot cut: when the client sends a matching message, cut (and maybe go down)."""

    pattern: bytes | None = None  # cut on a client message containing this (the first, or
    occurrence: int = 1  # this many-th such message), counting only from a message that
    after: bytes | None = None  # contains this, when given ...
    nth: int | None = None  # ... or on the n-th client message (from 1) since arming
    forward: bool = False  # forward the message to the server before cutting
    then: str | None = None  # switch to this mode (cutting everything) instead of one link
    seen: int = 0  # client messages seen since arming
    matched: int = 0  # of which contained the pattern
    fired: threading.Event = field(default_factory=threading.Event)
    message: bytes = b""  # what the matching message was (for reports)

    def matches(self, data: bytes) -> bool:
        self.seen += 1
        if self.nth is not None:
            return self.seen == self.nth
        if self.after is not None:
            if self.after in data:
                self.after = None
            return False
        if self.pattern is not None and self.pattern in data:
            self.matched += 1
        return self.matched == self.occurrence


class FaultProxy:
    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432), ignore: bytes | None = None) -> None:
        self.upstream = upstream
        # Triggers never see a connection whose startup message holds `ignore` (the read cache's
        # listener, `application_name=tpa-cache-listener`: its heartbeats would shift "the n-th
        # message" of a request). Mode switches still cut it.
        self.ignore = ignore
        self._mode = UP
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._held: set[socket.socket] = set()  # blackholed connections, never forwarded
        self._upstreams: set[socket.socket] = set()  # open upstream sockets, for close()
        self._threads: set[threading.Thread] = set()
        self._trigger: Trigger | None = None
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0  # connections accepted, whatever the mode
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True)
        self._acceptor.start()

    # --- control -------------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self._mode

    def up(self) -> None:
        """Forward again. Connections frozen by a black hole are cut: what they swallowed is lost."""
        with self._lock:
            self._mode = UP
            frozen = [link for link in self._links if link.frozen]
            self._links.difference_update(frozen)
        for link in frozen:
            link.close()
        self._release_held()

    def down(self) -> None:
        with self._lock:
            self._mode = DOWN
        self.cut()
        self._release_held()

    def blackhole(self, cut_existing: bool = True) -> None:
        with self._lock:
            self._mode = BLACKHOLE
            links = list(self._links)
        if cut_existing:
            self.cut()
        else:
            for link in links:
                link.frozen = True

    def cut(self) -> int:
        """Cut every open forwarded connection; returns how many."""
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            link.close()
        return len(links)

    def cut_on(
        self, pattern: bytes | None = None, *, occurrence: int = 1, after: bytes | None = None,
        nth: int | None = None, forward: bool = False, then: str | None = None,
    ) -> Trigger:  # fmt: skip
        """Arm a one-shot trigger on client-to-server messages; see `Trigger`."""
        if (pattern is None) == (nth is None):
            raise ValueError("give a pattern or nth, not both")
        trigger = Trigger(pattern, occurrence, after, nth, forward, then)
        with self._lock:
            self._trigger = trigger
        return trigger

    def disarm(self) -> Trigger | None:
        with self._lock:
            trigger, self._trigger = self._trigger, None
        return trigger

    def quiesce(self, timeout: float = 5.0) -> bool:
        """Wait until the server has closed its end of every cut connection, so it has processed
        all that reached it (a COMMIT forwarded before a cut is then visible). True if it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                live = {link.upstream for link in self._links}
                if self._upstreams <= live:
                    return True
            time.sleep(0.01)
        return False

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._links)

    def close(self) -> None:
        self._stopping.set()
        self._acceptor.join(5)
        _close(self._listener)
        self.cut()
        self._release_held()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(5)
        with self._lock:
            leftovers, self._upstreams = self._upstreams, set()
        for sock in leftovers:  # a server that never closed its end
            _close(sock)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    @contextlib.contextmanager
    def outage(self, mode: str = DOWN) -> Iterator[FaultProxy]:
        """`with proxy.outage():` the database is unreachable inside, back afterwards."""
        self.blackhole() if mode == BLACKHOLE else self.down()
        try:
            yield self
        finally:
            self.up()

    # --- machinery ---------------------------------------------------------------------------

    def _release_held(self) -> None:
        with self._lock:
            held, self._held = self._held, set()
        for sock in held:
            _close(sock)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=self._run, args=(target, *args), daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _run(self, target: Any, *args: Any) -> None:
        try:
            target(*args)
        except Exception:  # a proxy thread must never crash the test run
            pass
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            mode = self._mode
            if mode == DOWN:
                _close(client)
            elif mode == BLACKHOLE:
                with self._lock:
                    self._held.add(client)
                self._spawn(self._swallow, client)
            else:
                self._spawn(self._connect, client)

    def _swallow(self, sock: socket.socket) -> None:
        """Read and drop until the connection is closed (a black hole answers nothing)."""
        try:
            while sock.recv(CHUNK):
                pass
        except OSError:
            pass
        finally:
            with self._lock:
                self._held.discard(sock)
            _close(sock)

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _close(client)
            return
        upstream.settimeout(None)
        link = _Link(client, upstream)
        with self._lock:
            self._upstreams.add(upstream)
            if self._mode == UP:
                self._links.add(link)
            else:  # switched while we connected
                link.close()
        self._spawn(self._from_client, link)
        self._spawn(self._from_server, link)

    def _from_client(self, link: _Link) -> None:
        try:
            while True:
                data = link.client.recv(CHUNK)
                if not data or link.closed:
                    break
                if link.frozen:
                    continue
                if self._fire(link, data):
                    break
                link.upstream.sendall(data)
        except OSError:
            pass
        finally:
            self._cut_link(link)

    def _from_server(self, link: _Link) -> None:
        """Forward the server's answers; once cut, read on (dropping) until the server closes."""
        try:
            while True:
                data = link.upstream.recv(CHUNK)
                if not data:
                    break
                if link.frozen or link.closed:
                    continue
                try:
                    link.client.sendall(data)
                except OSError:
                    self._cut_link(link)
        except OSError:
            pass
        finally:
            self._cut_link(link)
            with self._lock:
                self._upstreams.discard(link.upstream)
            _close(link.upstream)

    def _cut_link(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)
        link.close()

    def _fire(self, link: _Link, data: bytes) -> bool:
        """Apply the armed trigger to a client message; True when the link was cut."""
        if not link.started:
            if data[:8] in NEGOTIATIONS:  # SSL or GSS encryption asked before the startup message
                return False
            link.started = True
            link.ignored = self.ignore is not None and self.ignore in data
        if link.ignored:
            return False
        with self._lock:
            trigger = self._trigger
            if trigger is None or not trigger.matches(data):
                return False
            self._trigger = None
        # The server's answers to this link are dropped from now on: a message forwarded before the
        # cut must reach the server, never let its answer reach the client first (it did, under load).
        link.frozen = True
        if trigger.forward:
            with contextlib.suppress(OSError):
                link.upstream.sendall(data)
        # Known as fired before the cut: the client answers as soon as it sees the cut, and a test
        # reading `fired` then must not find it unset (it did, under load).
        trigger.message = data
        trigger.fired.set()
        if trigger.then == DOWN:
            self.down()
        elif trigger.then == BLACKHOLE:
            self.blackhole()
        else:
            self._cut_link(link)
        return True
