"""Treatment schemas: the public representations, the filters and the write bodies"""

from __future__ import annotations

from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from api.fields import (
    HTTP_URL_PATTERN,
    VISIBLE,
    Cursor,
    Pattern,
    QueryBoolean,
    Slug,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    Text,
)
from api.pagination import MAX_LIST_OFFSET
from api.smorest import ResponseSchema, UnmetCriterionSchema
from api.treatments.policy import OVERRIDE_MIN_LENGTH
from api.treatments.vocabulary import (
    POOLED_FIELDS,
    REVIEW_DESIGNS,
    Concern,
    EvidenceLevel,
    PooledDesigns,
    RegulatoryStatusCode,
    RiskOfBias,
    Screening,
    Sponsorship,
    Status,
    StudyDesign,
)

CODE = Pattern(r"^[a-z][a-z0-9_]*$", error="Lowercase letters, digits and underscores only.")
REGULATOR = Pattern(r"^[A-Z][A-Z0-9_]*$", error="Upper-case regulator code, e.g. FDA.")
# A pattern, so the OpenAPI document states exactly what is accepted (a strict subset of what
# marshmallow's URL validator takes: http(s), a DNS name with a top-level domain, no whitespace).
URL = [Pattern(HTTP_URL_PATTERN, error="Not a valid URL.")]
DOI = Pattern(rf"^10\.{VISIBLE}+/{VISIBLE}+$")


