"""Booking checks: can these treatments be booked? Read-only, failing closed.

Answers come from a booking index (every treatment's slug, status and requirements, and every
booking-system id), built once per feed position and kept by the per-process read cache, so a
check costs one cheap query and dictionary lookups, and is never older than the last write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.booking.rules import bookability
from api.treatments.models import ExternalId, Treatment


@dataclass(frozen=True)
class Entry:
    slug: str
    status: str
    requirements: list[Any]


@dataclass(frozen=True)
class BookingIndex:
    by_slug: dict[str, Entry]
    by_ref: dict[tuple[str, str], Entry]


def build_index(session: Session) -> BookingIndex:
    """Two queries, whatever the size of the catalogue."""
    rows = session.execute(
        select(Treatment.id, Treatment.slug, Treatment.status, Treatment.booking_requirements)
    )
    by_id = {row.id: Entry(row.slug, row.status.value, list(row.booking_requirements)) for row in rows}
    refs = session.execute(select(ExternalId.system, ExternalId.external_id, ExternalId.treatment_id))
    return BookingIndex(
        by_slug={entry.slug: entry for entry in by_id.values()},
        by_ref={(r.system, r.external_id): by_id[r.treatment_id] for r in refs if r.treatment_id in by_id},
    )


def check_booking(index: BookingIndex, refs: list[str | dict[str, str]]) -> dict[str, Any]:
    """Answer each reference in request order; unknown ones are answered not bookable."""
    results = []
    for ref in refs:
        entry = (
            index.by_slug.get(ref) if isinstance(ref, str) else index.by_ref.get((ref["system"], ref["id"]))
        )
        answer = bookability(entry.status if entry else None)
        results.append(
            {
                "treatment": ref,
                "slug": entry.slug if entry else None,
                "bookable": answer.bookable,
                "status": entry.status if entry else None,
                "reason": answer.reason,
                "message": answer.message,
                "requirements": entry.requirements if entry else [],
            }
        )
    return {"bookable": all(r["bookable"] for r in results), "results": results}
