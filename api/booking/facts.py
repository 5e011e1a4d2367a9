"""What booking checks remember: each named treatment's booking facts, per version of the catalogue.

The booking feature owns this store (`facts_store`); the read path empties it with the read cache
when anything public changes (`api.readcache.ReadPath.add_store`). A treatment is looked up once
per version, by slug or by a booking system's id, with one indexed query for only the
treatments a check names, whatever the catalogue's size. Unknown names are remembered too.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from api.readcache.store import VersionedStore
from api.treatments.models import ExternalId, Treatment

Ref = str | dict[str, str]
Key = tuple[str, ...]
MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Facts:
    slug: str
    status: str
    requirements: list[Any]
    suspended: bool = False


UNKNOWN = Facts("", "", [])


def key(ref: Ref) -> Key:
    return (ref,) if isinstance(ref, str) else (ref["system"], ref["id"])


def remembered(store: VersionedStore, version: Hashable, refs: list[Ref]) -> list[Facts] | None:
    """Every reference's facts from memory alone; None if any was not looked up at `version`
    (only references that passed the schema are ever looked up)."""
    found = [store.get(key(ref), version) for ref in refs]
    return None if any(facts is None for facts in found) else found


def recall(session: Session, store: VersionedStore, version: Hashable, refs: list[Ref]) -> list[Facts]:
    """Every reference's facts, looking up (and remembering) those not yet known at `version`."""
    keys = [key(ref) for ref in refs]
    known = {k: store.get(k, version) for k in set(keys)}
    missing = [k for k, facts in known.items() if facts is None]
    if missing:
        found = look_up(session, missing)
        for k in missing:
            known[k] = found.get(k, UNKNOWN)
            store.put(k, known[k], version)
    return [known[k] for k in keys]


def look_up(session: Session, keys: list[Key]) -> dict[Key, Facts]:
    """At most two indexed queries for the treatments named, by slug and by booking-system id."""
    columns = (Treatment.slug, Treatment.status, Treatment.booking_requirements, Treatment.suspended_at)
    found: dict[Key, Facts] = {}
    slugs = [k[0] for k in keys if len(k) == 1]
    if slugs:
        for row in session.execute(select(*columns).where(Treatment.slug.in_(slugs))):
            found[(row.slug,)] = _facts(row)
    pairs = [k for k in keys if len(k) == 2]
    if pairs:
        matches = or_(*(and_(ExternalId.system == s, ExternalId.external_id == i) for s, i in pairs))
        query = select(ExternalId.system, ExternalId.external_id, *columns).join(Treatment).where(matches)
        for row in session.execute(query):
            found[(row.system, row.external_id)] = _facts(row)
    return found


def _facts(row: Any) -> Facts:
    return Facts(row.slug, row.status.value, list(row.booking_requirements), row.suspended_at is not None)


def create_store(app: Flask) -> VersionedStore:
    store = app.extensions["booking_facts"] = VersionedStore(app.config["READ_CACHE_MAX_ENTRIES"], MAX_BYTES)
    return store


def facts_store() -> VersionedStore:
    store: VersionedStore = current_app.extensions["booking_facts"]
    return store
