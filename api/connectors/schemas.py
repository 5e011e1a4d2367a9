"""Connector schemas: the configuration (never the credentials), its status, its calls"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from api.connectors.registry import SYSTEMS
from api.fields import StrictBoolean, Text

SYSTEM_NAMES = sorted(SYSTEMS)
_URL_DOC = {
    "description": "The booking system's API address: https; the vendor's production address when "
    "left out. Plain http only to a loopback host where TPA_CONNECTORS_ALLOW_LOOPBACK_HTTP allows it "
    "(development).",
    "example": "https://connect.squareup.com",
}
_CREDENTIALS_DOC = {
    "description": "Square: `access_token` (scope ITEMS_READ and ITEMS_WRITE). Encrypted at rest; never "
    "shown again, in any answer or log.",
    "example": {"access_token": "EAAAl..."},
}


class Credentials(fields.Dict):
    """The system's credential fields, all strings; which ones each system needs, the service checks."""

    def __init__(self, **kwargs: object):
        super().__init__(
            keys=fields.String(validate=validate.Length(max=100)),
            values=fields.String(validate=validate.Length(min=1, max=4000)),
            validate=validate.Length(min=1, max=10),
            load_only=True,
            metadata=_CREDENTIALS_DOC,
            **kwargs,  # type: ignore[arg-type]
        )


class StatusCountsSchema(ma.Schema):
    in_step = fields.Integer(
        required=True, metadata={"description": "Mapped services already as they should be"}
    )
    hidden = fields.Integer(required=True, metadata={"description": "Services this connector switched off"})
    drift_corrected = fields.Integer(
        required=True,
        metadata={"description": "Times someone switched a hidden service back on and it was undone"},
    )
    unmapped = fields.Integer(required=True, metadata={"description": "Treatments with no id in this system"})
    missing = fields.Integer(required=True, metadata={"description": "Mappings that name no service"})
    orphaned = fields.Integer(
        required=True,
        metadata={"description": "Services hidden for a treatment whose mapping was since removed"},
    )


class ConnectorStatusSchema(ma.Schema):
    last_pass_at = fields.AwareDateTime(required=True, allow_none=True)
    last_success_at = fields.AwareDateTime(required=True, allow_none=True)
    last_error = fields.String(
        required=True, allow_none=True, metadata={"example": "gave up after 4 attempts"}
    )
    last_error_at = fields.AwareDateTime(required=True, allow_none=True)
    sync_requested_at = fields.AwareDateTime(
        required=True, allow_none=True, metadata={"description": "A full pass asked for and not yet started"}
    )
    counts = fields.Nested(StatusCountsSchema, required=True)


class ConnectorSchema(ma.Schema):
    id = fields.Integer(dump_only=True, required=True)
    system = fields.String(
        required=True, validate=validate.OneOf(SYSTEM_NAMES), metadata={"example": "square"}
    )
    name = Text(200, min_length=1, required=True, metadata={"example": "Square, main site"})
    base_url = Text(2000, metadata=_URL_DOC)
    active = StrictBoolean(load_default=True)
    credentials = Credentials(required=True)
    created_at = fields.AwareDateTime(dump_only=True, required=True)
    updated_at = fields.AwareDateTime(dump_only=True, required=True)
    status = fields.Nested(ConnectorStatusSchema, dump_only=True, required=True)

    class Meta:
        ordered = True


class ConnectorPatchSchema(ma.Schema):
    name = Text(200, min_length=1)
    base_url = Text(2000, metadata=_URL_DOC)
    active = StrictBoolean(
        metadata={"description": "An inactive connector changes nothing in the booking system"}
    )
    credentials = Credentials()


class CallSchema(ma.Schema):
    at = fields.AwareDateTime(required=True)
    method = fields.String(required=True, metadata={"example": "POST"})
    path = fields.String(required=True, metadata={"example": "/v2/catalog/object"})
    status = fields.Integer(
        required=True, allow_none=True, metadata={"description": "None when no answer came"}
    )
    duration_ms = fields.Integer(required=True)
    error = fields.String(required=True, allow_none=True)


class CallQueryArgsSchema(ma.Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
