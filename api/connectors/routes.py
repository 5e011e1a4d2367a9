"""Booking-system connectors (admins): parse, call the service, respond"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from api.connectors import service
from api.connectors.models import Connector, ConnectorState
from api.connectors.schemas import (
    CallQueryArgsSchema,
    CallSchema,
    ConnectorPatchSchema,
    ConnectorSchema,
    ConnectorStatusSchema,
    StatusCountsSchema,
)
from api.connectors.vault import Vault
from api.db import get_session
from api.http import ETAG_HEADER, IF_MATCH_PARAMETER, if_match, json_response
from api.readcache import uncacheable
from api.smorest import Blueprint

blp = Blueprint(
    "connectors", __name__, url_prefix="/v1/connectors",
    description="Booking-system connectors: switch off online booking of what the clinic does not offer.",
)  # fmt: skip

CONNECTOR_ID = "<int(max=2147483647):connector_id>"
OPTIONAL_IF_MATCH = IF_MATCH_PARAMETER | {"required": False}
SCHEMA, STATUS = ConnectorSchema(), ConnectorStatusSchema()
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
    @blp.arguments(ConnectorSchema)
    @blp.response(201, ConnectorSchema, headers=ETAG_HEADER)
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE", description="TPA_SECRET_KEYS is not set")
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
        service.request_sync(get_session(), connector_id)
        connector = service.find_connector(get_session(), connector_id)
        return json_response(view(connector, service.state_of(get_session(), connector_id)), 202)


@blp.route(f"/{CONNECTOR_ID}/calls")
class ConnectorCalls(MethodView):
    @uncacheable("admins only")
    @blp.requires_role("admin")
    @blp.arguments(CallQueryArgsSchema, location="query")
    @blp.response(200, CallSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args: dict[str, Any], connector_id: int) -> Any:
        """The connector's recent requests to the booking system, newest first

        Method, path, status and duration; never a header or a credential.
        """
        return service.list_calls(get_session(), connector_id, args["limit"])
