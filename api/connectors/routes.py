"""Booking-system connectors (admins): parse, call the service, respond"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from flask.views import MethodView

from api.connectors import guard, service
from api.connectors.base import HttpSettings
from api.connectors.models import Connector, ConnectorState
from api.connectors.schemas import (
    CREATE_DOC,
    CallSchema,
    ConnectorCreateSchema,
    ConnectorPatchSchema,
    ConnectorSchema,
    ConnectorStatusSchema,
    NotificationSchema,
    RecentArgsSchema,
    SquareNotificationSchema,
    StatusCountsSchema,
)
from api.connectors.vault import Vault
from api.db import get_session
from api.http import ETAG_HEADER, IF_MATCH_PARAMETER, if_match, json_response
from api.readcache import uncacheable
from api.smorest import Blueprint, link, require_json_body

blp = Blueprint(
    "connectors", __name__, url_prefix="/v1/connectors",
    description="Booking-system connectors: switch off online booking of what the clinic does not offer.",
)  # fmt: skip

CONNECTOR_ID = "<int(max=2147483647):connector_id>"

# OpenAPI links (for clients and the stateful contract fuzzing): a new connector → its operations.
CONNECTOR = "/v1/connectors/{connector_id}"
_CREATED = {"connector_id": "$response.body#/id"}
_ETAG = {"header.If-Match": "$response.header.ETag"}
CREATED_LINKS = {
    201: {
        "links": {
            "GetConnector": link(CONNECTOR, "get", _CREATED, "Read the connector and its status"),
            "UpdateConnector": link(CONNECTOR, "patch", _CREATED | _ETAG, "Update it, with this ETag"),
            "DeleteConnector": link(CONNECTOR, "delete", _CREATED | _ETAG, "Delete it, with this ETag"),
            "SyncConnector": link(CONNECTOR + "/sync", "post", _CREATED, "Ask for a full pass"),
            "ListCalls": link(CONNECTOR + "/calls", "get", _CREATED, "Its recent calls"),
            "ListNotifications": link(CONNECTOR + "/notifications", "get", _CREATED, "Its notifications"),
            "Notify": link(CONNECTOR + "/events", "post", _CREATED, "Send it a booking notification"),
        }
    }
}
OPTIONAL_IF_MATCH = IF_MATCH_PARAMETER | {"required": False}
SCHEMA, STATUS = ConnectorSchema(), ConnectorStatusSchema()
SIGNATURE_PARAMETER = {
    "name": guard.SIGNATURE_HEADER, "in": "header", "required": True, "schema": {"type": "string"},
    "description": "Square's signature: base64 HMAC-SHA256 of the notification URL and the body",
}  # fmt: skip
COUNTS = tuple(StatusCountsSchema().fields)


def _vault() -> Vault:
    vault: Vault = current_app.extensions["connector_vault"]
    return vault


def _loopback() -> bool:
    return bool(current_app.config["CONNECTORS_ALLOW_LOOPBACK_HTTP"])


def view(connector: Connector, state: ConnectorState) -> dict[str, Any]:
    """The connector as admins see it: its configuration and its worker's status."""
    status = {
        "last_pass_at": state.last_pass_at, "last_success_at": state.last_success_at,
        "last_error": state.last_error, "last_error_at": state.last_error_at,
        "sync_requested_at": state.sync_requested_at,
        "counts": dict.fromkeys(COUNTS, 0) | (state.counts or {}),
    }  # fmt: skip
    return SCHEMA.dump(connector) | {"status": STATUS.dump(status)}


def _answer(connector: Connector, status: int = 200) -> Response:
    state = service.state_of(get_session(), connector.id)
    return json_response(view(connector, state), status, etag=service.connector_etag(connector))


@blp.route("")
class Connectors(MethodView):
    @uncacheable("admins only")
    @blp.requires_role("admin")
    @blp.response(200, ConnectorSchema(many=True))
    def get(self) -> Any:
        """List connectors, each with its status (never its credentials)"""
        return json_response([view(c, s) for c, s in service.list_connectors(get_session())])

    @blp.requires_role("admin")
    @blp.arguments(ConnectorCreateSchema)
    @blp.response(201, ConnectorSchema, headers=ETAG_HEADER)
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE", description="TPA_SECRET_KEYS is not set")
    @blp.doc(
        responses=CREATED_LINKS,
        requestBody={"required": True, "content": {"application/json": {"schema": CREATE_DOC}}},
    )
    def post(self, data: dict[str, Any]) -> Response:
        """Connect a booking system

        Its credentials are encrypted at rest and never shown again. The worker starts with a full
        pass at once, then follows every change of bookability.
        """
        return _answer(service.create_connector(get_session(), data, _vault(), _loopback()), 201)


