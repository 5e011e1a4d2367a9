"""Booking-system connectors: their configuration, their bookkeeping, what they hid, their calls.

The configuration (`connectors`) carries the row version behind its ETag; everything the worker
writes lives in other tables, so a pass never changes what an admin's `If-Match` refers to.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.changes.models import BigId
from api.db import Base, utcnow


class Connector(Base):
    __tablename__ = "connectors"

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    base_url: Mapped[str] = mapped_column(String(2000))
    # The credentials as one MultiFernet token (api.connectors.vault); never shown, never logged.
    credentials: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    # Guard mode (Square): {"notification_url", "action"}; its signature key sealed like the credentials.
    guard: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    guard_secret: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:  # no credentials, even encrypted, in a log line or traceback
        return f"<Connector {self.id} {self.system} {self.name!r}>"


class ConnectorState(Base):
    """The worker's bookkeeping for one connector: its lease, its last pass and what it found."""

    __tablename__ = "connector_states"

    connector_id: Mapped[int] = mapped_column(
        ForeignKey("connectors.id", ondelete="CASCADE"), primary_key=True
    )
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[dt.datetime | None]
    sync_requested_at: Mapped[dt.datetime | None]
    last_pass_at: Mapped[dt.datetime | None]
    last_success_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[dt.datetime | None]
    # in_step, hidden, unmapped, missing, orphaned: as the last full pass found them;
    # drift_corrected: since the connector was created.
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class HiddenService(Base):
    """A booking-system service this connector switched off: the only kind it ever switches back on."""

    __tablename__ = "connector_hidden_services"

    connector_id: Mapped[int] = mapped_column(
        ForeignKey("connectors.id", ondelete="CASCADE"), primary_key=True
    )
    external_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    treatment_slug: Mapped[str] = mapped_column(String(80))
    hidden_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConnectorCall(Base):
    """One request to the booking system: what was asked and how it went, never a credential."""

    __tablename__ = "connector_calls"
    __table_args__ = (Index("ix_connector_calls_connector", "connector_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    connector_id: Mapped[int] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    status: Mapped[int | None]
    duration_ms: Mapped[int]
    error: Mapped[str | None] = mapped_column(String(1000))


class Notification(Base):
    """A booking notification the booking system sent (guard mode): once per event id, and what came of it."""

    __tablename__ = "connector_notifications"
    __table_args__ = (UniqueConstraint("connector_id", "event_id", name="uq_connector_notifications_event"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    connector_id: Mapped[int] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(60))
    booking_id: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # allowed | flagged | cancelled | ignored
    outcome: Mapped[str] = mapped_column(String(20))
    # the services booked that the clinic does not offer: [{"external_id", "slug", "reason"}]
    blocked: Mapped[list[Any]] = mapped_column(JSON, default=list)
