"""Guard mode (Square): catch bookings of what the clinic does not offer that slipped through.

A booking can be made before a change reached Square (the second between a withdrawal and the
switch), or by staff at the desk, who can book a service that is off for online booking. Square
sends `booking.created` and `booking.updated` notifications, signed; for each, every booked
service that maps to a treatment is put to the clinic's own booking check, and a booking of one
that is not bookable is flagged (`connector.booking_blocked`, an audit record) or, with
`"action": "cancel"`, cancelled in Square, and recorded either way. Services that map to no
treatment (a consultation, say) are outside the clinic's policy and left alone, as in hide mode.

A notification is handled once per `event_id` (Square retries for up to 72 hours): a repeat is
answered 200 and not processed again. A cancellation Square refuses or cannot take now fails the
notification (503), so Square sends it again later.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.audit.service import Actor, record_audit
from api.booking.service import check_booking_now
from api.changes.service import record_change
from api.connectors.base import ConnectorError, HttpSettings
from api.connectors.models import Connector, Notification
from api.connectors.registry import open_system
from api.connectors.service import find_connector
from api.connectors.square import LIVE_BOOKINGS, Square, notification_signed
from api.connectors.vault import Vault, VaultError
from api.errors import DomainError, InvalidInput, NotFound, ServiceUnavailable
from api.treatments.models import Treatment

BOOKING_EVENTS = ("booking.created", "booking.updated")
SIGNATURE_HEADER = "x-square-hmacsha256-signature"


class NotGuarding(NotFound):
    def __init__(self, connector_id: int):
        super().__init__(f"Connector {connector_id} does not guard bookings (no `guard` configured).")


class BadSignature(DomainError):
    status, slug, title = 401, "bad-signature", "Not signed by the booking system"

    def __init__(self) -> None:
        super().__init__(
            f"The notification is not signed with this connector's signature key ({SIGNATURE_HEADER})."
        )


def receive(
    session: Session, connector_id: int, body: bytes, signature: str | None, vault: Vault, http: HttpSettings
) -> Notification:
    """Verify, deduplicate and act on one notification; what came of it (a repeat: the first's)."""
    connector = find_connector(session, connector_id)
    if not connector.guard or not connector.guard_secret:
        raise NotGuarding(connector_id)
    try:
        key = vault.open(connector.guard_secret)["signature_key"]
    except VaultError as error:
        raise ServiceUnavailable(str(error)) from None
    if not notification_signed(key, connector.guard["notification_url"], body, signature):
        raise BadSignature()
    event = _parse(body)
    seen = session.scalar(
        select(Notification).where(
            Notification.connector_id == connector_id, Notification.event_id == event["event_id"]
        )
    )
    if seen is not None:
        return seen
    notification = Notification(
        connector_id=connector_id,
        event_id=event["event_id"],
        event_type=event["type"],
        outcome="ignored",
        blocked=[],
    )
    booking = _booking(event)
    if booking is not None:
        notification.booking_id = str(booking["id"])
        _judge(session, connector, vault, http, booking, event, notification)
    session.add(notification)
    try:
        session.commit()
    except IntegrityError:  # the same event, handled meanwhile by another worker
        session.rollback()
        return session.scalars(
            select(Notification).where(
                Notification.connector_id == connector_id, Notification.event_id == event["event_id"]
            )
        ).one()
    return notification


def _judge(
    session: Session, connector: Connector, vault: Vault, http: HttpSettings, booking: dict[str, Any],
    event: dict[str, Any], notification: Notification,
) -> None:  # fmt: skip
    services = [s.get("service_variation_id") for s in booking.get("appointment_segments") or []]
    refs = [{"system": connector.system, "id": str(s)} for s in dict.fromkeys(services) if s]
    if not refs:
        return
    answer = check_booking_now(session, refs)
    blocked = [
        {"external_id": r["treatment"]["id"], "slug": r["slug"], "reason": r["reason"]}
        for r in answer["results"]
        if r["slug"] is not None and not r["bookable"]  # services mapped to no treatment: left alone
    ]
    notification.outcome = "allowed"
    if not blocked:
        return
    action = connector.guard["action"]
    notification.outcome, notification.blocked = "flagged", blocked
    if action == "cancel":
        client = open_system(connector.system, connector.base_url, vault.open(connector.credentials), http)
        if not isinstance(client, Square):  # only Square guards bookings (`guards_bookings`)
            raise NotGuarding(connector.id)
        try:
            cancelled = client.cancel_booking(
                str(booking["id"]), booking.get("version"), f"tpa-{event['event_id']}"[:255]
            )
        except ConnectorError as error:
            raise ServiceUnavailable(
                f"The booking could not be cancelled now: {error}", retry_after=60
            ) from None
        notification.outcome = "cancelled" if cancelled else "flagged"
    actor = Actor(name=f"connector:{connector.name}"[:100], role="system")
    for item in blocked:
        data = {
            "slug": item["slug"],
            "connector_id": connector.id,
            "system": connector.system,
            "booking_id": str(booking["id"]),
            "external_id": item["external_id"],
            "reason": item["reason"],
            "action": notification.outcome,
            "square_event_id": event["event_id"],
        }
        record_change(session, "connector.booking_blocked", item["slug"], data)
        treatment_id = session.scalar(select(Treatment.id).where(Treatment.slug == item["slug"]))
        if treatment_id is not None:
            record_audit(
                session,
                treatment_id=treatment_id,
                entity="connector",
                entity_id=connector.id,
                action="booking_" + notification.outcome,
                actor=actor,
                changes={"booking_id": str(booking["id"]), "external_id": item["external_id"]},
            )


def _parse(body: bytes) -> dict[str, Any]:
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        event = None
    if not isinstance(event, dict) or not isinstance(event.get("event_id"), str) or not event["event_id"]:
        raise InvalidInput(
            "Not a Square notification.",
            [{"location": "json", "field": "event_id", "message": "A non-empty string is required."}],
        )
    event["event_id"] = event["event_id"][:200]
    event["type"] = str(event.get("type", ""))[:60]
    return event


def _booking(event: dict[str, Any]) -> dict[str, Any] | None:
    """The booking a `booking.created` or `booking.updated` notification carries, if it still holds
    an appointment; None for anything else."""
    if event["type"] not in BOOKING_EVENTS:
        return None
    data = event.get("data")
    booking = data.get("object", {}).get("booking") if isinstance(data, dict) else None
    if not isinstance(booking, dict) or not booking.get("id") or booking.get("status") not in LIVE_BOOKINGS:
        return None
    return booking


def list_notifications(session: Session, connector_id: int, limit: int) -> list[Notification]:
    find_connector(session, connector_id)
    query = select(Notification).where(Notification.connector_id == connector_id)
    return list(session.scalars(query.order_by(Notification.id.desc()).limit(limit)))
