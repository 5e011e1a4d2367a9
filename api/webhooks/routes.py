"""Webhook subscriptions and their deliveries (admins): parse, call the service, respond"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from api.db import get_session, utcnow
from api.http import ETAG_HEADER, IF_MATCH_PARAMETER, if_match, json_response
from api.readcache import uncacheable
from api.smorest import Blueprint, link
from api.webhooks import service
from api.webhooks.schemas import (
    DeliveryQueryArgsSchema,
    DeliverySchema,
    WebhookCreatedSchema,
    WebhookCreateSchema,
    WebhookPatchSchema,
    WebhookSchema,
)

blp = Blueprint(
    "webhooks", __name__, url_prefix="/v1/webhooks",
    description="Signed webhooks (Standard Webhooks): subscriptions to the change feed, their deliveries.",
)  # fmt: skip

OPTIONAL_IF_MATCH = IF_MATCH_PARAMETER | {"required": False}
WEBHOOK_ID = "<int(max=2147483647):webhook_id>"

# OpenAPI links (for clients and the stateful contract fuzzing): subscription → read, update,
# delete, deliveries → redeliver.
WEBHOOK, DELIVERIES = "/v1/webhooks/{webhook_id}", "/v1/webhooks/{webhook_id}/deliveries"
_CREATED = {"webhook_id": "$response.body#/id"}
_ETAG = {"header.If-Match": "$response.header.ETag"}
CREATED_LINKS = {
    201: {
        "links": {
            "GetWebhook": link(WEBHOOK, "get", _CREATED, "Read the subscription"),
            "UpdateWebhook": link(WEBHOOK, "patch", _CREATED | _ETAG, "Update it, with this ETag"),
            "DeleteWebhook": link(WEBHOOK, "delete", _CREATED | _ETAG, "Delete it, with this ETag"),
            "ListDeliveries": link(DELIVERIES, "get", _CREATED, "Its deliveries"),
        }
    }
}
DELIVERY_LINKS = {
    200: {
        "links": {
            "Redeliver": link(
                DELIVERIES + "/{delivery_id}/redeliver",
                "post",
                {"webhook_id": "$request.path.webhook_id", "delivery_id": "$response.body#/0/id"},
                "Deliver the newest listed delivery again",
            )  # fmt: skip
        }
    }
}


def _allow_loopback_http() -> bool:
    return bool(current_app.config["WEBHOOKS_ALLOW_LOOPBACK_HTTP"])


def _subscription_response(schema: Any, subscription: Any, status: int = 200) -> Response:
    return json_response(schema.dump(subscription), status, etag=service.subscription_etag(subscription))


@blp.route("")
class Webhooks(MethodView):
    @uncacheable("admins only")
    @blp.requires_role("admin")
    @blp.response(200, WebhookSchema(many=True))
    def get(self) -> Any:
        """List webhook subscriptions (never their secrets)"""
        return service.list_subscriptions(get_session())

    @blp.requires_role("admin")
    @blp.arguments(WebhookCreateSchema)
    @blp.response(201, WebhookCreatedSchema, headers=ETAG_HEADER)
    @blp.doc(responses=CREATED_LINKS)
    def post(self, data: dict[str, Any]) -> Response:
        """Subscribe a URL to change events

        The answer carries the signing secret (`whsec_...`): the only time it is shown.
        Every delivery is signed with it per the Standard Webhooks specification.
        """
        subscription = service.create_subscription(get_session(), data, _allow_loopback_http())
        return _subscription_response(WebhookCreatedSchema(), subscription, 201)


@blp.route(f"/{WEBHOOK_ID}")
class WebhookById(MethodView):
    @uncacheable("admins only")
    @blp.requires_role("admin")
    @blp.response(200, WebhookSchema, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, webhook_id: int) -> Response:
        """Get a webhook subscription"""
        return _subscription_response(WebhookSchema(), service.find_subscription(get_session(), webhook_id))

    @blp.requires_role("admin")
    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @blp.arguments(WebhookPatchSchema)
    @blp.response(200, WebhookSchema, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @blp.alt_response(428, response="PRECONDITION_REQUIRED")
    def patch(self, data: dict[str, Any], webhook_id: int) -> Response:
        """Update a webhook subscription

        Deactivating gives up its pending deliveries; reactivating clears the failure count.
        """
        subscription = service.update_subscription(
            get_session(), webhook_id, data, if_match(), _allow_loopback_http()
        )
        return _subscription_response(WebhookSchema(), subscription)

    @blp.requires_role("admin")
    @blp.doc(parameters=[OPTIONAL_IF_MATCH])
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def delete(self, webhook_id: int) -> None:
        """Delete a webhook subscription with its deliveries"""
        service.delete_subscription(get_session(), webhook_id, if_match())


@blp.route(f"/{WEBHOOK_ID}/deliveries")
class WebhookDeliveries(MethodView):
    @uncacheable("admins only")
    @blp.requires_role("admin")
    @blp.arguments(DeliveryQueryArgsSchema, location="query")
    @blp.response(200, DeliverySchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(responses=DELIVERY_LINKS)
    def get(self, args: dict[str, Any], webhook_id: int) -> Any:
        """List a subscription's deliveries, newest first, with every attempt

        Each attempt shows the receiver's status code (none if it never answered), the latency
        and the error. Page back with `before` = the last id you saw.
        """
        return service.list_deliveries(
            get_session(), webhook_id, args.get("state"), args.get("before"), args["limit"]
        )


@blp.route(f"/{WEBHOOK_ID}/deliveries/<int(max=9223372036854775807):delivery_id>/redeliver")
class WebhookRedelivery(MethodView):
    @blp.requires_role("admin")
    @blp.response(202, DeliverySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="The subscription is inactive")
    def post(self, webhook_id: int, delivery_id: int) -> Any:
        """Deliver an event again

        The delivery is queued at once with a fresh retry schedule; the worker sends it before
        the subscription's later events.
        """
        return service.redeliver(get_session(), webhook_id, delivery_id, utcnow())