class _ValueEnum(fields.Enum):
    """Loads a member by value; dumps members and plain strings alike."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return getattr(value, "value", value)


def Enum(enum: type, **kwargs: Any) -> fields.Enum:
    return _ValueEnum(enum, by_value=True, **kwargs)


class BookingRequirementSchema(ResponseSchema):
    """Sent, and written (both fields required either way)."""

    code = Text(60, required=True, validate=[CODE], metadata={"example": "prescriber_consultation"})
    text = Text(500, required=True, metadata={"example": "A prescriber consultation comes first."})


class AdverseEventInputSchema(ma.Schema):
    event = Text(120, required=True, metadata={"example": "granuloma"})
    description = Text(1000, load_default="")
    source_url = Text(2000, allow_none=True, load_default=None, validate=URL)


class AdverseEventSchema(ResponseSchema, AdverseEventInputSchema):
    """A reported adverse event as sent: every field present."""


class EvidenceSummarySchema(ResponseSchema):
    """Derived from the studies by the evidence rules; never written by hand."""

    level = Enum(EvidenceLevel, metadata={"example": "very_low"})
    studies = fields.Integer()
    human_studies = fields.Integer()
    rcts = fields.Integer()
    largest_sample = fields.Integer(allow_none=True)
    longest_follow_up_months = fields.Float(allow_none=True)
    independent_peer_reviewed = fields.Integer()
    concerns = fields.List(Enum(Concern), metadata={"example": ["small_samples", "not_randomised"]})
    starting_level = Enum(
        EvidenceLevel,
        metadata={
            "description": "Where the rating started, before any step down (absent from decisions "
            "recorded before it was kept)"
        },
    )
    judged_designs = fields.List(
        Enum(StudyDesign),
        metadata={
            "description": "The designs of the studies that set the starting level: every step down "
            "judged those studies alone (absent from decisions recorded before it was kept)",
            "example": ["rct"],
        },
    )


class EvidenceSnapshotSchema(EvidenceSummarySchema):
    """The evidence summary as a decision recorded it; older decisions lack the newer fields."""

    OPTIONAL = frozenset({"starting_level", "judged_designs"})


def _refuse_accepted_without_design(required: list[str]) -> dict[str, Any]:
    """The OpenAPI form of `_accepted_needs_design`: a null design with screening `accepted`."""
    return {
        "not": {
            "required": required,
            "properties": {"design": {"type": "null"}, "screening": {"const": Screening.ACCEPTED.value}},
        }
    }


def _refuse_pooled_for_non_reviews() -> list[dict[str, Any]]:
    """The OpenAPI form of `_pooled_only_for_reviews`: a design other than a review (null
    included) beside a pooled field that is not null."""
    return [
        {
            "not": {
                "required": ["design", name],
                "properties": {
                    "design": {"not": {"enum": sorted(d.value for d in REVIEW_DESIGNS)}},
                    name: {"not": {"type": "null"}},
                },
            }
        }
        for name in POOLED_FIELDS
    ]


class StudyCreateSchema(ma.Schema):
    """A study as written: `StudySchema` is the one sent back."""

    # Screening defaults to accepted, so a null design needs another screening state; only a
    # review says what it pools.
    OPENAPI_EXTRA: ClassVar[dict[str, Any]] = {
        "allOf": [_refuse_accepted_without_design(["design"]), *_refuse_pooled_for_non_reviews()]
    }

    title = Text(500, required=True, min_length=1)
    authors = Text(1000, allow_none=True, load_default=None)
    journal = Text(300, allow_none=True, load_default=None)
    year = StrictInteger(min=1800, max=2200, allow_none=True, load_default=None)
    doi = Text(200, allow_none=True, load_default=None, validate=[DOI])
    pmid = Text(20, allow_none=True, load_default=None, validate=[Pattern(r"^[0-9]{1,12}$")])
    url = Text(2000, allow_none=True, load_default=None, validate=URL)
    design = Enum(StudyDesign, required=True, allow_none=True)
    participants = StrictInteger(max=100_000_000, allow_none=True, load_default=None)
    randomised = StrictBoolean(load_default=False)
    controlled = StrictBoolean(load_default=False)
    blinded = StrictBoolean(load_default=False)
    follow_up_months = StrictNumber(max=1200, allow_none=True, load_default=None)
    sponsorship = Enum(Sponsorship, load_default=Sponsorship.UNKNOWN)
    peer_reviewed = StrictBoolean(load_default=False)
    outcome_summary = Text(2000, multiline=True, load_default="")
    risk_of_bias = Enum(
        RiskOfBias,
        load_default=RiskOfBias.NOT_ASSESSED,
        metadata={"description": "The overall judgement of RoB 2 (randomised trials) or ROBINS-I (others)."},
    )
    risk_of_bias_note = Text(
        500,
        allow_none=True,
        load_default=None,
        metadata={"example": "Unblinded outcome assessment; 30% lost to follow-up."},
    )
    pooled_designs = Enum(
        PooledDesigns,
        allow_none=True,
        load_default=None,
        metadata={
            "description": "Reviews only (`systematic_review`, `meta_analysis`): what the review pools, "
            "which sets where it starts; null on a review means `unknown`, as does leaving it out of a "
            "new one. Null on every other design, where a value is refused (a design that stops being "
            "a review drops it)."
        },
    )
    pooled_studies = StrictInteger(
        min=1,
        allow_none=True,
        load_default=None,
        metadata={"description": "Reviews only, like `pooled_designs`: how many studies the review pools."},
    )
    screening = Enum(
        Screening,
        load_default=Screening.ACCEPTED,
        metadata={"description": "Only `accepted` studies count towards the evidence summary."},
    )

    @ma.validates_schema
    def _accepted_needs_design(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "design" in data and data["design"] is None and data.get("screening") == Screening.ACCEPTED:
            raise ma.ValidationError("An accepted study needs a design.", "design")

    @ma.validates_schema
    def _pooled_only_for_reviews(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "design" not in data or data["design"] in REVIEW_DESIGNS:
            return
        errors = {
            name: ["Only a systematic review or meta-analysis pools studies."]
            for name in POOLED_FIELDS
            if data.get(name) is not None
        }
        if errors:
            raise ma.ValidationError(errors)


class StudySchema(ResponseSchema, StudyCreateSchema):
    """A study as sent: every field present (null where it has no value)."""

    id = fields.Integer(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)


class RegulatoryStatusCreateSchema(ma.Schema):
    """A regulatory entry as written: `RegulatoryStatusSchema` is the one sent back."""

    regulator = Text(20, required=True, validate=[REGULATOR], metadata={"example": "FDA"})
    status = Enum(RegulatoryStatusCode, required=True)
    pathway = Text(100, allow_none=True, load_default=None, metadata={"example": "BLA"})
    product = Text(300, allow_none=True, load_default=None)
    indication = Text(1000, allow_none=True, load_default=None)
    reference = Text(300, allow_none=True, load_default=None, metadata={"example": "BLA 103000"})
    decided_on = fields.Date(allow_none=True, load_default=None)
    source_url = Text(2000, required=True, validate=URL)
    verified_on = fields.Date(allow_none=True, load_default=None)


class RegulatoryStatusSchema(ResponseSchema, RegulatoryStatusCreateSchema):
    """A regulatory entry as sent: every field present (null where it has no value)."""

    id = fields.Integer(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)


class DecisionSchema(ResponseSchema):
    id = fields.Integer()
    status = Enum(Status)
    previous_status = Enum(Status, allow_none=True)
    reason = fields.String()
    reason_codes = fields.List(fields.String())
    decided_by = fields.String()
    decided_at = fields.AwareDateTime()
    evidence_level = Enum(EvidenceLevel)
    evidence_snapshot = fields.Nested(EvidenceSnapshotSchema)
    regulatory_snapshot = fields.List(fields.Dict())
    override_justification = fields.String(
        allow_none=True,
        metadata={"description": "Set when an admin approved despite the policy gate; public."},
    )


class TreatmentSummarySchema(ResponseSchema):
    """A treatment as listed: everything but the long texts and the regulatory detail."""

    slug = fields.String(metadata={"example": "exosomes"})
    name = fields.String(metadata={"example": "Exosome therapy"})
    aliases = fields.List(fields.String())
    category = fields.String(metadata={"example": "regenerative"})
    summary = fields.String()
    status = Enum(Status)
    status_reason = fields.String()
    bookable = fields.Boolean(metadata={"description": "Derived: true only when approved."})
    evidence = fields.Nested(EvidenceSummarySchema)
    updated_at = fields.AwareDateTime()


class TreatmentSchema(TreatmentSummarySchema):
    explanation = fields.String(metadata={"description": "Markdown"})
    explanation_html = fields.String(metadata={"description": "The explanation, sanitised HTML"})
    booking_requirements = fields.List(fields.Nested(BookingRequirementSchema))
    external_ids = fields.Dict(
        keys=fields.String(), values=fields.String(), metadata={"example": {"cliniko": "1234"}}
    )
    regulatory = fields.List(fields.Nested(RegulatoryStatusSchema))
    safety = fields.List(fields.Nested(AdverseEventSchema))
    latest_decision = fields.Nested(DecisionSchema, allow_none=True)
    last_reviewed_on = fields.Date(allow_none=True)
    next_review_due = fields.Date(allow_none=True)
    version = fields.Integer()
    created_at = fields.AwareDateTime()


class TreatmentPageSchema(ResponseSchema):
    items = fields.List(fields.Nested(TreatmentSummarySchema))
    page = fields.Integer(
        allow_none=True, metadata={"description": "The page number; null when a cursor was given"}
    )
    per_page = fields.Integer()
    total = fields.Integer(metadata={"description": "Treatments matching the filters, on every page"})
    next_cursor = fields.String(
        allow_none=True,
        metadata={
            "description": "Send as `cursor` (with the same filters) for the next page; null on the last"
        },
    )


class TreatmentQueryArgsSchema(ma.Schema):
    status = Enum(Status)
    category = Text(64, validate=[CODE])
    bookable = QueryBoolean()
    q = Text(200, min_length=1, metadata={"description": "Case-insensitive match on name and aliases"})
    updated_since = fields.AwareDateTime(
        default_timezone=None, metadata={"description": "ISO 8601 date-time with an offset"}
    )
    page = fields.Integer(
        validate=validate.Range(min=1, max=MAX_LIST_OFFSET + 1),
        metadata={
            "description": f"From 1; `(page - 1) * per_page` at most {MAX_LIST_OFFSET:,} (deeper: `cursor`)"
        },
    )
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    cursor = Cursor(metadata={"description": "A `next_cursor` from the previous page (not with `page`)"})

    @ma.validates_schema
    def _one_way_to_page(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "cursor" in data and "page" in data:
            raise ma.ValidationError("Give `page` or `cursor`, not both.", "cursor")
        if (data.get("page", 1) - 1) * data["per_page"] > MAX_LIST_OFFSET:
            raise ma.ValidationError(
                f"Pages reach {MAX_LIST_OFFSET:,} items deep; beyond that, follow `next_cursor`.", "page"
            )


READ_ONLY_FIELDS = (
    "status", "status_reason", "bookable", "evidence", "version", "created_at", "updated_at",
    "explanation_html", "latest_decision", "last_reviewed_on", "next_review_due", "regulatory",
)  # fmt: skip


class RejectReadOnlySchema(ma.Schema):
    @ma.validates_schema(pass_original=True)
    def _reject_read_only(self, _data: dict, original: object, **_kwargs: object) -> None:
        if not isinstance(original, dict):
            return
        errors = {
            name: ["Read-only: set by decisions or derived by the API, never written directly."]
            for name in READ_ONLY_FIELDS
            if name in original
        }
        if errors:
            raise ma.ValidationError(errors)

    @ma.pre_load
    def _drop_read_only(self, data: object, **_kwargs: object) -> object:
        # Removed before field loading so they are reported as read-only, not as unknown.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in READ_ONLY_FIELDS}
        return data


class TreatmentPatchSchema(RejectReadOnlySchema):
    """Content fields of a treatment; every one optional."""

    name = Text(200, min_length=1, metadata={"example": "Botulinum toxin type A"})
    aliases = fields.List(Text(200, min_length=1), validate=validate.Length(max=50))
    category = Text(64, validate=[CODE], metadata={"example": "neuromodulator"})
    summary = Text(1000, min_length=1)
    explanation = Text(20_000, multiline=True, metadata={"description": "Markdown"})
    booking_requirements = fields.List(
        fields.Nested(BookingRequirementSchema), validate=validate.Length(max=20)
    )
    safety = fields.List(fields.Nested(AdverseEventInputSchema), validate=validate.Length(max=50))
    external_ids = fields.Dict(
        keys=Text(40, validate=[CODE]),
        values=Text(120, min_length=1),
        validate=validate.Length(max=20),
    )


class TreatmentCreateSchema(TreatmentPatchSchema):
    slug = Slug(required=True)
    name = Text(200, min_length=1, required=True, metadata={"example": "Botulinum toxin type A"})
    category = Text(64, validate=[CODE], required=True, metadata={"example": "neuromodulator"})
    summary = Text(1000, min_length=1, required=True)


class DecisionCreateSchema(ma.Schema):
    # Only an approval can be overridden: `api.treatments.policy.override_refusal` (422 otherwise).
    OPENAPI_EXTRA: ClassVar[dict[str, Any]] = {
        "not": {
            "required": ["override_justification"],
            "properties": {"status": {"not": {"const": Status.APPROVED.value}}},
        }
    }

    status = Enum(Status, required=True)
    reason = Text(500, min_length=1, required=True, metadata={"description": "Public reason"})
    reason_codes = fields.List(
        Text(60, validate=[CODE]),
        load_default=list,
        validate=validate.Length(max=20),
        metadata={"example": ["no_regulatory_approval", "evidence_very_low"]},
    )
    override_justification = Text(
        4000,
        multiline=True,
        min_length=OVERRIDE_MIN_LENGTH,
        metadata={"description": "Admins only: approve despite the policy gate; shown publicly."},
    )


class DecisionQueryArgsSchema(ma.Schema):
    dry_run = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Check the decision without recording it: the same refusals (the policy gate's "
            "409 with `unmet`, 403, 422), or 200 with what would be recorded. Nothing is written."
        },
    )


class DecisionPreviewSchema(ResponseSchema):
    """What a decision would record (`?dry_run=true`); nothing was written."""

    dry_run = fields.Boolean(metadata={"example": True})
    status = Enum(Status)
    previous_status = Enum(Status, metadata={"description": "The treatment's status now"})
    reason = fields.String()
    reason_codes = fields.List(fields.String())
    override_justification = fields.String(allow_none=True)
    overrides = fields.List(
        fields.Nested(UnmetCriterionSchema),
        metadata={"description": "The unmet criteria an admin's override would set aside"},
    )
    evidence_level = Enum(EvidenceLevel)
    bookable = fields.Boolean(metadata={"description": "Whether the treatment would be bookable after it"})


class AuditRecordSchema(ResponseSchema):
    id = fields.Integer()
    entity = fields.String(metadata={"example": "study"})
    entity_id = fields.Integer()
    action = fields.String(metadata={"example": "updated"})
    actor_name = fields.String()
    actor_role = fields.String()
    occurred_at = fields.AwareDateTime()
    changes = fields.Dict(metadata={"example": {"participants": {"from": 12, "to": 120}}})


class StudyPatchSchema(StudyCreateSchema):
    """Any study fields; the others keep their values."""

    # A body contradicting itself is 422; one contradicting the stored study is 409 (service).
    OPENAPI_EXTRA: ClassVar[dict[str, Any]] = {
        "allOf": [_refuse_accepted_without_design(["design", "screening"]), *_refuse_pooled_for_non_reviews()]
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(partial=True, **kwargs)


class RegulatoryStatusPatchSchema(RegulatoryStatusCreateSchema):
    """Any regulatory fields; the others keep their values."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(partial=True, **kwargs)


