"""Treatment use cases: public reads for the website, governed writes for staff.

Every write is one transaction: the change, its audit record and its change-feed events are
added to the session and committed together by `_commit`, or not at all.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, load_only, selectinload

from api.audit.service import SYSTEM_ACTOR, Actor, diff, list_audit, record_audit
from api.booking.rules import SUSPENDED, bookable_clause, is_bookable
from api.changes.service import record_change
from api.db import utcnow
from api.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
)
from api.pagination import encode_cursor
from api.preconditions import check_if_match
from api.rules import Rules
from api.treatments.evidence import EvidenceSummary, derive_evidence
from api.treatments.markdown import render_explanation
from api.treatments.models import Decision, ExternalId, RegulatoryStatus, Study, Treatment
from api.treatments.policy import UnmetCriterion, approval_blockers
from api.treatments.vocabulary import POOLED_FIELDS, REVIEW_DESIGNS, RegulatoryStatusCode, Screening, Status

CONTENT_FIELDS = (
    "name", "aliases", "category", "summary", "explanation", "booking_requirements", "safety", "external_ids",
)  # fmt: skip
STUDY_FIELDS = (
    "title", "authors", "journal", "year", "doi", "pmid", "url", "design", "participants",
    "randomised", "controlled", "blinded", "follow_up_months", "sponsorship", "peer_reviewed",
    "outcome_summary", "risk_of_bias", "risk_of_bias_note", "pooled_designs", "pooled_studies", "screening",
)  # fmt: skip
REGULATORY_FIELDS = (
    "regulator", "status", "pathway", "product", "indication", "reference", "decided_on",
    "source_url", "verified_on",
)  # fmt: skip
OVERRIDE_MIN_LENGTH = 40
SUMMARY_COLUMNS = (
    Treatment.slug, Treatment.name, Treatment.aliases, Treatment.category, Treatment.summary,
    Treatment.status, Treatment.status_reason, Treatment.safety, Treatment.updated_at, Treatment.version,
    Treatment.suspended_at,
)  # fmt: skip


class TreatmentNotFound(NotFound):
    def __init__(self, slug: str):
        super().__init__(f"No treatment has the slug '{slug}'.")


class EntryNotFound(NotFound):
    pass


class DuplicateSlug(Conflict):
    slug = "duplicate-slug"

    def __init__(self, slug: str):
        super().__init__(f"A treatment with the slug '{slug}' already exists.")


class ExternalIdTaken(Conflict):
    slug = "external-id-taken"


class PolicyGateRefused(Conflict):
    slug, title = "policy-gate-refused", "Approval refused by the policy gate"

    def __init__(self, unmet: list[UnmetCriterion]):
        super().__init__(
            "The treatment does not meet the clinic's criteria for approval.",
            unmet=[{"code": u.code, "message": u.message} for u in unmet],
        )


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


# --- reads -----------------------------------------------------------------------------------


def evidence_for(treatment: Treatment, rules: Rules) -> EvidenceSummary:
    """The derived evidence summary; studies still in screening (or excluded) do not count."""
    return derive_evidence(counted_studies(treatment), bool(treatment.safety), rules.thresholds)


def counted_studies(treatment: Treatment) -> list[Study]:
    return [s for s in treatment.studies if s.screening == Screening.ACCEPTED]


def treatment_bookable(treatment: Treatment) -> bool:
    """`api.booking.rules.is_bookable` for a treatment row: approved and not suspended."""
    return is_bookable(treatment.status, treatment.suspended_at is not None)


def gate_unmet(treatment: Treatment, rules: Rules) -> list[UnmetCriterion]:
    """What the treatment's current facts lack for approval (the policy gate), whatever its status."""
    return approval_blockers(evidence_for(treatment, rules).level, treatment.regulatory, rules.gate)


def gate_status(session: Session, slug: str, rules: Rules) -> dict[str, Any]:
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


def treatment_etag(treatment: Treatment, rules: Rules) -> str:
    """A strong ETag: the row version plus everything else a representation depends on."""
    return f'"t{treatment.id}-v{treatment.version}-{rules.fingerprint}"'


def entry_etag(entry: Study | RegulatoryStatus) -> str:
    kind = "s" if isinstance(entry, Study) else "r"
    return f'"{kind}{entry.id}-v{entry.version}"'


