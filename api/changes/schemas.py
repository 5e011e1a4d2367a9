"""Change-feed schemas"""

import marshmallow as ma
from marshmallow import fields, validate

from api.changes.service import EVENT_TYPES
from api.smorest import ResponseSchema


class ChangeQueryArgsSchema(ma.Schema):
    after = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=2**62),
        metadata={"description": "Cursor: the `next_after` of the previous page (0 to start)"},
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class ChangeEventSchema(ResponseSchema):
    id = fields.Integer(metadata={"description": "Position in the feed; strictly increasing"})
    type = fields.String(
        attribute="event_type", metadata={"enum": list(EVENT_TYPES), "example": "treatment.status_changed"}
    )
    treatment = fields.String(attribute="treatment_slug", metadata={"example": "exosomes"})
    occurred_at = fields.AwareDateTime()
    data = fields.Dict(
        metadata={
            "example": {
                "slug": "exosomes",
                "old_status": "under_review",
                "new_status": "not_approved",
                "old_bookable": False,
                "new_bookable": False,
            }  # fmt: skip
        }
    )


class ChangePageSchema(ResponseSchema):
    events = fields.List(fields.Nested(ChangeEventSchema))
    next_after = fields.Integer(metadata={"description": "Pass as `after` for the next page"})
