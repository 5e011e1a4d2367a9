"""Booking checks: can these treatments be booked? Read-only, failing closed.

Each treatment's booking facts are remembered per cache version in the per-process read cache,
so a repeated check costs dictionary lookups, and a first one
a single indexed lookup of only the treatments it names, whatever the catalogue's size. Never
older than the last committed write.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from api.booking.rules import bookability
from api.treatments.models import ExternalId, Treatment

Ref = str | dict[str, str]


@dataclass(frozen=True)
class Entry:
    slug: str
    status: str
    requirements: list[Any]


UNKNOWN = Entry("", "", [])  # remembered too, so an unknown name is not looked up again


class Cache(Protocol):
    def get(self, key: Any, version: Hashable) -> Any: ...
    def put(self, key: Any, value: Any, version: Hashable) -> None: ...


def check_booking(session: Session, cache: Cache, version: Hashable, refs: list[Ref]) -> dict[str, Any]:
    """Answer each reference in request order; unknown ones are answered not bookable."""
    keys = [_key(ref) for ref in refs]
    entries = {key: cache.get(key, version) for key in set(keys)}
    missing = [key for key, entry in entries.items() if entry is None]
    if missing:
        found = _look_up(session, missing)
        for key in missing:
            entries[key] = found.get(key, UNKNOWN)
            cache.put(key, entries[key], version)
    return _answer(refs, [entries[key] for key in keys])


def cached_answer(cache: Cache, version: Hashable, refs: list[Ref]) -> dict[str, Any] | None:
    """The answer from remembered facts alone; None if any reference was never looked up (or
    never passed validation: only checked references are remembered)."""
    entries = [cache.get(_key(ref), version) for ref in refs]
    return None if any(entry is None for entry in entries) else _answer(refs, entries)


def _answer(refs: list[Ref], entries: list[Entry]) -> dict[str, Any]:
    results = [_result(ref, entry) for ref, entry in zip(refs, entries, strict=True)]
    return {"bookable": all(r["bookable"] for r in results), "results": results}


def _key(ref: Ref) -> tuple[str, ...]:
    return ("booking", ref) if isinstance(ref, str) else ("booking", ref["system"], ref["id"])


def _look_up(session: Session, keys: list[tuple[str, ...]]) -> dict[tuple[str, ...], Entry]:
    """At most two indexed queries for the treatments named, by slug and by booking-system id."""
    columns = (Treatment.slug, Treatment.status, Treatment.booking_requirements)
    found: dict[tuple[str, ...], Entry] = {}
    slugs = [key[1] for key in keys if len(key) == 2]
    if slugs:
        for row in session.execute(select(*columns).where(Treatment.slug.in_(slugs))):
            found[("booking", row.slug)] = _entry(row)
    pairs = [key[1:] for key in keys if len(key) == 3]
    if pairs:
        matches = or_(*(and_(ExternalId.system == s, ExternalId.external_id == i) for s, i in pairs))
        query = select(ExternalId.system, ExternalId.external_id, *columns).join(Treatment).where(matches)
        for row in session.execute(query):
            found[("booking", row.system, row.external_id)] = _entry(row)
    return found


def _entry(row: Any) -> Entry:
    return Entry(row.slug, row.status.value, list(row.booking_requirements))


def _result(ref: Ref, entry: Entry) -> dict[str, Any]:
    known = entry is not UNKNOWN
    answer = bookability(entry.status if known else None)
    return {
        "treatment": ref,
        "slug": entry.slug if known else None,
        "bookable": answer.bookable,
        "status": entry.status if known else None,
        "reason": answer.reason,
        "message": answer.message,
        "requirements": entry.requirements,
    }
