"""Review schemas: recording a review, its public record, and the due-review report"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from api.fields import Text
from api.smorest import ResponseSchema, UnmetCriterionSchema
from api.treatments.schemas import Enum
from api.treatments.vocabulary import Status

MAX_WITHIN_DAYS = 3650


class ReviewCreateSchema(ma.Schema):
    note = Text(
        2000,
        multiline=True,
        min_length=1,
        required=True,
        metadata={
            "description": "What was checked and why the decision stands. Public.",
            "example": "Searched PubMed for new RCTs since the last review; none change the evidence.",
        },
    )


class ReviewSchema(ResponseSchema):
    id = fields.Integer()
    note = fields.String()
    reviewed_by = fields.String(metadata={"description": "The reviewer's key name"})
    reviewed_at = fields.AwareDateTime()
    next_review_due = fields.Date(metadata={"description": "The next review this one scheduled"})


class ReviewsDueQueryArgsSchema(ma.Schema):
    within = fields.Integer(
        load_default=30,
        validate=validate.Range(min=0, max=MAX_WITHIN_DAYS),
        metadata={"description": "Also list reviews due within this many days from today"},
    )


class DueReviewSchema(ResponseSchema):
    slug = fields.String(metadata={"example": "exosomes"})
    name = fields.String()
    status = Enum(Status)
    last_reviewed_on = fields.Date(allow_none=True)
    next_review_due = fields.Date(allow_none=True, metadata={"description": "Null: never scheduled"})
    overdue = fields.Boolean(metadata={"description": "Due before today, or never scheduled"})
    days_overdue = fields.Integer(allow_none=True, metadata={"description": "Set when overdue"})
    days_until_due = fields.Integer(allow_none=True, metadata={"description": "Set when not overdue"})
    gate_not_met = fields.Boolean(
        metadata={
            "description": "Approved, but its current facts no longer meet the policy gate: listed first"
        }
    )
    unmet = fields.List(
        fields.Nested(UnmetCriterionSchema), metadata={"description": "The criteria not met, when flagged"}
    )


class DueReviewsSchema(ResponseSchema):
    as_of = fields.Date(metadata={"description": "Today (UTC)"})
    within_days = fields.Integer()
    due_by = fields.Date(metadata={"description": "Reviews due on or before this date are listed"})
    overdue = fields.Integer(metadata={"description": "How many of the items are overdue"})
    items = fields.List(fields.Nested(DueReviewSchema), metadata={"description": "Overdue first"})
