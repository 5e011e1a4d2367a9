"""Literature import schemas: the `format` argument, CSL-JSON items and the import result"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from api.fields import SLUG_PATTERN, VISIBLE, Text
from api.literature.screening import MAX_LIMIT
from api.pagination import MAX_ID
from api.smorest import ResponseSchema
from api.treatments.schemas import StudySchema
from api.treatments.vocabulary import ExclusionReason, Screening

FORMATS = ("ris", "nbib", "csl-json")


class ImportQueryArgsSchema(ma.Schema):
    format = fields.String(
        validate=validate.OneOf(FORMATS),
        metadata={
            "description": (
                "The file's format. When given it wins; otherwise the Content-Type decides "
                "(`application/x-research-info-systems`: ris, `application/x-nbib`: nbib, "
                "`application/vnd.citationstyles.csl+json` or `application/json`: csl-json)."
            )
        },
    )


class ImportUploadSchema(ma.Schema):
    """The `multipart/form-data` form of an import: one file, as a browser's file input sends it."""

    file = fields.Raw(
        required=True,
        metadata={
            "type": "string",
            "format": "binary",
            "description": (
                "The exported file. Its name gives the format: `.ris` RIS, `.nbib` or `.txt` PubMed "
                "MEDLINE, `.json` CSL-JSON; else its part's Content-Type, as for a raw body."
            ),
        },
    )
    format = fields.String(
        validate=validate.OneOf(FORMATS),
        metadata={"description": "The file's format, when its name does not say (wins over the name)."},
    )


class _StringOrNumber(fields.Field):
    """A JSON string or integer, loaded as a string (CSL-JSON `id` and `PMID` come as either)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ma.ValidationError("Not a string or an integer.")
        return str(value)


class _DatePart(fields.Field):
    """A CSL date part: an integer, or a string of digits."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ma.ValidationError("A date part is an integer.")
        if isinstance(value, str):
            if not re.fullmatch(r"-?[0-9]{1,9}", value.strip()):
                raise ma.ValidationError("A date part is an integer.")
            value = int(value.strip())
        return value


class CslNameSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    family = fields.String()
    given = fields.String()
    literal = fields.String()
    particle = fields.String(data_key="non-dropping-particle")


class CslDateSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    date_parts = fields.List(
        fields.List(
            _DatePart(metadata={"type": ["integer", "string"]}), validate=validate.Length(min=1, max=3)
        ),
        data_key="date-parts",
        metadata={"example": [[2023, 5, 1]]},
    )
    raw = fields.String()
    literal = fields.String()


class CslItemSchema(ma.Schema):
    """The CSL-JSON fields the import reads; the others are ignored. `id` and `type` are
    required by the CSL-JSON schema; `title` by us, since a study needs one."""

    class Meta:
        unknown = ma.EXCLUDE

    id = _StringOrNumber(required=True, metadata={"type": ["string", "integer"]})
    type = fields.String(required=True)
    title = fields.String(required=True)
    author = fields.List(fields.Nested(CslNameSchema))
    container_title = fields.String(data_key="container-title")
    issued = fields.Nested(CslDateSchema)
    doi = fields.String(data_key="DOI")
    pmid = _StringOrNumber(data_key="PMID", metadata={"type": ["string", "integer"]})
    url = fields.String(data_key="URL")


class ImportDuplicateSchema(ResponseSchema):
    record = fields.Integer(metadata={"description": "The record's position in the file, from 1"})
    title = fields.String()
    doi = fields.String(allow_none=True)
    pmid = fields.String(allow_none=True)
    matched_on = fields.String(metadata={"enum": ["doi", "pmid"]})
    existing_study_id = fields.Integer(metadata={"description": "The study it duplicates"})
    duplicate_of_record = fields.Integer(
        allow_none=True, metadata={"description": "Set when it repeats an earlier record of the same file"}
    )


class ImportBatchSchema(ResponseSchema):
    """One imported file: kept for the PRISMA counts."""

    id = fields.Integer()
    created_at = fields.AwareDateTime()
    created_by = fields.String(metadata={"description": "The key's name or the person's email"})
    filename = fields.String(allow_none=True, metadata={"description": "Null for a raw (not uploaded) body"})
    format = fields.String(metadata={"enum": list(FORMATS)})
    records = fields.Integer(metadata={"description": "Records read from the file"})
    imported = fields.Integer(metadata={"description": "Studies added, in screening"})
    duplicates = fields.Integer(metadata={"description": "Records reported as duplicates, not added"})


