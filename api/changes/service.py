"""Recording and reading the change feed.

Ordering guarantee: services stage events with `record_change`; they are inserted just before
the transaction commits (a `before_commit` hook). On PostgreSQL that insert first takes one
transaction-scoped advisory lock, held until the commit ends, so event ids are allocated in
commit order: a reader that has seen id N can never later see a smaller id appear. Taking
the lock last, after every row lock the write needs, keeps it deadlock-free. SQLite allows one
writer at a time, which gives the same order.

Such a transaction also sets `session.info[PUBLIC_WRITE]`, so the read cache of the writing
process hears of it at its commit (`api.readcache`; other processes hear through NOTIFY).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from api.changes.models import ChangeEvent
from api.webhooks.models import WebhookDelivery, WebhookSubscription

FEED_LOCK_KEY = 7_215_001  # arbitrary, constant: the feed's advisory lock
# Every event type the feed carries (and webhooks may subscribe to), in one place.
EVENT_TYPES = (
    "treatment.created", "treatment.updated", "treatment.status_changed", "decision.recorded",
    "treatment.reviewed", "study.created", "study.updated", "study.deleted",
    "regulatory.created", "regulatory.updated", "regulatory.deleted", "treatment.bookability_changed",
    "treatment.gate_not_met", "connector.drift_corrected", "connector.booking_blocked",
)  # fmt: skip
_PENDING = "pending_change_events"
PUBLIC_WRITE = "public_write"  # session.info flag: this transaction carries change events


def record_change(session: Session, event_type: str, slug: str, data: dict[str, Any]) -> None:
    """Stage an event; it is written by the commit of the caller's transaction, or never."""
    session.info.setdefault(_PENDING, []).append(
        ChangeEvent(event_type=event_type, treatment_slug=slug, data=data)
    )


@event.listens_for(Session, "before_commit")
def _write_pending_events(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FEED_LOCK_KEY})
    session.add_all(pending)
    _queue_webhook_deliveries(session, pending)
    session.info[PUBLIC_WRITE] = True


def _queue_webhook_deliveries(session: Session, events: list[ChangeEvent]) -> None:
    """The webhook outbox: one delivery per (active subscription that wants it, event), written
    in the events' own transaction, so a write that rolls back owes no one a delivery.
    One query per commit that has events."""
    session.flush()  # insert the events: their ids are the deliveries' keys
    # FOR KEY SHARE (PostgreSQL; SQLite ignores it): a subscription being deleted is waited for and
    # then skipped, instead of its delivery row failing the foreign key and, with it, this write.
    wanted = (
        select(WebhookSubscription.id, WebhookSubscription.event_types)
        .where(WebhookSubscription.active.is_(True))
        .with_for_update(read=True, key_share=True)
    )
    subscriptions = session.execute(wanted).all()
    session.add_all(
        WebhookDelivery(subscription_id=subscription_id, event_id=change.id)
        for change in events
        for subscription_id, types in subscriptions
        if not types or change.event_type in types
    )


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending_events(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_PENDING, None)


def list_changes(session: Session, after: int, limit: int) -> list[ChangeEvent]:
    """Events with an id greater than `after`, oldest first."""
    query = select(ChangeEvent).where(ChangeEvent.id > after).order_by(ChangeEvent.id).limit(limit)
    return list(session.scalars(query))
