"""Connector schemas: the configuration (never the credentials), its status, its calls"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from api.connectors.registry import SYSTEMS
from api.fields import HTTPS_URL_PATTERN, OUTBOUND_URL, Pattern, StrictBoolean, Text
from api.smorest import ResponseSchema

SYSTEM_NAMES = sorted(SYSTEMS)
_URL_DOC = {
    "pattern": HTTPS_URL_PATTERN,
    "description": "The booking system's API address: https; the vendor's production address when "
    "left out. Plain http only to a loopback host where TPA_CONNECTORS_ALLOW_LOOPBACK_HTTP allows it "
    "(development).",
    "example": "https://connect.squareup.com",
}
_CREDENTIALS_DOC = {
    "description": "Square: `access_token` (scopes ITEMS_READ and ITEMS_WRITE; APPOINTMENTS_ALL_WRITE to "
    "cancel in guard mode). Cliniko: `api_key` and `user_agent` (your app's name and a contact email). "
    "Encrypted at rest; never shown again, in any answer or log.",
    "example": {"access_token": "EAAAl..."},
}


def _credentials_schema(system: str) -> type[ma.Schema]:
    """One system's credentials: its fields, every one required, each a string of the system's form."""
    cls = SYSTEMS[system]
    patterns = getattr(cls, "credential_patterns", {})
    return ma.Schema.from_dict(
        {
            name: Text(4000, min_length=1, required=True,
                       validate=[Pattern(patterns[name])] if name in patterns else [],
                       metadata={"pattern": patterns[name]} if name in patterns else {})
            for name in cls.credential_fields
        },
        name=f"{cls.title}Credentials",
    )  # fmt: skip


CREDENTIALS_BY_SYSTEM = {name: _credentials_schema(name) for name in SYSTEM_NAMES}


def _one_systems_credentials(given: dict[str, Any]) -> None:
    """Valid as exactly one system's credentials (which system's: the connector decides, 409)."""
    for name in SYSTEM_NAMES:
        if set(given) == set(SYSTEMS[name].credential_fields):
            CREDENTIALS_BY_SYSTEM[name]().load(given)  # raises with the field's problem
            return
    shapes = "; ".join(f"{name}: {', '.join(SYSTEMS[name].credential_fields)}" for name in SYSTEM_NAMES)
    raise ma.ValidationError(f"Give exactly one booking system's credential fields ({shapes}).")


class Credentials(fields.Dict):
    """The system's credential fields, all strings; which ones each system needs, the service checks
    (and the document says: one shape per system)."""

    def __init__(self, **kwargs: object):
        super().__init__(
            keys=fields.String(validate=validate.Length(max=100)),
            values=Text(4000, min_length=1),
            validate=[validate.Length(min=1, max=10), _one_systems_credentials],
            load_only=True,
            # The systems' credentials, as the create schemas name them (`_create_schema`).
            metadata=_CREDENTIALS_DOC
            | {
                "oneOf": [
                    {"$ref": f"#/components/schemas/{SYSTEMS[n].title}Credentials"} for n in SYSTEM_NAMES
                ]
            },
            **kwargs,  # type: ignore[arg-type]
        )


class GuardSchema(ma.Schema):
    """Guard mode (Square): Square's booking notifications, checked against the clinic's positions."""

    signature_key = Text(
        200, min_length=1, required=True, load_only=True,
        metadata={"description": "The signature key of the webhook subscription in Square's Developer "
                  "Console. Encrypted at rest; never shown again."},
    )  # fmt: skip
    notification_url = Text(
        2000, min_length=1, required=True, validate=[OUTBOUND_URL],
        metadata={"pattern": HTTPS_URL_PATTERN,
                  "description": "The notification URL exactly as configured in Square (Square signs it "
                  "with the body): this API's `/v1/connectors/{id}/events` as the internet reaches it",
                  "example": "https://policy.clinic.example/v1/connectors/1/events"},
    )  # fmt: skip
    action = fields.String(
        load_default="flag", validate=validate.OneOf(["flag", "cancel"]),
        metadata={"description": "`flag`: record a booking of what the clinic does not offer "
                  "(`connector.booking_blocked`); `cancel`: also cancel it in Square"},
    )  # fmt: skip


class BlockedServiceSchema(ResponseSchema):
    external_id = fields.String(metadata={"example": "SQ-EXO"})
    slug = fields.String(metadata={"example": "exosomes"})
    reason = fields.String(metadata={"example": "not_approved", "description": "As a booking check says it"})


class NotificationSchema(ResponseSchema):
    received_at = fields.AwareDateTime()
    event_id = fields.String()
    event_type = fields.String(metadata={"example": "booking.created"})
    booking_id = fields.String(allow_none=True)
    outcome = fields.String(
        validate=validate.OneOf(["allowed", "flagged", "cancelled", "ignored"]),
        metadata={"description": "What came of it: every booked service bookable (`allowed`), a booking of "
                  "what the clinic does not offer recorded (`flagged`) or cancelled in Square (`cancelled`), "
                  "or not a booking that holds an appointment (`ignored`)"},
    )  # fmt: skip
    blocked = fields.List(
        fields.Nested(BlockedServiceSchema),
        metadata={"description": "The booked services the clinic does not offer"},
    )


class SquareNotificationSchema(ma.Schema):
    """A Square webhook notification (only what is read: the rest is passed over)."""

    merchant_id = fields.String()
    type = fields.String(metadata={"example": "booking.created"})
    event_id = fields.String(required=True, metadata={"example": "2f5a2c4e-7a1b-4d3f-9a8e-1c2b3d4e5f60"})
    created_at = fields.String()
    data = fields.Dict(metadata={"description": "`object.booking`: the booking, as Square's Booking"})


class StatusCountsSchema(ResponseSchema):
    in_step = fields.Integer(metadata={"description": "Mapped services already as they should be"})
    hidden = fields.Integer(metadata={"description": "Services this connector switched off"})
    drift_corrected = fields.Integer(
        metadata={"description": "Times someone switched a hidden service back on and it was undone"},
    )
    unmapped = fields.Integer(metadata={"description": "Treatments with no id in this system"})
    missing = fields.Integer(metadata={"description": "Mappings that name no service"})
    orphaned = fields.Integer(
        metadata={"description": "Services hidden for a treatment whose mapping was since removed"},
    )


class ConnectorStatusSchema(ResponseSchema):
    last_pass_at = fields.AwareDateTime(allow_none=True)
    last_success_at = fields.AwareDateTime(allow_none=True)
    last_error = fields.String(allow_none=True, metadata={"example": "gave up after 4 attempts"})
    last_error_at = fields.AwareDateTime(allow_none=True)
    sync_requested_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "A full pass asked for and not yet started"}
    )
    counts = fields.Nested(StatusCountsSchema)


def _create_schema(system: str) -> type[ma.Schema]:
    """A new connector of one system, as written: its own credentials, a guard if it can guard."""
    cls = SYSTEMS[system]
    credentials = CREDENTIALS_BY_SYSTEM[system]
    declared: dict[str, Any] = {
        "system": fields.String(
            required=True, validate=validate.OneOf([system]), metadata={"example": system}
        ),
        "name": Text(200, min_length=1, required=True, metadata={"example": f"{cls.title}, main site"}),
        "base_url": Text(2000, validate=[OUTBOUND_URL], metadata=_URL_DOC),
        "active": StrictBoolean(load_default=True),
        "credentials": fields.Nested(
            credentials, required=True, metadata={"description": _CREDENTIALS_DOC["description"]}
        ),
    }
    if getattr(cls, "guards_bookings", False):
        declared["guard"] = fields.Nested(GuardSchema, allow_none=True, load_default=None)
    return ma.Schema.from_dict(declared, name=f"{cls.title}ConnectorCreate")


CREATE_BY_SYSTEM = {name: _create_schema(name) for name in SYSTEM_NAMES}
# The request body as documented: one schema per system, told apart by `system`.
CREATE_DOC = {
    "oneOf": list(CREATE_BY_SYSTEM.values()),
    "discriminator": {
        "propertyName": "system",
        "mapping": {
            name: f"#/components/schemas/{SYSTEMS[name].title}ConnectorCreate" for name in SYSTEM_NAMES
        },
    },
}


class ConnectorCreateSchema(ma.Schema):
    """A new connector: read with its system's schema (`CREATE_BY_SYSTEM`)."""

    def load(self, data: Any, *, many: Any = None, partial: Any = None, unknown: Any = None) -> Any:
        system = data.get("system") if isinstance(data, dict) else None
        if not isinstance(system, str) or system not in CREATE_BY_SYSTEM:
            raise ma.ValidationError({"system": [f"Must be one of: {', '.join(SYSTEM_NAMES)}."]})
        return CREATE_BY_SYSTEM[system]().load(data, partial=partial, unknown=unknown)


