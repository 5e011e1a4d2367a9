"""Decisions on a treatment's status, and what its facts set off without one.

A decision must pass the policy gate (or an admin's override); it records the evidence and
regulatory facts it ruled on and lifts any suspension. A regulatory warning suspends an approved
treatment's bookings, and an approved treatment left short of the gate is flagged; every change
of bookability is announced. Each use case is one transaction (`api.treatments.audit.commit`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.audit.service import SYSTEM_ACTOR, Actor, diff
from api.booking.rules import SUSPENDED, is_bookable
from api.changes.service import record_change
from api.db import utcnow
from api.errors import Conflict, Forbidden, InvalidInput
from api.treatments.audit import audit, commit, snapshot
from api.treatments.models import Decision, RegulatoryStatus, Treatment
from api.treatments.policy import UnmetCriterion, decision_blockers, override_refusal
from api.treatments.schedule import next_review_due
from api.treatments.settings import RuleSettings
from api.treatments.views import (
    evidence_for,
    find_treatment,
    gate_unmet,
    treatment_bookable,
)
from api.treatments.vocabulary import EvidenceLevel, RegulatoryStatusCode, Status


class PolicyGateRefused(Conflict):
    slug, title = "policy-gate-refused", "Approval refused by the policy gate"

    def __init__(self, unmet: list[UnmetCriterion]):
        super().__init__(
            "The treatment does not meet the clinic's criteria for approval.",
            unmet=[{"code": u.code, "message": u.message} for u in unmet],
        )


def record_decision(
    session: Session, slug: str, data: dict[str, Any], actor: Actor, rules: RuleSettings
) -> Decision:
    """Rule on a treatment's status. An approval must pass the policy gate unless an admin
    overrides it with a written justification, which is then public. Every decision lifts a
    suspension of bookings (the clinic has ruled on the facts that caused it)."""
    treatment = find_treatment(session, slug, for_update=True)
    decision = decide(
        session, treatment, data["status"], data["reason"], data.get("reason_codes", []),
        data.get("override_justification"), actor, rules,
    )  # fmt: skip
    commit(session)
    return decision


def check_decision(
    session: Session, slug: str, data: dict[str, Any], actor: Actor, rules: RuleSettings
) -> dict[str, Any]:
    """A dry run of `record_decision`: the same checks, refused the same way (the gate's 409 with
    `unmet`, 403 for an override by a non-admin, ...), and nothing written. What the decision would
    record, when it would be let through."""
    treatment = find_treatment(session, slug)
    status, override = Status(data["status"]), data.get("override_justification")
    evidence = evidence_for(treatment, rules)
    unmet = _admit(treatment, status, evidence.level, override, actor, rules)
    return {
        "dry_run": True,
        "status": status,
        "previous_status": treatment.status,
        "reason": data["reason"],
        "reason_codes": list(data.get("reason_codes", [])),
        "override_justification": override,
        "overrides": [{"code": u.code, "message": u.message} for u in unmet] if override else [],
        "evidence_level": evidence.level,
        "bookable": is_bookable(status),
    }


def decide(
    session: Session, treatment: Treatment, status: Status, reason: str, reason_codes: list[str],
    override: str | None, actor: Actor, rules: RuleSettings, *, reviewed: bool = True,
) -> Decision:  # fmt: skip
    """Record a decision. `reviewed=False` (the illustrative seed) records no review: the
    treatment's `last_reviewed_on` stays as it was and its next review is due today."""
    status = Status(status)
    evidence = evidence_for(treatment, rules)
    _admit(treatment, status, evidence.level, override, actor, rules)

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
    treatment.next_review_due = next_review_due(today, status, rules, reviewed=reviewed)
    treatment.updated_at = utcnow()
    session.flush()
    changes = diff(before, _status_snapshot(treatment))
    if override:
        changes["override_justification"] = {"from": None, "to": override}
    audit(session, treatment, "decision", decision.id, "created", actor, changes)
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
             "new_bookable": treatment_bookable(treatment), "reason": reason,
             "external_ids": treatment.external_id_map()},
        )  # fmt: skip
    if was_bookable is not None and was_bookable != treatment_bookable(treatment):
        _bookability_changed(session, treatment, was_bookable, reason, decision_id=decision.id)
    return decision


