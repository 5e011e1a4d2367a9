"""Booking checks: can these treatments be booked? Read-only, failing closed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from api.booking.rules import bookability
from api.treatments.models import ExternalId, Treatment


def check_booking(session: Session, refs: list[str | dict[str, str]]) -> dict[str, Any]:
    """Answer each reference in request order; unknown ones are answered not bookable."""
    slugs = {r for r in refs if isinstance(r, str)}
    pairs = {(r["system"], r["id"]) for r in refs if isinstance(r, dict)}
    columns = (Treatment.slug, Treatment.status, Treatment.booking_requirements)

    by_slug = {}
    if slugs:
        by_slug = {
            row.slug: row for row in session.execute(select(*columns).where(Treatment.slug.in_(slugs)))
        }
    by_ref = {}
    if pairs:
        matches = or_(*(and_(ExternalId.system == s, ExternalId.external_id == i) for s, i in pairs))
        rows = session.execute(
            select(ExternalId.system, ExternalId.external_id, *columns)
            .join(Treatment, Treatment.id == ExternalId.treatment_id)
            .where(matches)
        )
        by_ref = {(row.system, row.external_id): row for row in rows}

    results = []
    for ref in refs:
        row = by_slug.get(ref) if isinstance(ref, str) else by_ref.get((ref["system"], ref["id"]))
        answer = bookability(row.status if row else None)
        results.append(
            {
                "treatment": ref,
                "slug": row.slug if row else None,
                "bookable": answer.bookable,
                "status": row.status.value if row else None,
                "reason": answer.reason,
                "message": answer.message,
                "requirements": list(row.booking_requirements) if row else [],
            }
        )
    return {"bookable": all(r["bookable"] for r in results), "results": results}
