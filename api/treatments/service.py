"""Treatment content writes: treatments, their studies and their regulatory entries.

Every write is one transaction: the change, its audit record and its change-feed events are
added to the session and committed together by `api.treatments.audit.commit`, or not at all.
What a change to the facts sets off (suspension, gate flags) is `api.treatments.decisions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.audit.service import Actor, diff
from api.changes.service import record_change
from api.db import utcnow
from api.errors import Conflict
from api.preconditions import check_if_match
from api.treatments.audit import audit, commit, snapshot
from api.treatments.decisions import after_entry_change, decide, flag_unmet_gate, suspend_on_warning
from api.treatments.markdown import render_explanation
from api.treatments.models import ExternalId, RegulatoryStatus, Study, Treatment
from api.treatments.settings import RuleSettings
from api.treatments.views import (
    entry_etag,
    evidence_for,
    find_regulatory,
    find_study,
    find_treatment,
    treatment_bookable,
    treatment_etag,
)
from api.treatments.vocabulary import POOLED_FIELDS, REVIEW_DESIGNS, RegulatoryStatusCode, Screening, Status

CONTENT_FIELDS = (
    "name", "aliases", "category", "summary", "explanation", "booking_requirements", "safety", "external_ids",
)  # fmt: skip
STUDY_FIELDS = (
    "title", "authors", "journal", "year", "doi", "pmid", "url", "design", "participants",
    "randomised", "controlled", "blinded", "follow_up_months", "sponsorship", "peer_reviewed",
    "outcome_summary", "risk_of_bias", "risk_of_bias_note", "pooled_designs", "pooled_studies", "screening",
    "exclusion_reason", "exclusion_note",
)  # fmt: skip
REGULATORY_FIELDS = (
    "regulator", "status", "pathway", "product", "indication", "reference", "decided_on",
    "source_url", "verified_on",
)  # fmt: skip


class DuplicateSlug(Conflict):
    slug = "duplicate-slug"

    def __init__(self, slug: str):
        super().__init__(f"A treatment with the slug '{slug}' already exists.")


class ExternalIdTaken(Conflict):
    slug = "external-id-taken"


def create_treatment(
    session: Session, data: dict[str, Any], actor: Actor, rules: RuleSettings, *,
    studies: Sequence[dict[str, Any]] = (), regulatory: Sequence[dict[str, Any]] = (),
    decision: dict[str, Any] | None = None, reviewed: bool = True,
) -> Treatment:  # fmt: skip
    """Add a treatment with its first decision, so its status history is never empty.

    Through the API it starts `under_review`; the seed passes its studies, regulatory entries
    and initial decision, which must pass the policy gate like any other, with `reviewed=False`:
    no one reviewed it, so its review is due at once (`decide`).
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
    audit(session, treatment, "treatment", treatment.id, "created", actor,
           diff({}, _content_snapshot(treatment)))  # fmt: skip
    for entry in [*treatment.studies, *treatment.regulatory]:
        kind, fields = _kind(entry)
        audit(session, treatment, kind, entry.id, "created", actor, diff({}, snapshot(entry, fields)))
    record_change(session, "treatment.created", slug, _public_state(treatment))
    first = decision or {"status": Status.UNDER_REVIEW, "reason": "Added to the catalogue for evaluation.",
                         "reason_codes": ["awaiting_evidence"]}  # fmt: skip
    decide(session, treatment, first["status"], first["reason"], first.get("reason_codes", []),
            None, actor, rules, reviewed=reviewed)  # fmt: skip
    commit(session)
    return treatment


def refresh_treatment(
    session: Session, treatment: Treatment, data: dict[str, Any], studies: list[dict[str, Any]],
    regulatory: list[dict[str, Any]], actor: Actor, rules: RuleSettings,
) -> bool:  # fmt: skip
    """Bring content, studies and regulatory entries in line with `data`; never the status,
    which only decisions set. Returns whether anything changed (nothing is written if not)."""
    content = {k: v for k, v in data.items() if k in CONTENT_FIELDS}
    before = _content_snapshot(treatment)
    _apply_content(session, treatment, content)
    changes = diff(before, _content_snapshot(treatment))
    changed, entries_changed = bool(changes), False
    if changes:
        audit(session, treatment, "treatment", treatment.id, "updated", actor, changes)
        record_change(session, "treatment.updated", treatment.slug,
                      {"slug": treatment.slug, "fields": sorted(changes)})  # fmt: skip
    for collection, wanted, model in (
        (treatment.studies, studies, Study), (treatment.regulatory, regulatory, RegulatoryStatus)
    ):  # fmt: skip
        fields = STUDY_FIELDS if model is Study else REGULATORY_FIELDS
        current = [snapshot(e, fields) for e in collection]
        desired = [snapshot(model(**w), fields) for w in wanted]
        if current == desired:
            continue
        changed = entries_changed = True
        for entry in list(collection):
            audit(session, treatment, _kind(entry)[0], entry.id, "deleted", actor,
                   diff(snapshot(entry, fields), {}))  # fmt: skip
            collection.remove(entry)
        collection.extend(model(**w) for w in wanted)
        session.flush()
        for entry in collection:
            audit(session, treatment, _kind(entry)[0], entry.id, "created", actor,
                   diff({}, snapshot(entry, fields)))  # fmt: skip
            _entry_event(session, treatment, entry, _kind(entry)[0], "created", rules)
            suspend_on_warning(session, treatment, entry, _kind(entry)[0], "created", rules)
    if entries_changed:
        flag_unmet_gate(session, treatment, rules)  # once for the whole refresh
    if changed:
        treatment.updated_at = utcnow()
        commit(session)
    return changed


