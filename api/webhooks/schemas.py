"""Webhook schemas: subscriptions (the secret only in the create answer), deliveries, attempts"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from api.changes.service import EVENT_TYPES
from api.fields import HTTPS_URL_PATTERN, OUTBOUND_URL, StrictBoolean, Text
from api.smorest import ResponseSchema
from api.webhooks.models import DeliveryState

URL = OUTBOUND_URL  # https, or http to a loopback host where configured (api.fields)


def _unique(values: list[str]) -> None:
    if len(set(values)) != len(values):
        raise ma.ValidationError("Each event type may appear only once.")


def _event_types(**kwargs: Any) -> fields.List:
    return fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        validate=[validate.Length(max=len(EVENT_TYPES)), _unique],
        metadata={
            "description": "Event types to deliver; an empty list means every type.",
            "example": ["treatment.status_changed"],
            "uniqueItems": True,
        },
        **kwargs,
    )


class WebhookCreateSchema(ma.Schema):
    """A new subscription, as written."""

    url = Text(
        2000, required=True, validate=[URL],
        metadata={"pattern": HTTPS_URL_PATTERN,
                  "description": "https; plain http only to a loopback host, and only where "
                                 "configured (development)", "example": "https://booking.example.com/hooks/tpa"},
    )  # fmt: skip
    event_types = _event_types(load_default=list)
    description = Text(500, load_default="", metadata={"example": "Booking system: hide unbookable services"})
    active = StrictBoolean(load_default=True)


class WebhookSchema(ResponseSchema, WebhookCreateSchema):
    """A subscription as admins see it: never the secret."""

    id = fields.Integer(dump_only=True)
    consecutive_failures = fields.Integer(dump_only=True)
    disabled_reason = fields.String(
        dump_only=True, allow_none=True,
        metadata={"description": "Why delivery stopped, when it was disabled after repeated failures"},
    )  # fmt: skip
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)


class WebhookCreatedSchema(WebhookSchema):
    secret = fields.String(
        dump_only=True,
        metadata={
            "description": "The signing secret (Standard Webhooks). Shown only in this answer: store it now.",
            "example": "whsec_a6lanSfa6NdcVcdlOtxb3ggR+X26nhLFq9rNiCGWF8g=",
        },
    )


class WebhookPatchSchema(ma.Schema):
    url = Text(2000, validate=[URL], metadata={"pattern": HTTPS_URL_PATTERN})
    event_types = _event_types()
    description = Text(500)
    active = StrictBoolean(
        metadata={"description": "Reactivating clears `consecutive_failures` and `disabled_reason`."}
    )


class DeliveryQueryArgsSchema(ma.Schema):
    state = fields.Enum(DeliveryState, by_value=True)
    before = fields.Integer(
        validate=validate.Range(min=1, max=2**62),
        metadata={
            "description": "Cursor: only deliveries with a smaller id (the last id of the previous page)"
        },
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class AttemptSchema(ResponseSchema):
    attempted_at = fields.AwareDateTime()
    status_code = fields.Integer(allow_none=True, metadata={"description": "None when no answer came"})
    latency_ms = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True, metadata={"example": "connection refused"})


class DeliverySchema(ResponseSchema):
    id = fields.Integer()
    event_id = fields.Integer(
        metadata={"description": "The change-feed event; also the `webhook-id` evt_<id>"}
    )
    event_type = fields.String(metadata={"enum": list(EVENT_TYPES), "example": "treatment.status_changed"})
    treatment = fields.String(metadata={"example": "exosomes"})
    state = fields.Enum(DeliveryState, by_value=True)
    attempt_count = fields.Integer(
        metadata={"description": "Attempts since the delivery was last queued (redelivery restarts it)"}
    )
    next_attempt_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "When a pending delivery is next tried (null otherwise)"}
    )
    created_at = fields.AwareDateTime()
    delivered_at = fields.AwareDateTime(allow_none=True)
    attempts = fields.List(
        fields.Nested(AttemptSchema), metadata={"description": "Every attempt, oldest first"}
    )
