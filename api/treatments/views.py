"""Treatment reads: the views the website and staff read, list queries, lookups and ETags.

Nothing here writes; the writes (`service`, `decisions`) find their rows through `find_*`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, load_only, selectinload

from api.audit.service import list_audit
from api.booking.rules import bookable_clause, is_bookable
from api.errors import NotFound
from api.pagination import encode_cursor
from api.treatments.evidence import EvidenceSummary, derive_evidence
from api.treatments.models import Decision, RegulatoryStatus, Study, Treatment
from api.treatments.policy import UnmetCriterion, approval_blockers
from api.treatments.settings import RuleSettings
from api.treatments.vocabulary import Screening, Status

SUMMARY_COLUMNS = (
    Treatment.slug, Treatment.name, Treatment.aliases, Treatment.category, Treatment.summary,
    Treatment.status, Treatment.status_reason, Treatment.safety, Treatment.updated_at, Treatment.version,
    Treatment.suspended_at, Treatment.next_review_due,
)  # fmt: skip


class TreatmentNotFound(NotFound):
    def __init__(self, slug: str):
        super().__init__(f"No treatment has the slug '{slug}'.")


class EntryNotFound(NotFound):
    pass


@dataclass(frozen=True)
class TreatmentFilters:
    status: Status | None = None
    category: str | None = None
    bookable: bool | None = None
    q: str | None = None
    updated_since: dt.datetime | None = None
    page: int = 1
    per_page: int = 50
    cursor: tuple[str, int] | None = None  # keyset: start after this (name, id)
    review_due_by: dt.date | None = None  # the staff console: next review due by then, or never scheduled


def evidence_for(treatment: Treatment, rules: RuleSettings) -> EvidenceSummary:
    """The derived evidence summary; studies still in screening (or excluded) do not count."""
    return derive_evidence(counted_studies(treatment), bool(treatment.safety), rules.thresholds)


def counted_studies(treatment: Treatment) -> list[Study]:
    return [s for s in treatment.studies if s.screening == Screening.ACCEPTED]


def treatment_bookable(treatment: Treatment) -> bool:
    """`api.booking.rules.is_bookable` for a treatment row: approved and not suspended."""
    return is_bookable(treatment.status, treatment.suspended_at is not None)


def gate_unmet(treatment: Treatment, rules: RuleSettings) -> list[UnmetCriterion]:
    """What the treatment's current facts lack for approval (the policy gate), whatever its status."""
    return approval_blockers(evidence_for(treatment, rules).level, treatment.regulatory, rules.gate)


def gate_status(session: Session, slug: str, rules: RuleSettings) -> dict[str, Any]:
    """Staff's view of the gate: whether the treatment's current facts meet it, and, for an approved
    one that no longer does, the flag that puts it first in the due-review report."""
    treatment = find_treatment(session, slug)
    unmet = gate_unmet(treatment, rules)
    return {
        "slug": treatment.slug,
        "status": treatment.status,
        "evidence_level": evidence_for(treatment, rules).level,
        "meets_gate": not unmet,
        "unmet": [{"code": u.code, "message": u.message} for u in unmet],
        "flagged": treatment.status == Status.APPROVED and bool(unmet),
        "bookable": treatment_bookable(treatment),
        "suspended_at": treatment.suspended_at,
        "suspension_reason": treatment.suspension_reason,
    }


def treatment_etag(treatment: Treatment, rules: RuleSettings) -> str:
    """A strong ETag: the row version plus everything else a representation depends on."""
    return f'"t{treatment.id}-v{treatment.version}-{rules.fingerprint}"'


def entry_etag(entry: Study | RegulatoryStatus) -> str:
    kind = "s" if isinstance(entry, Study) else "r"
    return f'"{kind}{entry.id}-v{entry.version}"'


def summary_view(treatment: Treatment, rules: RuleSettings) -> dict[str, Any]:
    return {
        "slug": treatment.slug,
        "name": treatment.name,
        "aliases": treatment.aliases,
        "category": treatment.category,
        "summary": treatment.summary,
        "status": treatment.status,
        "status_reason": treatment.status_reason,
        "bookable": treatment_bookable(treatment),
        "evidence": evidence_for(treatment, rules).as_dict(),
        "updated_at": treatment.updated_at,
        "next_review_due": treatment.next_review_due,  # for staff; not in the public schema
    }


def detail_view(session: Session, treatment: Treatment, rules: RuleSettings) -> dict[str, Any]:
    latest = session.scalars(
        select(Decision).where(Decision.treatment_id == treatment.id).order_by(Decision.id.desc()).limit(1)
    ).first()
    return summary_view(treatment, rules) | {
        "explanation": treatment.explanation,
        "explanation_html": treatment.explanation_html,
        "booking_requirements": treatment.booking_requirements,
        "external_ids": treatment.external_id_map(),
        "regulatory": treatment.regulatory,
        "safety": treatment.safety,
        "latest_decision": latest,
        "last_reviewed_on": treatment.last_reviewed_on,
        "next_review_due": treatment.next_review_due,
        "version": treatment.version,
        "created_at": treatment.created_at,
    }


