"""Review monitoring: record reviews that confirm a decision, and report the reviews due.

A review is the clinic re-reading the evidence and regulatory facts and finding no reason to
change its decision. It moves `last_reviewed_on` to today and `next_review_due` on by the
interval for the treatment's current status, exactly as a decision would, in one transaction
with its audit record and its `treatment.reviewed` change event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api.audit.service import Actor, diff, record_audit
from api.changes.service import record_change
from api.db import utcnow
from api.reviews.models import Review
from api.treatments import schedule
from api.treatments.models import Treatment
from api.treatments.settings import RuleSettings
from api.treatments.views import find_treatment, gate_unmet
from api.treatments.vocabulary import Status

# --- rules (pure) -----------------------------------------------------------------------------


def due_state(next_review_due: dt.date | None, today: dt.date) -> dict[str, Any]:
    """Overdue means due before today, or never scheduled; a review due today is not overdue."""
    if next_review_due is None:
        return {"overdue": True, "days_overdue": None, "days_until_due": None}
    days = (next_review_due - today).days
    if days < 0:
        return {"overdue": True, "days_overdue": -days, "days_until_due": None}
    return {"overdue": False, "days_overdue": None, "days_until_due": days}


def _due_order(row: dict[str, Any]) -> tuple[Any, ...]:
    # Approved treatments that no longer meet the gate first, then never scheduled, then the
    # longest overdue, then the soonest due.
    due = row["next_review_due"]
    return (not row["gate_not_met"], due is not None, due or dt.date.min, row["name"], row["slug"])


# --- use cases --------------------------------------------------------------------------------


def record_review(session: Session, slug: str, note: str, actor: Actor, rules: RuleSettings) -> Review:
    """Record a review that confirms the current decision and schedule the next one."""
    treatment = find_treatment(session, slug, for_update=True)  # concurrent writes wait, not fail
    today = utcnow().date()
    before = _schedule(treatment)
    treatment.last_reviewed_on = today
    treatment.next_review_due = schedule.next_review_due(today, treatment.status, rules)  # as decisions do
    # Bumps the row version too, so the treatment's ETag changes with its review dates.
    treatment.updated_at = utcnow()
    review = Review(
        treatment_id=treatment.id, note=note, reviewed_by=actor.name, reviewed_by_role=actor.role,
        next_review_due=treatment.next_review_due,
    )  # fmt: skip
    session.add(review)
    session.flush()
    changes = diff(before, _schedule(treatment)) | {"note": {"from": None, "to": note}}
    record_audit(
        session, treatment_id=treatment.id, entity="review", entity_id=review.id, action="created",
        actor=actor, changes=changes,
    )  # fmt: skip
    record_change(
        session, "treatment.reviewed", slug,
        {"slug": slug, "review_id": review.id, "status": Status(treatment.status).value,
         "last_reviewed_on": today.isoformat(), "next_review_due": treatment.next_review_due.isoformat()},
    )  # fmt: skip
    session.commit()
    return review


def list_reviews(session: Session, slug: str) -> list[Review]:
    """A treatment's reviews, oldest first."""
    treatment = find_treatment(session, slug)
    query = select(Review).where(Review.treatment_id == treatment.id).order_by(Review.id)
    return list(session.scalars(query))


def reviews_due(
    session: Session, within: int, rules: RuleSettings, today: dt.date | None = None
) -> dict[str, Any]:
    """Approved treatments whose current facts no longer meet the policy gate, whenever their
    review is due, then treatments whose next review is due on or before today + `within` days
    (or was never scheduled), overdue first."""
    today = today or utcnow().date()
    due_by = today + dt.timedelta(days=within)
    columns = (
        Treatment.slug, Treatment.name, Treatment.status, Treatment.last_reviewed_on,
        Treatment.next_review_due,
    )  # fmt: skip
    query = select(*columns).where(
        (Treatment.next_review_due.is_(None)) | (Treatment.next_review_due <= due_by)
    )
    rows = {row.slug: row._asdict() | {"gate_not_met": False, "unmet": []} for row in session.execute(query)}
    approved = session.scalars(
        select(Treatment)
        .where(Treatment.status == Status.APPROVED)
        .options(selectinload(Treatment.studies), selectinload(Treatment.regulatory))
    )
    for treatment in approved:
        unmet = gate_unmet(treatment, rules)
        if unmet:
            row = {c.key: getattr(treatment, c.key) for c in columns}
            rows[treatment.slug] = row | {
                "gate_not_met": True, "unmet": [{"code": u.code, "message": u.message} for u in unmet],
            }  # fmt: skip
    items = [row | due_state(row["next_review_due"], today) for row in sorted(rows.values(), key=_due_order)]
    return {
        "as_of": today,
        "within_days": within,
        "due_by": due_by,
        "overdue": sum(1 for item in items if item["overdue"]),
        "items": items,
    }


def _schedule(treatment: Treatment) -> dict[str, Any]:
    return {
        "last_reviewed_on": _iso(treatment.last_reviewed_on),
        "next_review_due": _iso(treatment.next_review_due),
    }


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None