def summary_view(treatment: Treatment, rules: Rules) -> dict[str, Any]:
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
    }


def detail_view(session: Session, treatment: Treatment, rules: Rules) -> dict[str, Any]:
    latest = session.scalars(
        select(Decision).where(Decision.treatment_id == treatment.id).order_by(Decision.id.desc()).limit(1)
    ).first()
    return summary_view(treatment, rules) | {
        "explanation": treatment.explanation,
        "explanation_html": treatment.explanation_html,
        "booking_requirements": treatment.booking_requirements,
        "external_ids": {e.system: e.external_id for e in treatment.external_ids},
        "regulatory": treatment.regulatory,
        "safety": treatment.safety,
        "latest_decision": latest,
        "last_reviewed_on": treatment.last_reviewed_on,
        "next_review_due": treatment.next_review_due,
        "version": treatment.version,
        "created_at": treatment.created_at,
    }


def list_treatments(session: Session, filters: TreatmentFilters, rules: Rules) -> dict[str, Any]:
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


# --- writes ----------------------------------------------------------------------------------


def create_treatment(
    session: Session, data: dict[str, Any], actor: Actor, rules: Rules, *,
    studies: Sequence[dict[str, Any]] = (), regulatory: Sequence[dict[str, Any]] = (),
    decision: dict[str, Any] | None = None, reviewed: bool = True,
) -> Treatment:  # fmt: skip
    """Add a treatment with its first decision, so its status history is never empty.

    Through the API it starts `under_review`; the seed passes its studies, regulatory entries
    and initial decision, which must pass the policy gate like any other, with `reviewed=False`:
    no one reviewed it, so its review is due at once (`_decide`).
    """
    slug = data["slug"]
    if session.scalar(select(Treatment.id).where(Treatment.slug == slug)) is not None:
        raise DuplicateSlug(slug)
    treatment = Treatment(
        slug=slug, status=Status.UNDER_REVIEW, status_reason="", aliases=[], explanation="",
        explanation_html="", booking_requirements=[], safety=[],
    )  # fmt: skip
    session.add(treatment)
    _apply_content(session, treatment, {k: v for k, v in data.items() if k in CONTENT_FIELDS})
    treatment.studies = [Study(**s) for s in studies]
    treatment.regulatory = [RegulatoryStatus(**r) for r in regulatory]
    session.flush()
    _audit(session, treatment, "treatment", treatment.id, "created", actor,
           diff({}, _content_snapshot(treatment)))  # fmt: skip
    for entry in [*treatment.studies, *treatment.regulatory]:
        kind, fields = _kind(entry)
        _audit(session, treatment, kind, entry.id, "created", actor, diff({}, _snapshot(entry, fields)))
    record_change(session, "treatment.created", slug, _public_state(treatment))
    first = decision or {"status": Status.UNDER_REVIEW, "reason": "Added to the catalogue for evaluation.",
                         "reason_codes": ["awaiting_evidence"]}  # fmt: skip
    _decide(session, treatment, first["status"], first["reason"], first.get("reason_codes", []),
            None, actor, rules, reviewed=reviewed)  # fmt: skip
    _commit(session)
    return treatment


def refresh_treatment(
    session: Session, treatment: Treatment, data: dict[str, Any], studies: list[dict[str, Any]],
    regulatory: list[dict[str, Any]], actor: Actor, rules: Rules,
) -> bool:  # fmt: skip
    """Bring content, studies and regulatory entries in line with `data`; never the status,
    which only decisions set. Returns whether anything changed (nothing is written if not)."""
    content = {k: v for k, v in data.items() if k in CONTENT_FIELDS}
    before = _content_snapshot(treatment)
    _apply_content(session, treatment, content)
    changes = diff(before, _content_snapshot(treatment))
    changed, entries_changed = bool(changes), False
    if changes:
        _audit(session, treatment, "treatment", treatment.id, "updated", actor, changes)
        record_change(session, "treatment.updated", treatment.slug,
                      {"slug": treatment.slug, "fields": sorted(changes)})  # fmt: skip
    for collection, wanted, model in (
        (treatment.studies, studies, Study), (treatment.regulatory, regulatory, RegulatoryStatus)
    ):  # fmt: skip
        fields = STUDY_FIELDS if model is Study else REGULATORY_FIELDS
        current = [_snapshot(e, fields) for e in collection]
        desired = [_snapshot(model(**w), fields) for w in wanted]
        if current == desired:
            continue
        changed = entries_changed = True
        for entry in list(collection):
            _audit(session, treatment, _kind(entry)[0], entry.id, "deleted", actor,
                   diff(_snapshot(entry, fields), {}))  # fmt: skip
            collection.remove(entry)
        collection.extend(model(**w) for w in wanted)
        session.flush()
        for entry in collection:
            _audit(session, treatment, _kind(entry)[0], entry.id, "created", actor,
                   diff({}, _snapshot(entry, fields)))  # fmt: skip
            _entry_event(session, treatment, entry, _kind(entry)[0], "created", rules)
            _suspend_on_warning(session, treatment, entry, _kind(entry)[0], "created", rules)
    if entries_changed:
        _flag_unmet_gate(session, treatment, rules)  # once for the whole refresh
    if changed:
        treatment.updated_at = utcnow()
        _commit(session)
    return changed


