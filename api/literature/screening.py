"""Screening: the records waiting across treatments, exclusion with a coded reason, and the
PRISMA-style counts of a treatment's literature.

Plain functions: the API (`api.literature.routes`) and the console call the same ones. Including
a record is `api.treatments.service.update_study` (complete its facts, then `accepted`), which
the evidence summary then counts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from api.audit.service import Actor
from api.errors import InvalidInput
from api.literature.models import ImportBatch
from api.treatments.models import Study, Treatment
from api.treatments.service import update_study
from api.treatments.settings import RuleSettings
from api.treatments.views import find_treatment
from api.treatments.vocabulary import ExclusionReason, Screening

MAX_LIMIT = 200


def screening_queue(
    session: Session, *, treatment: str | None = None, state: Screening | None = Screening.SCREENING,
    after: int | None = None, limit: int = 50,
) -> dict[str, Any]:  # fmt: skip
    """Studies in `state` (default: waiting), across treatments or for one, oldest first.

    Keyset by id: `next_after` is the last id of a full page (pass it as `after`), else None.
    """
    query = select(Study).options(joinedload(Study.treatment)).order_by(Study.id).limit(limit)
    if treatment is not None:
        query = query.where(Study.treatment_id == find_treatment(session, treatment).id)
    if state is not None:
        query = query.where(Study.screening == state)
    if after is not None:
        query = query.where(Study.id > after)
    studies = list(session.scalars(query))
    return {
        "items": [screening_item(s) for s in studies],
        "next_after": studies[-1].id if len(studies) == limit else None,
    }


def screening_item(study: Study) -> dict[str, Any]:
    return {
        "study": study,
        "treatment": study.treatment.slug,
        "treatment_name": study.treatment.name,
        "screening": study.screening,
        "exclusion_reason": study.exclusion_reason,
        "exclusion_note": study.exclusion_note,
        "import_batch_id": study.import_batch_id,
    }


def exclude_study(
    session: Session, slug: str, study_id: int, reason: ExclusionReason, note: str | None,
    if_match: str | None, actor: Actor, rules: RuleSettings,
) -> Study:  # fmt: skip
    """Exclude a study with a coded reason; `other` needs a note. Audited like any study change."""
    note = (note or "").strip() or None
    if reason == ExclusionReason.OTHER and note is None:
        raise InvalidInput(
            "Say why in a note when the reason is `other`.",
            [{"location": "json", "field": "note", "message": "A note is required for the reason `other`."}],
        )
    data = {"screening": Screening.EXCLUDED, "exclusion_reason": reason, "exclusion_note": note}
    return update_study(session, slug, study_id, data, if_match, actor, rules)


def prisma_counts(session: Session, slug: str) -> dict[str, Any]:
    """A treatment's literature as a PRISMA 2020 flow: records identified (per import batch),
    duplicates removed, records screened, excluded (by reason), awaiting screening and included.

    Screened, excluded and included count the studies the imports brought in (those still there);
    `other_included` counts accepted studies added by hand, `included_total` every accepted one.
    """
    treatment: Treatment = find_treatment(session, slug)
    batches = list(
        session.scalars(
            select(ImportBatch).where(ImportBatch.treatment_id == treatment.id).order_by(ImportBatch.id)
        )
    )
    rows = session.execute(
        select(Study.screening, Study.exclusion_reason, Study.import_batch_id.is_not(None), func.count())
        .where(Study.treatment_id == treatment.id)
        .group_by(Study.screening, Study.exclusion_reason, Study.import_batch_id.is_not(None))
    ).all()
    by_reason = dict.fromkeys((r.value for r in ExclusionReason), 0)
    unreasoned = screened = awaiting = included = other_included = 0
    for screening, reason, imported, count in rows:
        screening = Screening(screening)
        if not imported:
            if screening == Screening.ACCEPTED:
                other_included += count
            continue
        screened += count
        if screening == Screening.SCREENING:
            awaiting += count
        elif screening == Screening.ACCEPTED:
            included += count
        elif reason is None:
            unreasoned += count
        else:
            by_reason[ExclusionReason(reason).value] += count
    excluded = sum(by_reason.values()) + unreasoned
    return {
        "treatment": treatment.slug,
        "batches": batches,
        "identified": sum(b.records for b in batches),
        "duplicates_removed": sum(b.duplicates for b in batches),
        "screened": screened,
        "awaiting": awaiting,
        "excluded": excluded,
        "excluded_by_reason": by_reason | {"unstated": unreasoned},
        "included": included,
        "other_included": other_included,
        "included_total": included + other_included,
    }


def start_batch(
    session: Session, treatment: Treatment, actor: Actor, filename: str | None, fmt: str, records: int
) -> ImportBatch:
    """The batch an import's studies link to (its counts are set once the records are read)."""
    batch = ImportBatch(
        treatment_id=treatment.id, created_by=actor.name, filename=filename or None, format=fmt,
        records=records, imported=0, duplicates=0,
    )  # fmt: skip
    session.add(batch)
    session.flush()
    return batch