class JsonLdSchema(ResponseSchema):
    """A schema.org MedicalWebPage (JSON-LD); its mainEntity is a MedicalTherapy or MedicalProcedure."""

    class Meta:
        unknown = ma.INCLUDE

    context = fields.String(data_key="@context", metadata={"example": "https://schema.org"})
    type = fields.String(data_key="@type", metadata={"example": "MedicalWebPage"})
    url = fields.String(
        metadata={
            "description": "The treatment's public page, built from the configured public base URL "
            "(`TPA_PUBLIC_BASE_URL`), never from the request",
            "example": "https://www.clinic.example/treatments/exosomes",
        }
    )
    mainEntity = fields.Dict()  # noqa: N815 (schema.org's name)


class TreatmentGateSchema(ResponseSchema):
    """Staff's view of the policy gate for a treatment's current facts."""

    slug = fields.String(metadata={"example": "exosomes"})
    status = Enum(Status)
    evidence_level = Enum(EvidenceLevel)
    meets_gate = fields.Boolean(metadata={"description": "The current facts would pass an approval"})
    unmet = fields.List(fields.Nested(UnmetCriterionSchema), metadata={"description": "What the gate lacks"})
    flagged = fields.Boolean(
        metadata={
            "description": "Approved, but no longer meets the gate: listed first in the due-review report"
        }
    )
    bookable = fields.Boolean()
    suspended_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "Set while a regulatory warning suspends bookings"}
    )
    suspension_reason = fields.String(allow_none=True)


class AuditQueryArgsSchema(ma.Schema):
    before = fields.Integer(
        validate=validate.Range(min=1, max=2**62),
        metadata={"description": "Page back: only records with a smaller id (the first id of the last page)"},
    )
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))