def _kind(entry: Any) -> tuple[str, tuple[str, ...]]:
    return ("study", STUDY_FIELDS) if isinstance(entry, Study) else ("regulatory", REGULATORY_FIELDS)


def update_treatment(
    session: Session, slug: str, data: dict[str, Any], if_match: str | None, actor: Actor,
    rules: Rules,
) -> Treatment:  # fmt: skip
    """Change content fields, only if the client saw the current version (If-Match)."""
    treatment = find_treatment(session, slug)
    check_if_match(if_match, treatment_etag(treatment, rules))
    before = _content_snapshot(treatment)
    _apply_content(session, treatment, data)
    changes = diff(before, _content_snapshot(treatment))
    if changes:
        treatment.updated_at = utcnow()
        session.flush()
        _audit(session, treatment, "treatment", treatment.id, "updated", actor, changes)
        record_change(
            session, "treatment.updated", slug,
            {"slug": slug, "fields": sorted(changes), "version": treatment.version},
        )  # fmt: skip
    _commit(session)
    return treatment


def add_study(session: Session, slug: str, data: dict[str, Any], actor: Actor, rules: Rules) -> Study:
    treatment = find_treatment(session, slug, for_update=True)
    study = Study(treatment=treatment, **data)
    return _entry_created(session, treatment, study, "study", STUDY_FIELDS, actor, rules)


def add_regulatory(
    session: Session, slug: str, data: dict[str, Any], actor: Actor, rules: Rules
) -> RegulatoryStatus:
    treatment = find_treatment(session, slug, for_update=True)
    entry = RegulatoryStatus(treatment=treatment, **data)
    return _entry_created(session, treatment, entry, "regulatory", REGULATORY_FIELDS, actor, rules)


def update_study(
    session: Session, slug: str, study_id: int, data: dict[str, Any], if_match: str | None,
    actor: Actor, rules: Rules,
) -> Study:  # fmt: skip
    study = find_study(session, slug, study_id, for_update=True)
    design = data.get("design", study.design)
    # The schema refuses a body that contradicts itself (422); these bodies are valid on their own
    # but conflict with the stored study (409).
    if design is None and data.get("screening", study.screening) == Screening.ACCEPTED:
        raise Conflict(
            "An accepted study needs a design.",
            errors=[
                {"location": "json", "field": "design", "message": "Set a design before accepting the study."}
            ],
        )
    if design not in REVIEW_DESIGNS:
        pooled = [name for name in POOLED_FIELDS if data.get(name) is not None]
        if pooled:
            message = "The study is not a review: set a review design first."
            raise Conflict(
                "Only a systematic review or meta-analysis pools studies.",
                errors=[{"location": "json", "field": name, "message": message} for name in pooled],
            )
        if study.design in REVIEW_DESIGNS:  # it stops being a review: what only a review has goes
            data = {**data, **dict.fromkeys(POOLED_FIELDS)}
    return _entry_updated(session, study, "study", STUDY_FIELDS, data, if_match, actor, rules)


def update_regulatory(
    session: Session, slug: str, entry_id: int, data: dict[str, Any], if_match: str | None,
    actor: Actor, rules: Rules,
) -> RegulatoryStatus:  # fmt: skip
    entry = find_regulatory(session, slug, entry_id, for_update=True)
    return _entry_updated(session, entry, "regulatory", REGULATORY_FIELDS, data, if_match, actor, rules)


