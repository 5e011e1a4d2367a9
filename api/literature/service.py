"""Importing a reference file as studies in screening: one transaction, duplicates reported.

Imported studies keep the identifiers the file states and come in with `screening` =
`screening`, so the evidence summary ignores them until an editor sets a design and accepts
them (`PATCH /v1/treatments/{slug}/studies/{id}`). A record whose DOI (case-insensitively) or
PMID matches a study the treatment already has, or an earlier record of the same file, is
reported as a duplicate and not added. Every import of a valid file is kept as an import batch
(who, when, file, format, records, imported, duplicates) and its studies link to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.audit.service import Actor, diff, record_audit
from api.changes.service import record_change
from api.db import utcnow
from api.errors import DomainError, InvalidInput
from api.literature.models import ImportBatch
from api.literature.parsers import ReferenceFileInvalid, format_for, format_for_filename, read_references
from api.literature.screening import start_batch
from api.treatments.models import Study, Treatment
from api.treatments.service import STUDY_FIELDS
from api.treatments.settings import RuleSettings
from api.treatments.views import TreatmentNotFound, evidence_for
from api.treatments.vocabulary import Screening


class UnsupportedReferenceFormat(DomainError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"

    def __init__(self, media_type: str | None, filename: str | None):
        if filename is not None:
            super().__init__(
                f"Cannot tell the format of the uploaded file '{filename}' from its name or type. "
                "Name it .ris, .nbib, .txt (MEDLINE) or .json (CSL-JSON), or send the form field "
                "`format` (ris, nbib or csl-json)."
            )
            return
        super().__init__(
            f"Cannot tell the file's format from the Content-Type '{media_type or ''}'. Send "
            "?format=ris|nbib|csl-json, or a Content-Type of application/x-research-info-systems, "
            "application/x-nbib or application/vnd.citationstyles.csl+json."
        )


@dataclass
class _Duplicate:
    record: int
    title: str
    doi: str | None
    pmid: str | None
    matched_on: str
    existing: Study
    duplicate_of_record: int | None = None


def import_references(
    session: Session, slug: str, body: bytes, fmt: str | None, media_type: str | None,
    actor: Actor, rules: RuleSettings, max_records: int, filename: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Add each new reference in the file to the treatment as a study in screening.

    The format is `fmt` when given; otherwise an uploaded file's name (`filename`, by its
    extension), then the media type. Returns `imported` (the new studies), `duplicates`, `count`
    and `records`. The treatment row is locked first, so two imports of the same file cannot
    both add its references.
    """
    treatment = _locked_treatment(session, slug)
    fmt = fmt or format_for_filename(filename) or format_for(media_type)
    if fmt is None:
        raise UnsupportedReferenceFormat(media_type, filename)
    try:
        references = read_references(body, fmt, max_records)
    except ReferenceFileInvalid as invalid:
        raise InvalidInput(invalid.detail, [p.as_error() for p in invalid.problems]) from None

    batch = start_batch(session, treatment, actor, filename, fmt, len(references))
    known: dict[tuple[str, str], tuple[Study, int | None]] = {}
    for study in treatment.studies:
        for key in _keys(study.doi, study.pmid):
            known.setdefault(key, (study, None))
    imported: list[Study] = []
    duplicates: list[_Duplicate] = []
    for ref in references:
        data = ref.study
        keys = _keys(data["doi"], data["pmid"])
        match = next((key for key in keys if key in known), None)
        if match is not None:
            existing, of_record = known[match]
            duplicates.append(_Duplicate(ref.record, data["title"], data["doi"], data["pmid"], match[0],
                                         existing, of_record))  # fmt: skip
            continue
        study = Study(treatment=treatment, screening=Screening.SCREENING, import_batch_id=batch.id, **data)
        session.add(study)
        imported.append(study)
        for key in keys:
            known[key] = (study, ref.record)

    batch.imported, batch.duplicates = len(imported), len(duplicates)
    if not imported:
        result = _result(imported, duplicates, len(references), batch)
        session.commit()  # only the batch: its records count as identified
        return result
    treatment.updated_at = utcnow()
    session.flush()
    level = evidence_for(treatment, rules).level.value  # unchanged: screening studies do not count
    for study in imported:
        record_audit(
            session, treatment_id=treatment.id, entity="study", entity_id=study.id, action="created",
            actor=actor, changes=diff({}, _snapshot(study)),
        )  # fmt: skip
        record_change(session, "study.created", slug, {"slug": slug, "id": study.id, "evidence_level": level})
    session.commit()
    return _result(imported, duplicates, len(references), batch)


def _locked_treatment(session: Session, slug: str) -> Treatment:
    # FOR UPDATE on PostgreSQL (SQLite has one writer at a time anyway).
    treatment = session.scalars(select(Treatment).where(Treatment.slug == slug).with_for_update()).first()
    if treatment is None:
        raise TreatmentNotFound(slug)
    return treatment


def _keys(doi: str | None, pmid: str | None) -> list[tuple[str, str]]:
    keys = []
    if doi:
        keys.append(("doi", doi.lower()))
    if pmid:
        keys.append(("pmid", pmid))
    return keys


def _result(
    imported: list[Study], duplicates: list[_Duplicate], records: int, batch: ImportBatch
) -> dict[str, Any]:
    return {
        "batch": batch,
        "imported": imported,
        "duplicates": [
            {
                "record": d.record,
                "title": d.title,
                "doi": d.doi,
                "pmid": d.pmid,
                "matched_on": d.matched_on,
                "existing_study_id": d.existing.id,
                "duplicate_of_record": d.duplicate_of_record,
            }
            for d in duplicates
        ],  # fmt: skip
        "count": len(imported),
        "records": records,
    }


def _snapshot(study: Study) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in STUDY_FIELDS:
        value = getattr(study, name)
        out[name] = getattr(value, "value", value)
    return out
