"""How every process on this host learns that a public write committed, without a query.

A 16-byte memory-mapped file holds a generation number and a write lease, shared by every
process that uses the same database from this host (gunicorn's workers, the CLI). A
transaction that records change events (every public write does) calls `begin_write` before
it commits: the generation goes up and the lease is extended to `lease_seconds` from now. After
the commit it calls `end_write`: the generation goes up again.

A reader reads both (a memory load, no system call):
- while the lease runs, a write may be committing, so the caches cannot be trusted on their
  own: the reader asks the database for the newest change event (`api.cache.FeedProbe`), as
  strict as ever;
- otherwise the generation is the caches' version: it differs from the one a process's cache
  was filled at as soon as any write has committed, so the cache is emptied first.

A read that starts after a write committed therefore reflects it, unless the writer stalled
for longer than the lease between its commit and `end_write` (30 s by default; a commit is
bounded far below that). With several hosts, or writes made outside the API, set
`CACHE_COHERENCE=database`: every public read then asks the database.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LAYOUT = struct.Struct("<qq")  # generation, lease end (CLOCK_MONOTONIC, ns)
CHECK_FILE_NS = 10**9  # how often a reader checks the path still names its file
LONGEST_LEASE_NS = 3600 * 10**9  # a lease ending later than this from now was set before a reboot


class HostVersion:
    def __init__(self, path: Path, lease_seconds: float) -> None:
        self.path = path
        self.lease_ns = int(lease_seconds * 1e9)
        self._map()

    def _map(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < LAYOUT.size:
                os.ftruncate(fd, LAYOUT.size)  # zeros: generation 0, no lease
            self.map = mmap.mmap(fd, LAYOUT.size)
            stat = os.fstat(fd)
            self.identity = (stat.st_dev, stat.st_ino)
        finally:
            os.close(fd)  # the mapping stays valid
        self.next_check = time.monotonic_ns() + CHECK_FILE_NS
        with self._locked():
            generation, lease_end = LAYOUT.unpack_from(self.map)
            if lease_end > time.monotonic_ns() + max(self.lease_ns, LONGEST_LEASE_NS):
                LAYOUT.pack_into(self.map, 0, generation + 1, 0)

    def current(self) -> int | None:
        """The generation; None while a write may be committing, or when the file was replaced
        since it was mapped (then the new one is mapped, and the next read trusts it)."""
        generation, lease_end = LAYOUT.unpack_from(self.map)
        now = time.monotonic_ns()
        if now >= self.next_check and not self._still_mapped():
            self._map()
            return None
        return None if now < lease_end else generation

    def version(self) -> tuple[str, tuple[int, int], int] | None:
        """The caches' version: the file and its generation (a replaced file starts afresh)."""
        generation = self.current()
        return None if generation is None else ("host", self.identity, generation)

    def _still_mapped(self) -> bool:
        """Whether the path still names the mapped file (a cleaner, a logout's IPC removal or
        a new deployment may have replaced it). Checked once a second."""
        self.next_check = time.monotonic_ns() + CHECK_FILE_NS
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (stat.st_dev, stat.st_ino) == self.identity

    def begin_write(self) -> None:
        self._advance(lease=True)

    def end_write(self) -> None:
        self._advance(lease=False)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around a write that bypasses the session's announcement (a bulk restore)."""
        self.begin_write()
        try:
            yield
        finally:
            self.end_write()

    def _advance(self, lease: bool) -> None:
        with self._locked():
            generation, lease_end = LAYOUT.unpack_from(self.map)
            if lease:
                lease_end = max(lease_end, time.monotonic_ns() + self.lease_ns)
            LAYOUT.pack_into(self.map, 0, generation + 1, lease_end)

    def _locked(self) -> _FileLock:
        return _FileLock(self.path)


class _FileLock:
    """An exclusive flock on a descriptor of our own (so forked processes never share one)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        os.close(self.fd)  # releases the lock


def default_path(database_url: str) -> Path:
    """One file per database, shared by every process that uses it: in /dev/shm where there is
    one (memory, emptied by a reboot), else in the temp folder."""
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    shm = Path("/dev/shm")
    folder = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    return folder / f"tpa-cache-{digest}"
