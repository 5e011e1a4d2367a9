"""Booking-check schemas"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from api.booking.rules import SUSPENDED
from api.fields import Text, text_pattern
from api.smorest import ResponseSchema
from api.treatments.schemas import BookingRequirementSchema
from api.treatments.vocabulary import Status


def _text_doc(max_length: int) -> dict[str, Any]:
    """What `Text(max_length, min_length=1)` accepts, for the hand-written `REF_DOC`."""
    return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": text_pattern(min_visible=1)}


REF_DOC = {
    "oneOf": [
        _text_doc(200) | {"description": "A treatment slug", "example": "exosomes"},
        {
            "type": "object",
            "description": "A booking system's own service id (see `external_ids`)",
            "properties": {"system": _text_doc(40), "id": _text_doc(120)},
            "required": ["system", "id"],
            "additionalProperties": False,
        },
    ]
}


class ExternalRefSchema(ma.Schema):
    system = Text(40, required=True, min_length=1)
    id = Text(120, required=True, min_length=1)


class TreatmentRef(fields.Field):
    """A slug, or `{"system", "id"}` naming the service in a booking system."""

    # Built once: a check names up to 100 treatments, each read on the booking system's hot path.
    slug_field = Text(200, min_length=1)
    ref_schema = ExternalRefSchema()

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return self.slug_field.deserialize(value)
        if isinstance(value, dict):
            return self.ref_schema.load(value)
        raise ma.ValidationError("Give a slug or an object with 'system' and 'id'.")

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return value


class BookingCheckSchema(ma.Schema):
    treatments = fields.List(
        TreatmentRef(metadata=REF_DOC),
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"example": ["exosomes", {"system": "cliniko", "id": "1001"}]},
    )


class BookingResultSchema(ResponseSchema):
    treatment = TreatmentRef(metadata=REF_DOC | {"description": "The treatment as you named it"})
    slug = fields.String(allow_none=True, metadata={"description": "Our slug, when known"})
    bookable = fields.Boolean()
    status = fields.String(
        allow_none=True,
        metadata={
            "enum": [*(s.value for s in Status), None],
            "description": "Null when the treatment is unknown",
        },
    )
    reason = fields.String(
        metadata={
            "description": "The status, `suspended_pending_review` (approved, but a regulatory warning "
            "paused bookings until the clinic decides again), `unknown_treatment`, or `unknown_status` "
            "(any doubt: not bookable)",
            "example": "not_approved",
            "enum": [*(s.value for s in Status), SUSPENDED, "unknown_treatment", "unknown_status"],
        }
    )
    message = fields.String()
    requirements = fields.List(fields.Nested(BookingRequirementSchema))


class BookingAnswerSchema(ResponseSchema):
    bookable = fields.Boolean(metadata={"description": "True only if every treatment is bookable"})
    results = fields.List(fields.Nested(BookingResultSchema))