def _admit(
    treatment: Treatment, status: Status, level: EvidenceLevel, override: str | None, actor: Actor,
    rules: RuleSettings,
) -> list[UnmetCriterion]:  # fmt: skip
    """Refuse a decision the policy gate (or the override rules) does not let through; what an
    admitted override overrides."""
    unmet = decision_blockers(status, level, treatment.regulatory, rules.gate)
    refusal = override_refusal(status, actor.role, unmet) if override is not None else None
    if override is None and unmet:
        raise PolicyGateRefused(unmet)
    if refusal == "not_admin":
        raise Forbidden("Only an admin may override the policy gate.")
    if refusal == "not_an_approval":  # the body contradicts itself (the schema documents it)
        raise InvalidInput(
            "An override is only accepted for an approval the policy gate refuses.",
            [{"location": "json", "field": "override_justification",
              "message": "Nothing to override: only an approval can be refused by the gate."}],
        )  # fmt: skip
    if refusal == "nothing_refused":  # valid on its own, but the treatment's facts pass the gate
        raise Conflict(
            "An override is only accepted for an approval the policy gate refuses.",
            errors=[{"location": "json", "field": "override_justification",
                     "message": "Nothing to override: the gate does not refuse this decision."}],
        )  # fmt: skip
    return unmet


def _bookability_changed(
    session: Session, treatment: Treatment, was_bookable: bool, reason: str, **cause: Any
) -> None:
    record_change(
        session, "treatment.bookability_changed", treatment.slug,
        {"slug": treatment.slug, "old_bookable": was_bookable, "new_bookable": treatment_bookable(treatment),
         "status": Status(treatment.status).value, "reason": reason,
         "external_ids": treatment.external_id_map()} | cause,
    )  # fmt: skip


def after_entry_change(
    session: Session, treatment: Treatment, entry: Any, kind: str, action: str, rules: RuleSettings
) -> None:
    """What a change to a study or regulatory entry sets off, in the change's own transaction: a warning
    suspends an approved treatment's bookings; an approved treatment left short of the gate is
    announced (`treatment.gate_not_met`). Decisions are never rewritten: only a new one rules."""
    suspend_on_warning(session, treatment, entry, kind, action, rules)
    flag_unmet_gate(session, treatment, rules)


def suspend_on_warning(
    session: Session, treatment: Treatment, entry: Any, kind: str, action: str, rules: RuleSettings
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
        audit(session, treatment, "treatment", treatment.id, "suspended", SYSTEM_ACTOR, {
            "suspended_at": {"from": None, "to": treatment.suspended_at.isoformat()},
            "suspension_reason": {"from": None, "to": treatment.suspension_reason},
            "regulatory_entry_id": {"from": None, "to": entry.id},
        })  # fmt: skip
        _bookability_changed(session, treatment, was_bookable, SUSPENDED, regulatory_entry_id=entry.id)


def flag_unmet_gate(session: Session, treatment: Treatment, rules: RuleSettings) -> None:
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


def _status_snapshot(treatment: Treatment) -> dict[str, Any]:
    return {
        "status": Status(treatment.status).value,
        "status_reason": treatment.status_reason,
        "last_reviewed_on": _iso(treatment.last_reviewed_on),
        "next_review_due": _iso(treatment.next_review_due),
        "suspension_reason": treatment.suspension_reason,  # a decision lifts a suspension
    }


def _regulatory_snapshot(entry: RegulatoryStatus) -> dict[str, Any]:
    return snapshot(entry, ("regulator", "status", "pathway", "product", "reference"))


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None