class GuardViewSchema(ResponseSchema):
    notification_url = fields.String(
        metadata={"example": "https://policy.clinic.example/v1/connectors/1/events"}
    )
    action = fields.String(validate=validate.OneOf(["flag", "cancel"]))


class ConnectorSchema(ResponseSchema):
    """A connector as admins see it: never its credentials, nor its guard's signature key."""

    id = fields.Integer()
    system = fields.String(validate=validate.OneOf(SYSTEM_NAMES), metadata={"example": "square"})
    name = fields.String(metadata={"example": "Square, main site"})
    base_url = fields.String(metadata={"example": "https://connect.squareup.com"})
    active = fields.Boolean()
    guard = fields.Nested(GuardViewSchema, allow_none=True, metadata={"description": "Guard mode, or null"})
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    status = fields.Nested(ConnectorStatusSchema)

    class Meta:
        ordered = True


class ConnectorPatchSchema(ma.Schema):
    name = Text(200, min_length=1)
    base_url = Text(2000, validate=[OUTBOUND_URL], metadata=_URL_DOC)
    active = StrictBoolean(
        metadata={"description": "An inactive connector changes nothing in the booking system"}
    )
    credentials = Credentials()
    guard = fields.Nested(
        GuardSchema, allow_none=True, metadata={"description": "null switches guard mode off"}
    )


class CallSchema(ResponseSchema):
    at = fields.AwareDateTime()
    method = fields.String(metadata={"example": "POST"})
    path = fields.String(metadata={"example": "/v2/catalog/object"})
    status = fields.Integer(allow_none=True, metadata={"description": "None when no answer came"})
    duration_ms = fields.Integer()
    error = fields.String(allow_none=True)


class RecentArgsSchema(ma.Schema):
    """How many of the newest (calls, notifications) to list."""

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
