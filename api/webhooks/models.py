"""Webhook subscriptions, the outbox of deliveries, and every delivery attempt"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, event, inspect
from sqlalchemy.orm import Mapped, mapped_column

from api.changes.models import BigId
from api.db import Base, checked_enum, utcnow


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up: retries exhausted or the subscription was disabled


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    # Event types wanted; an empty list means every type.
    event_types: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    # Kept in the clear because every delivery is signed with it (Standard Webhooks, HMAC).
    secret: Mapped[str] = mapped_column(String(200))
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # The configuration's version, and so the ETag's: it moves when an admin (or the worker,
    # disabling it) changes what the subscription is, never with the delivery bookkeeping
    # (`consecutive_failures`), so an If-Match read before failed deliveries still holds. Every
    # UPDATE still checks it (`version_id_col`), so a concurrent change is never overwritten.
    version: Mapped[int] = mapped_column(default=1)

    CONFIGURATION = ("url", "event_types", "description", "active", "disabled_reason")

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


@event.listens_for(WebhookSubscription, "before_update")
def _configuration_version(_mapper: Any, _connection: Any, subscription: WebhookSubscription) -> None:
    state = inspect(subscription)
    if any(state.attrs[name].history.has_changes() for name in WebhookSubscription.CONFIGURATION):
        subscription.version += 1


class WebhookDelivery(Base):
    """One event owed to one subscription: the outbox row, written with the change itself."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_subscription_event"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int] = mapped_column(ForeignKey("change_events.id", ondelete="RESTRICT"))
    state: Mapped[DeliveryState] = mapped_column(
        checked_enum(DeliveryState, "webhook_delivery_state"), default=DeliveryState.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None]


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    latency_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