def delete_study(
    session: Session, slug: str, study_id: int, if_match: str | None, actor: Actor, rules: Rules
) -> None:
    study = find_study(session, slug, study_id, for_update=True)
    _entry_deleted(session, study, "study", STUDY_FIELDS, if_match, actor, rules)


def delete_regulatory(
    session: Session, slug: str, entry_id: int, if_match: str | None, actor: Actor, rules: Rules
) -> None:
    entry = find_regulatory(session, slug, entry_id, for_update=True)
    _entry_deleted(session, entry, "regulatory", REGULATORY_FIELDS, if_match, actor, rules)


def record_decision(
    session: Session, slug: str, data: dict[str, Any], actor: Actor, rules: Rules
) -> Decision:
    """Rule on a treatment's status. An approval must pass the policy gate unless an admin
    overrides it with a written justification, which is then public. Every decision lifts a
    suspension of bookings (the clinic has ruled on the facts that caused it)."""
    treatment = find_treatment(session, slug, for_update=True)
    decision = _decide(
        session, treatment, data["status"], data["reason"], data.get("reason_codes", []),
        data.get("override_justification"), actor, rules,
    )  # fmt: skip
    _commit(session)
    return decision


def _decide(
    session: Session, treatment: Treatment, status: Status, reason: str, reason_codes: list[str],
    override: str | None, actor: Actor, rules: Rules, *, reviewed: bool = True,
) -> Decision:  # fmt: skip
    """Record a decision. `reviewed=False` (the illustrative seed) records no review: the
    treatment's `last_reviewed_on` stays as it was and its next review is due today."""
    status = Status(status)
    evidence = evidence_for(treatment, rules)
    unmet = (
        approval_blockers(evidence.level, treatment.regulatory, rules.gate)
        if status == Status.APPROVED
        else []
    )  # noqa: E501
    if override is not None:
        if actor.role != "admin":
            raise Forbidden("Only an admin may override the policy gate.")
        if status != Status.APPROVED:  # the body contradicts itself (the schema documents it)
            raise InvalidInput(
                "An override is only accepted for an approval the policy gate refuses.",
                [{"location": "json", "field": "override_justification",
                  "message": "Nothing to override: only an approval can be refused by the gate."}],
            )  # fmt: skip
        if not unmet:  # valid on its own, but the treatment's current facts pass the gate
            raise Conflict(
                "An override is only accepted for an approval the policy gate refuses.",
                errors=[{"location": "json", "field": "override_justification",
                         "message": "Nothing to override: the gate does not refuse this decision."}],
            )  # fmt: skip
    elif unmet:
        raise PolicyGateRefused(unmet)

    previous = treatment.status if treatment.id and _has_decisions(session, treatment) else None
    was_bookable = treatment_bookable(treatment) if previous is not None else None
    today = utcnow().date()
    decision = Decision(
        treatment=treatment, status=status, previous_status=previous, reason=reason,
        reason_codes=list(reason_codes), decided_by=actor.name, decided_by_role=actor.role,
        evidence_level=evidence.level, evidence_snapshot=evidence.as_dict(),
        regulatory_snapshot=[_regulatory_snapshot(e) for e in treatment.regulatory],
        override_justification=override,
    )  # fmt: skip
    session.add(decision)
    before = _status_snapshot(treatment)
    treatment.status = status
    treatment.status_reason = reason
    treatment.suspended_at = treatment.suspension_reason = None
    if reviewed:
        treatment.last_reviewed_on = today
        treatment.next_review_due = add_months(today, rules.review_interval_months(status))
    else:
        treatment.next_review_due = today
    treatment.updated_at = utcnow()
    session.flush()
    changes = diff(before, _status_snapshot(treatment))
    if override:
        changes["override_justification"] = {"from": None, "to": override}
    _audit(session, treatment, "decision", decision.id, "created", actor, changes)
    record_change(
        session, "decision.recorded", treatment.slug,
        {"slug": treatment.slug, "decision_id": decision.id, "status": status.value,
         "reason": reason, "override": override is not None},
    )  # fmt: skip
    if previous is not None and previous != status:
        record_change(
            session, "treatment.status_changed", treatment.slug,
            {"slug": treatment.slug, "old_status": previous.value,
             "new_status": status.value, "old_bookable": was_bookable,
             "new_bookable": treatment_bookable(treatment), "reason": reason},
        )  # fmt: skip
    if was_bookable is not None and was_bookable != treatment_bookable(treatment):
        _bookability_changed(session, treatment, was_bookable, reason, decision_id=decision.id)
    return decision


