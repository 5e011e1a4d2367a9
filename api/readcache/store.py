"""Per-process stores of answers, each valid for one version of everything public.

`VersionedStore` is an LRU bounded in entries and in bytes (keys included: a client can make
keys as long as its headers), emptied whenever the version it is given changes. The read cache
(`Entry`: a serialised representation and its validators) and the booking feature's facts
(`api.booking.facts`) are each one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

ENTRY_OVERHEAD = 200  # bytes an entry costs beyond its strings: the dict slot, tuples, objects


@dataclass(frozen=True)
class Entry:
    body: bytes
    etag: str
    last_modified: str | None
    mimetype: str


class VersionedStore:
    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.version: Hashable = None
        self.entries: OrderedDict[Any, tuple[Any, int]] = OrderedDict()  # key -> (value, size)
        self.bytes = 0
        self.lock = threading.Lock()

    def sync(self, version: Hashable) -> None:
        """Empty the store if `version` is not the one it holds."""
        with self.lock:
            if version != self.version:
                self.entries.clear()
                self.bytes = 0
                self.version = version

    def get(self, key: Any, version: Hashable) -> Any:
        """The value, if the store still holds `version` (the one the caller read)."""
        with self.lock:
            if version != self.version:
                return None
            found = self.entries.get(key)
            if found is None:
                return None
            self.entries.move_to_end(key)
            return found[0]

    def put(self, key: Any, value: Any, version: Hashable) -> None:
        with self.lock:
            if version != self.version:
                return  # built from another state than the store now holds
            size = footprint(key) + footprint(value) + ENTRY_OVERHEAD
            old = self.entries.pop(key, None)
            self.bytes += size - (old[1] if old is not None else 0)
            self.entries[key] = (value, size)
            while self.entries and (len(self.entries) > self.max_entries or self.bytes > self.max_bytes):
                _, (_, evicted) = self.entries.popitem(last=False)
                self.bytes -= evicted


def footprint(value: Any) -> int:
    """The bytes of text a key or value holds (strings, bytes, and what containers hold)."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, tuple | list):
        return sum(footprint(item) for item in value)
    if isinstance(value, dict):
        return sum(footprint(k) + footprint(v) for k, v in value.items())
    if is_dataclass(value):
        return sum(footprint(getattr(value, f.name)) for f in fields(value))
    return 8
