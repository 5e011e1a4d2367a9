"""Webhook subscriptions for admins: create (the secret shown once), read, change, delete, and
the deliveries each one is owed, with every attempt and a way to ask for one again.

Deliveries themselves are written by the change feed's commit hook (`api.changes.service`) and
sent by the worker (`api.webhooks.delivery`), never in a request.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api import outbound
from api.changes.models import ChangeEvent
from api.errors import Conflict, InvalidInput, NotFound
from api.preconditions import check_if_match
from api.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookSubscription

SECRET_PREFIX = "whsec_"  # Standard Webhooks: whsec_ + base64 of the key bytes
SECRET_BYTES = 32


class WebhookNotFound(NotFound):
    def __init__(self, webhook_id: int):
        super().__init__(f"No webhook subscription has the id {webhook_id}.")


class DeliveryNotFound(NotFound):
    def __init__(self, webhook_id: int, delivery_id: int):
        super().__init__(f"Webhook subscription {webhook_id} has no delivery with the id {delivery_id}.")


class WebhookInactive(Conflict):
    slug, title = "webhook-inactive", "Webhook subscription inactive"


# --- rules (pure) ----------------------------------------------------------------------------


def new_secret() -> str:
    """A fresh signing secret: 256 random bits, in the form the Standard Webhooks libraries read."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def url_problem(url: str, allow_loopback_http: bool) -> str | None:
    """Why a subscription may not use `url`, or None. Payloads are signed, not encrypted:
    they travel over https, except to this machine in development."""
    return outbound.url_problem(url, allow_loopback_http, "WEBHOOKS_ALLOW_LOOPBACK_HTTP")


def subscription_etag(subscription: WebhookSubscription) -> str:
    return f'"w{subscription.id}-v{subscription.version}"'


# --- subscriptions ---------------------------------------------------------------------------


def list_subscriptions(session: Session) -> list[WebhookSubscription]:
    return list(session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)))


def find_subscription(session: Session, webhook_id: int, *, for_update: bool = False) -> WebhookSubscription:
    # FOR UPDATE (PostgreSQL) waits for a worker recording an attempt on this subscription,
    # then reads its result, instead of failing later on a stale row version.
    subscription = session.get(
        WebhookSubscription, webhook_id, with_for_update=for_update, populate_existing=for_update
    )
    if subscription is None:
        raise WebhookNotFound(webhook_id)
    return subscription


def create_subscription(
    session: Session, data: dict[str, Any], allow_loopback_http: bool
) -> WebhookSubscription:
    """Subscribe a URL; the answer is the only place its secret is ever shown."""
    _check_url(data["url"], allow_loopback_http)
    subscription = WebhookSubscription(
        url=data["url"], description=data.get("description", ""), active=data.get("active", True),
        event_types=list(data.get("event_types", [])), secret=new_secret(), consecutive_failures=0,
    )  # fmt: skip
    session.add(subscription)
    session.commit()
    return subscription


def update_subscription(
    session: Session, webhook_id: int, data: dict[str, Any], if_match: str | None, allow_loopback_http: bool
) -> WebhookSubscription:
    """Change a subscription the client has seen the current version of (If-Match).

    Deactivating gives up its pending deliveries; reactivating clears the failure count and
    the reason it was disabled. Events committed while it was inactive are not queued for it:
    a receiver catches up from the change feed, or asks for a delivery again.
    """
    subscription = find_subscription(session, webhook_id, for_update=True)
    check_if_match(if_match, subscription_etag(subscription))
    if "url" in data:
        _check_url(data["url"], allow_loopback_http)
        subscription.url = data["url"]
    if "event_types" in data:
        subscription.event_types = list(data["event_types"])
    if "description" in data:
        subscription.description = data["description"]
    if data.get("active") is True and not subscription.active:
        subscription.active = True
        subscription.consecutive_failures = 0
        subscription.disabled_reason = None
    elif data.get("active") is False and subscription.active:
        subscription.active = False
        give_up_pending(session, subscription.id)
    session.commit()
    return subscription