def _bookability_changed(
    session: Session, treatment: Treatment, was_bookable: bool, reason: str, **cause: Any
) -> None:
    record_change(
        session, "treatment.bookability_changed", treatment.slug,
        {"slug": treatment.slug, "old_bookable": was_bookable, "new_bookable": treatment_bookable(treatment),
         "status": Status(treatment.status).value, "reason": reason} | cause,
    )  # fmt: skip


def _after_entry_change(
    session: Session, treatment: Treatment, entry: Any, kind: str, action: str, rules: Rules
) -> None:
    """What a change to a study or regulatory entry sets off, in its own transaction: a warning
    suspends an approved treatment's bookings; an approved treatment left short of the gate is
    announced (`treatment.gate_not_met`). Decisions are never rewritten: only a new one rules."""
    _suspend_on_warning(session, treatment, entry, kind, action, rules)
    _flag_unmet_gate(session, treatment, rules)


def _suspend_on_warning(
    session: Session, treatment: Treatment, entry: Any, kind: str, action: str, rules: Rules
) -> None:
    if treatment.status != Status.APPROVED:
        return
    warning = (
        kind == "regulatory" and action != "deleted" and entry.status == RegulatoryStatusCode.WARNING_ISSUED
    )
    if warning and rules.suspend_on_warning and treatment.suspended_at is None:
        was_bookable = treatment_bookable(treatment)
        treatment.suspended_at = utcnow()
        treatment.suspension_reason = f"{entry.regulator} issued a warning (regulatory entry {entry.id})."
        session.flush()
        _audit(session, treatment, "treatment", treatment.id, "suspended", SYSTEM_ACTOR, {
            "suspended_at": {"from": None, "to": treatment.suspended_at.isoformat()},
            "suspension_reason": {"from": None, "to": treatment.suspension_reason},
            "regulatory_entry_id": {"from": None, "to": entry.id},
        })  # fmt: skip
        _bookability_changed(session, treatment, was_bookable, SUSPENDED, regulatory_entry_id=entry.id)


def _flag_unmet_gate(session: Session, treatment: Treatment, rules: Rules) -> None:
    if treatment.status != Status.APPROVED:
        return
    unmet = gate_unmet(treatment, rules)
    if unmet:
        record_change(
            session, "treatment.gate_not_met", treatment.slug,
            {"slug": treatment.slug, "status": Status(treatment.status).value,
             "unmet": [{"code": u.code, "message": u.message} for u in unmet]},
        )  # fmt: skip


def _has_decisions(session: Session, treatment: Treatment) -> bool:
    return (
        session.scalar(select(Decision.id).where(Decision.treatment_id == treatment.id).limit(1)) is not None
    )


def _entry_created(
    session: Session, treatment: Treatment, entry: Any, kind: str, fields: tuple[str, ...],
    actor: Actor, rules: Rules,
) -> Any:  # fmt: skip
    session.add(entry)
    treatment.updated_at = utcnow()
    session.flush()
    _audit(session, treatment, kind, entry.id, "created", actor, diff({}, _snapshot(entry, fields)))
    _entry_event(session, treatment, entry, kind, "created", rules)
    _after_entry_change(session, treatment, entry, kind, "created", rules)
    _commit(session)
    return entry


def _entry_updated(
    session: Session, entry: Any, kind: str, fields: tuple[str, ...], data: dict[str, Any],
    if_match: str | None, actor: Actor, rules: Rules,
) -> Any:  # fmt: skip
    check_if_match(if_match, entry_etag(entry))
    before = _snapshot(entry, fields)
    for key, value in data.items():
        setattr(entry, key, value)
    changes = diff(before, _snapshot(entry, fields))
    if changes:
        treatment = entry.treatment
        entry.updated_at = treatment.updated_at = utcnow()
        session.flush()
        _audit(session, treatment, kind, entry.id, "updated", actor, changes)
        _entry_event(session, treatment, entry, kind, "updated", rules)
        _after_entry_change(session, treatment, entry, kind, "updated", rules)
    _commit(session)
    return entry