def list_treatments(session: Session, filters: TreatmentFilters, rules: RuleSettings) -> dict[str, Any]:
    """One page of treatments, ordered by name then id, in three queries whatever the page holds.

    Pages come off the (name, id) indexes; only the listed columns are read. A page starts at
    an offset (`page`, bounded by MAX_LIST_OFFSET) or after a cursor (`api.pagination`); every
    page names the cursor of the next one."""
    conditions = []
    if filters.status is not None:
        conditions.append(Treatment.status == filters.status)
    if filters.bookable is not None:
        bookable = bookable_clause(Treatment.status, Treatment.suspended_at)
        conditions.append(bookable if filters.bookable else ~bookable)
    if filters.category is not None:
        conditions.append(Treatment.category == filters.category)
    if filters.q is not None:
        needle = filters.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(Treatment.search_text.like(f"%{needle}%", escape="\\"))
    if filters.updated_since is not None:
        conditions.append(Treatment.updated_at >= filters.updated_since)
    if filters.review_due_by is not None:
        conditions.append(
            Treatment.next_review_due.is_(None) | (Treatment.next_review_due <= filters.review_due_by)
        )
    total = session.scalar(select(func.count(Treatment.id)).where(*conditions)) or 0
    ids = select(Treatment.id).where(*conditions).order_by(Treatment.name, Treatment.id)
    if filters.cursor is not None:
        ids = ids.where(tuple_(Treatment.name, Treatment.id) > tuple_(*filters.cursor))
    else:
        ids = ids.offset((filters.page - 1) * filters.per_page)
    # A deferred join: the page's ids (and one more, to know whether a next page exists) come off
    # the (name, id) index alone, and only those rows are read.
    page_ids = ids.limit(filters.per_page + 1).subquery()
    rows = session.scalars(
        select(Treatment)
        .join(page_ids, Treatment.id == page_ids.c.id)
        .options(load_only(*SUMMARY_COLUMNS), selectinload(Treatment.studies))
        .order_by(Treatment.name, Treatment.id)
    ).all()
    page, more = rows[: filters.per_page], len(rows) > filters.per_page
    return {
        "items": [summary_view(t, rules) for t in page],
        "page": filters.page if filters.cursor is None else None,
        "per_page": filters.per_page,
        "total": total,
        "next_cursor": encode_cursor(page[-1].name, page[-1].id) if more else None,
    }


def find_treatment(session: Session, slug: str, *, for_update: bool = False) -> Treatment:
    """The treatment with `slug`. Writes that change it without the client's If-Match on it (adding
    an entry, a decision) lock its row first (FOR UPDATE on PostgreSQL; SQLite has one writer at a
    time), so concurrent writes wait for each other instead of failing with a stale version."""
    query = select(Treatment).where(Treatment.slug == slug)
    treatment = session.scalars(query.with_for_update() if for_update else query).first()
    if treatment is None:
        raise TreatmentNotFound(slug)
    return treatment


def list_decisions(session: Session, slug: str) -> list[Decision]:
    return list(find_treatment(session, slug).decisions)


def list_studies(session: Session, slug: str) -> list[Study]:
    return list(find_treatment(session, slug).studies)


def list_regulatory(session: Session, slug: str) -> list[RegulatoryStatus]:
    return list(find_treatment(session, slug).regulatory)


def treatment_audit(session: Session, slug: str, before: int | None = None, limit: int = 200) -> list[Any]:
    """The newest `limit` audit records (older than `before`, when given), oldest first."""
    return list_audit(session, find_treatment(session, slug).id, before=before, limit=limit)


def find_study(session: Session, slug: str, study_id: int, *, for_update: bool = False) -> Study:
    return _find_entry(session, Study, slug, study_id, "study", for_update)


def find_regulatory(
    session: Session, slug: str, entry_id: int, *, for_update: bool = False
) -> RegulatoryStatus:
    return _find_entry(session, RegulatoryStatus, slug, entry_id, "regulatory entry", for_update)


def _find_entry(
    session: Session, model: Any, slug: str, entry_id: int, label: str, for_update: bool = False
) -> Any:
    treatment = find_treatment(session, slug, for_update=for_update)
    entry = session.get(model, entry_id)
    if entry is None or entry.treatment_id != treatment.id:
        raise EntryNotFound(f"Treatment '{slug}' has no {label} with id {entry_id}.")
    return entry