def delete_subscription(session: Session, webhook_id: int, if_match: str | None) -> None:
    """Delete a subscription with its deliveries and attempts."""
    subscription = find_subscription(session, webhook_id, for_update=True)
    if if_match is not None:
        check_if_match(if_match, subscription_etag(subscription))
    session.delete(subscription)  # the database cascades to deliveries and attempts
    session.commit()


def give_up_pending(session: Session, subscription_id: int) -> None:
    """Mark a subscription's pending deliveries failed (it was deactivated or disabled)."""
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == subscription_id, WebhookDelivery.state == DeliveryState.PENDING
        )
        .values(state=DeliveryState.FAILED),
        execution_options={"synchronize_session": "fetch"},
    )


# --- deliveries ------------------------------------------------------------------------------


def list_deliveries(
    session: Session, webhook_id: int, state: DeliveryState | None, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """A subscription's deliveries, newest first, each with every attempt (two queries)."""
    find_subscription(session, webhook_id)
    query = (
        select(WebhookDelivery, ChangeEvent.event_type, ChangeEvent.treatment_slug)
        .join(ChangeEvent, ChangeEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.subscription_id == webhook_id)
    )
    if state is not None:
        query = query.where(WebhookDelivery.state == state)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    rows = session.execute(query.order_by(WebhookDelivery.id.desc()).limit(limit)).all()
    attempts = _attempts_by_delivery(session, [delivery.id for delivery, _, _ in rows])
    return [_delivery_view(d, event_type, slug, attempts.get(d.id, [])) for d, event_type, slug in rows]


def redeliver(session: Session, webhook_id: int, delivery_id: int, now: dt.datetime) -> dict[str, Any]:
    """Queue a delivery again, whatever its state: pending, due now, with a fresh retry schedule.

    It takes its event's place in the subscription's feed order: before any later event still
    pending. Its earlier attempts stay listed.
    """
    subscription = find_subscription(session, webhook_id)
    if not subscription.active:
        raise WebhookInactive(
            f"Webhook subscription {webhook_id} is inactive; reactivate it before asking for a redelivery."
        )
    row = session.execute(
        select(WebhookDelivery, ChangeEvent.event_type, ChangeEvent.treatment_slug)
        .join(ChangeEvent, ChangeEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.subscription_id == webhook_id)
    ).first()
    if row is None:
        raise DeliveryNotFound(webhook_id, delivery_id)
    delivery, event_type, slug = row
    delivery.state = DeliveryState.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.delivered_at = None
    session.commit()
    return _delivery_view(
        delivery, event_type, slug, _attempts_by_delivery(session, [delivery.id]).get(delivery.id, [])
    )


def _attempts_by_delivery(session: Session, delivery_ids: list[int]) -> dict[int, list[WebhookAttempt]]:
    if not delivery_ids:
        return {}
    attempts: dict[int, list[WebhookAttempt]] = {}
    query = (
        select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids)).order_by(WebhookAttempt.id)
    )
    for attempt in session.scalars(query):
        attempts.setdefault(attempt.delivery_id, []).append(attempt)
    return attempts


def _delivery_view(
    delivery: WebhookDelivery, event_type: str, slug: str, attempts: list[WebhookAttempt]
) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "event_id": delivery.event_id,
        "event_type": event_type,
        "treatment": slug,
        "state": delivery.state,
        "attempt_count": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at if delivery.state == DeliveryState.PENDING else None,
        "created_at": delivery.created_at,
        "delivered_at": delivery.delivered_at,
        "attempts": attempts,
    }


def _check_url(url: str, allow_loopback_http: bool) -> None:
    problem = url_problem(url, allow_loopback_http)
    if problem:
        raise InvalidInput(
            "The webhook URL is not allowed.", [{"location": "json", "field": "url", "message": problem}]
        )