def _entry_deleted(
    session: Session, entry: Any, kind: str, fields: tuple[str, ...], if_match: str | None,
    actor: Actor, rules: Rules,
) -> None:  # fmt: skip
    if if_match is not None:
        check_if_match(if_match, entry_etag(entry))
    treatment = entry.treatment
    _audit(session, treatment, kind, entry.id, "deleted", actor, diff(_snapshot(entry, fields), {}))
    collection = treatment.studies if kind == "study" else treatment.regulatory
    collection.remove(entry)
    treatment.updated_at = utcnow()
    session.flush()
    _entry_event(session, treatment, entry, kind, "deleted", rules)
    _after_entry_change(session, treatment, entry, kind, "deleted", rules)
    _commit(session)


def _entry_event(
    session: Session, treatment: Treatment, entry: Any, kind: str, action: str, rules: Rules
) -> None:
    data: dict[str, Any] = {"slug": treatment.slug, "id": entry.id}
    if kind == "study":
        data["evidence_level"] = evidence_for(treatment, rules).level.value
    else:
        data |= {"regulator": entry.regulator, "status": RegulatoryStatusCode(entry.status).value}
    record_change(session, f"{kind}.{action}", treatment.slug, data)


def _audit(
    session: Session, treatment: Treatment, entity: str, entity_id: int, action: str,
    actor: Actor, changes: dict[str, Any],
) -> None:  # fmt: skip
    record_audit(
        session, treatment_id=treatment.id, entity=entity, entity_id=entity_id, action=action,
        actor=actor, changes=changes,
    )  # fmt: skip


def _apply_content(session: Session, treatment: Treatment, data: dict[str, Any]) -> None:
    for key, value in data.items():
        if key == "external_ids":
            _set_external_ids(session, treatment, value)
        else:
            setattr(treatment, key, value)
    if "explanation" in data:
        treatment.explanation_html = render_explanation(treatment.explanation)
    if "name" in data or "aliases" in data:
        treatment.search_text = "\n".join([treatment.name, *treatment.aliases]).lower()


def _set_external_ids(session: Session, treatment: Treatment, ids: dict[str, str]) -> None:
    for system, external_id in ids.items():
        owner = session.scalar(
            select(ExternalId.treatment_id).where(
                ExternalId.system == system, ExternalId.external_id == external_id
            )
        )
        if owner is not None and owner != treatment.id:
            raise ExternalIdTaken(f"The {system} id '{external_id}' already belongs to another treatment.")
    current = {e.system: e for e in treatment.external_ids}
    for system in set(current) - set(ids):
        treatment.external_ids.remove(current[system])
    for system, external_id in ids.items():
        if system in current:
            current[system].external_id = external_id
        else:
            treatment.external_ids.append(ExternalId(system=system, external_id=external_id))


def _content_snapshot(treatment: Treatment) -> dict[str, Any]:
    snapshot = {f: getattr(treatment, f) for f in CONTENT_FIELDS if f != "external_ids"}
    snapshot["external_ids"] = {e.system: e.external_id for e in treatment.external_ids}
    return snapshot


def _status_snapshot(treatment: Treatment) -> dict[str, Any]:
    return {
        "status": Status(treatment.status).value,
        "status_reason": treatment.status_reason,
        "last_reviewed_on": _iso(treatment.last_reviewed_on),
        "next_review_due": _iso(treatment.next_review_due),
        "suspension_reason": treatment.suspension_reason,  # a decision lifts a suspension
    }


def _snapshot(entry: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for name in fields:
        value = getattr(entry, name)
        if isinstance(value, dt.date):
            value = value.isoformat()
        elif hasattr(value, "value"):
            value = value.value
        elif value is not None and name == "follow_up_months":
            value = float(value)
        out[name] = value
    return out


def _regulatory_snapshot(entry: RegulatoryStatus) -> dict[str, Any]:
    return _snapshot(entry, ("regulator", "status", "pathway", "product", "reference"))


def _public_state(treatment: Treatment) -> dict[str, Any]:
    return {
        "slug": treatment.slug,
        "name": treatment.name,
        "status": Status(treatment.status).value,
        "bookable": treatment_bookable(treatment),
    }


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, or the month's last day if it is shorter (31 Jan → 28 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def _commit(session: Session) -> None:
    """Commit the use case's one transaction. (A concurrent write that won first makes a row
    version stale at flush; `api.errors` answers that 412 and the session rolls back.)"""
    session.commit()