def _kind(entry: Any) -> tuple[str, tuple[str, ...]]:
    return ("study", STUDY_FIELDS) if isinstance(entry, Study) else ("regulatory", REGULATORY_FIELDS)


def update_treatment(
    session: Session, slug: str, data: dict[str, Any], if_match: str | None, actor: Actor,
    rules: RuleSettings,
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
        audit(session, treatment, "treatment", treatment.id, "updated", actor, changes)
        record_change(
            session, "treatment.updated", slug,
            {"slug": slug, "fields": sorted(changes), "version": treatment.version},
        )  # fmt: skip
    commit(session)
    return treatment


def add_study(session: Session, slug: str, data: dict[str, Any], actor: Actor, rules: RuleSettings) -> Study:
    treatment = find_treatment(session, slug, for_update=True)
    study = Study(treatment=treatment, **data)
    return _entry_created(session, treatment, study, "study", STUDY_FIELDS, actor, rules)


def add_regulatory(
    session: Session, slug: str, data: dict[str, Any], actor: Actor, rules: RuleSettings
) -> RegulatoryStatus:
    treatment = find_treatment(session, slug, for_update=True)
    entry = RegulatoryStatus(treatment=treatment, **data)
    return _entry_created(session, treatment, entry, "regulatory", REGULATORY_FIELDS, actor, rules)


def update_study(
    session: Session, slug: str, study_id: int, data: dict[str, Any], if_match: str | None,
    actor: Actor, rules: RuleSettings,
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
    if data.get("screening", study.screening) != Screening.EXCLUDED:  # only an exclusion has a reason
        data = {**data, "exclusion_reason": None, "exclusion_note": None}
    return _entry_updated(session, study, "study", STUDY_FIELDS, data, if_match, actor, rules)


def update_regulatory(
    session: Session, slug: str, entry_id: int, data: dict[str, Any], if_match: str | None,
    actor: Actor, rules: RuleSettings,
) -> RegulatoryStatus:  # fmt: skip
    entry = find_regulatory(session, slug, entry_id, for_update=True)
    return _entry_updated(session, entry, "regulatory", REGULATORY_FIELDS, data, if_match, actor, rules)


def delete_study(
    session: Session, slug: str, study_id: int, if_match: str | None, actor: Actor, rules: RuleSettings
) -> None:
    study = find_study(session, slug, study_id, for_update=True)
    _entry_deleted(session, study, "study", STUDY_FIELDS, if_match, actor, rules)


def delete_regulatory(
    session: Session, slug: str, entry_id: int, if_match: str | None, actor: Actor, rules: RuleSettings
) -> None:
    entry = find_regulatory(session, slug, entry_id, for_update=True)
    _entry_deleted(session, entry, "regulatory", REGULATORY_FIELDS, if_match, actor, rules)


def _entry_created(
    session: Session, treatment: Treatment, entry: Any, kind: str, fields: tuple[str, ...],
    actor: Actor, rules: RuleSettings,
) -> Any:  # fmt: skip
    session.add(entry)
    treatment.updated_at = utcnow()
    session.flush()
    audit(session, treatment, kind, entry.id, "created", actor, diff({}, snapshot(entry, fields)))
    _entry_event(session, treatment, entry, kind, "created", rules)
    after_entry_change(session, treatment, entry, kind, "created", rules)
    commit(session)
    return entry


def _entry_updated(
    session: Session, entry: Any, kind: str, fields: tuple[str, ...], data: dict[str, Any],
    if_match: str | None, actor: Actor, rules: RuleSettings,
) -> Any:  # fmt: skip
    check_if_match(if_match, entry_etag(entry))
    before = snapshot(entry, fields)
    for key, value in data.items():
        setattr(entry, key, value)
    changes = diff(before, snapshot(entry, fields))
    if changes:
        treatment = entry.treatment
        entry.updated_at = treatment.updated_at = utcnow()
        session.flush()
        audit(session, treatment, kind, entry.id, "updated", actor, changes)
        _entry_event(session, treatment, entry, kind, "updated", rules)
        after_entry_change(session, treatment, entry, kind, "updated", rules)
    commit(session)
    return entry


def _entry_deleted(
    session: Session, entry: Any, kind: str, fields: tuple[str, ...], if_match: str | None,
    actor: Actor, rules: RuleSettings,
) -> None:  # fmt: skip
    if if_match is not None:
        check_if_match(if_match, entry_etag(entry))
    treatment = entry.treatment
    audit(session, treatment, kind, entry.id, "deleted", actor, diff(snapshot(entry, fields), {}))
    collection = treatment.studies if kind == "study" else treatment.regulatory
    collection.remove(entry)
    treatment.updated_at = utcnow()
    session.flush()
    _entry_event(session, treatment, entry, kind, "deleted", rules)
    after_entry_change(session, treatment, entry, kind, "deleted", rules)
    commit(session)


def _entry_event(
    session: Session, treatment: Treatment, entry: Any, kind: str, action: str, rules: RuleSettings
) -> None:
    data: dict[str, Any] = {"slug": treatment.slug, "id": entry.id}
    if kind == "study":
        data["evidence_level"] = evidence_for(treatment, rules).level.value
    else:
        data |= {"regulator": entry.regulator, "status": RegulatoryStatusCode(entry.status).value}
    record_change(session, f"{kind}.{action}", treatment.slug, data)


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


def _public_state(treatment: Treatment) -> dict[str, Any]:
    return {
        "slug": treatment.slug,
        "name": treatment.name,
        "status": Status(treatment.status).value,
        "bookable": treatment_bookable(treatment),
    }