class ImportResultSchema(ResponseSchema):
    imported = fields.List(fields.Nested(StudySchema), metadata={"description": "New studies, in screening"})
    duplicates = fields.List(
        fields.Nested(ImportDuplicateSchema), metadata={"description": "Reported, not added"}
    )
    count = fields.Integer(metadata={"description": "How many studies were imported"})
    records = fields.Integer(metadata={"description": "How many records the file held"})
    batch = fields.Nested(ImportBatchSchema, metadata={"description": "The import as kept"})


SCREENING_STATES = [s.value for s in Screening]
EXCLUSION_REASONS = [r.value for r in ExclusionReason]


class ScreeningQueryArgsSchema(ma.Schema):
    treatment = fields.String(
        validate=validate.Regexp(SLUG_PATTERN), metadata={"description": "One treatment's slug"}
    )
    state = fields.String(
        load_default=Screening.SCREENING.value,
        validate=validate.OneOf([*SCREENING_STATES, "all"]),
        metadata={"description": "Screening state (default `screening`: waiting), or `all`"},
    )
    after = fields.Integer(
        validate=validate.Range(min=0, max=MAX_ID),
        metadata={"description": "Keyset: the `next_after` of the previous page"},
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_LIMIT))


class ScreeningItemSchema(ResponseSchema):
    study = fields.Nested(StudySchema)
    treatment = fields.String(metadata={"description": "The treatment's slug"})
    treatment_name = fields.String()
    screening = fields.String(metadata={"enum": SCREENING_STATES})
    exclusion_reason = fields.String(allow_none=True, metadata={"enum": [*EXCLUSION_REASONS, None]})
    exclusion_note = fields.String(allow_none=True)
    import_batch_id = fields.Integer(allow_none=True, metadata={"description": "Null when added by hand"})


class ScreeningPageSchema(ResponseSchema):
    items = fields.List(fields.Nested(ScreeningItemSchema))
    next_after = fields.Integer(
        allow_none=True, metadata={"description": "Pass as `after` for the next page; null on the last"}
    )


class ExclusionSchema(ma.Schema):
    # The OpenAPI form of "`other` needs a note" (api.literature.screening.exclude_study): refused is
    # a reason `other` without a note that has some visible text.
    OPENAPI_EXTRA: ClassVar[dict[str, Any]] = {
        "not": {
            "required": ["reason"],
            "properties": {"reason": {"const": ExclusionReason.OTHER.value}},
            "not": {"required": ["note"], "properties": {"note": {"type": "string", "pattern": VISIBLE}}},
        }
    }

    reason = fields.String(required=True, validate=validate.OneOf(EXCLUSION_REASONS))
    note = Text(500, allow_none=True, load_default=None, metadata={"description": "Required for `other`"})


class ExcludedCountsSchema(ResponseSchema):
    wrong_population = fields.Integer()
    wrong_intervention = fields.Integer()
    wrong_comparator = fields.Integer()
    wrong_outcome = fields.Integer()
    wrong_design = fields.Integer()
    not_human = fields.Integer()
    duplicate = fields.Integer()
    other = fields.Integer()
    unstated = fields.Integer()


class PrismaSchema(ResponseSchema):
    """A treatment's literature as a PRISMA 2020 flow diagram counts it."""

    treatment = fields.String()
    batches = fields.List(
        fields.Nested(ImportBatchSchema), metadata={"description": "Identification, by batch"}
    )
    identified = fields.Integer(metadata={"description": "Records read from every import"})
    duplicates_removed = fields.Integer()
    screened = fields.Integer(metadata={"description": "Imported studies (still there)"})
    awaiting = fields.Integer(metadata={"description": "Imported studies not screened yet"})
    excluded = fields.Integer()
    excluded_by_reason = fields.Nested(
        ExcludedCountsSchema, metadata={"description": "`unstated`: excluded without a reason (before 0009)"}
    )
    included = fields.Integer(metadata={"description": "Imported studies accepted"})
    other_included = fields.Integer(metadata={"description": "Accepted studies added by hand"})
    included_total = fields.Integer()