@blp.route(f"/{CONNECTOR_ID}")
class ConnectorById(MethodView):
    @uncacheable("admins only")
    @blp.requires_role("admin")
    @blp.response(200, ConnectorSchema, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, connector_id: int) -> Response:
        """Get a connector and its status: last pass, last error, counts"""
        return _answer(service.find_connector(get_session(), connector_id))

    @blp.requires_role("admin")
    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @blp.arguments(ConnectorPatchSchema)
    @blp.response(200, ConnectorSchema, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(
        409, response="CONFLICT", description="Credentials or a guard this connector's system cannot take"
    )
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @blp.alt_response(428, response="PRECONDITION_REQUIRED")
    def patch(self, data: dict[str, Any], connector_id: int) -> Response:
        """Update a connector (a full pass follows)

        The worker's bookkeeping never changes the ETag: only an admin's change does.
        """
        connector = service.update_connector(
            get_session(), connector_id, data, if_match(), _vault(), _loopback()
        )
        return _answer(connector)

    @blp.requires_role("admin")
    @blp.doc(parameters=[OPTIONAL_IF_MATCH])
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def delete(self, connector_id: int) -> None:
        """Delete a connector

        What it switched off stays off: switch those services on in the booking system if you
        want them back.
        """
        service.delete_connector(get_session(), connector_id, if_match())


@blp.route(f"/{CONNECTOR_ID}/sync")
class ConnectorSync(MethodView):
    @blp.requires_role("admin")
    @blp.response(202, ConnectorSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, connector_id: int) -> Response:
        """Ask for a full pass now

        The worker starts it within a second; `status.last_pass_at` moves when it is done.
        """
        return json_response(view(*service.request_sync(get_session(), connector_id)), 202)


@blp.route(f"/{CONNECTOR_ID}/calls")
class ConnectorCalls(MethodView):
    @uncacheable("admins only")
    @blp.requires_role("admin")
    @blp.arguments(RecentArgsSchema, location="query")
    @blp.response(200, CallSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args: dict[str, Any], connector_id: int) -> Any:
        """The connector's recent requests to the booking system, newest first

        Method, path, status and duration; never a header or a credential.
        """
        return service.list_calls(get_session(), connector_id, args["limit"])


@blp.route(f"/{CONNECTOR_ID}/events")
class ConnectorEvents(MethodView):
    @blp.doc(
        security=[],
        requestBody={"required": True, "content": {"application/json": {"schema": SquareNotificationSchema}}},
        parameters=[SIGNATURE_PARAMETER],
    )  # fmt: skip
    @blp.response(200, NotificationSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    @blp.alt_response(
        401, response="UNAUTHORIZED", description="Unsigned, or not signed with the key configured"
    )
    @blp.alt_response(
        404, response="NOT_FOUND", description="No such connector, or it does not guard bookings"
    )
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description="Not a Square notification")
    @blp.alt_response(
        503, response="SERVICE_UNAVAILABLE", description="The booking could not be cancelled now"
    )
    def post(self, connector_id: int) -> Response:
        """Receive Square's booking notifications (guard mode)

        Configure this URL in Square's Developer Console as a webhook subscription for
        `booking.created` and `booking.updated`, and give the connector its signature key. Each
        booked service that maps to a treatment the clinic does not offer is flagged
        (`connector.booking_blocked`) or, with `"action": "cancel"`, the booking is cancelled. A
        repeated `event_id` is answered 200 and not processed again.
        """
        require_json_body()  # then the raw bytes, as Square signed them
        request_body = request.get_data(cache=True)
        notification = guard.receive(
            get_session(), connector_id, request_body, request.headers.get(guard.SIGNATURE_HEADER), _vault(),
            HttpSettings.from_config(current_app.config),
        )  # fmt: skip
        return json_response(NotificationSchema().dump(notification))


@blp.route(f"/{CONNECTOR_ID}/notifications")
class ConnectorNotifications(MethodView):
    @uncacheable("admins only")
    @blp.requires_role("admin")
    @blp.arguments(RecentArgsSchema, location="query")
    @blp.response(200, NotificationSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args: dict[str, Any], connector_id: int) -> Any:
        """The booking notifications received (guard mode), newest first, with what came of each"""
        return guard.list_notifications(get_session(), connector_id, args["limit"])
