"""Square Appointments: a service is a catalog `ITEM_VARIATION`; offered online while its
`item_variation_data.available_for_booking` is true.

The mapping is the treatment's `external_ids["square"]`: the variation's id (README "Connecting
the booking system: Square" says where a clinic finds it). Square's upsert replaces the whole
object, so a switch reads the variation, changes that one field, and writes the whole object back
with the `version` it read and a fresh `idempotency_key`; when someone changed it in between,
Square refuses the stale version (`VERSION_MISMATCH`) and the switch reads again and retries.
Square also refuses a second concurrent catalog write for one seller with 429: a connector's
writes go one at a time (the worker runs each connector's passes in one thread, under a lease).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

from api.connectors.base import ConnectorError, Http, error_detail

API_VERSION = "2025-08-20"  # the Square-Version this connector is written and tested against
BATCH_LIMIT = 1000  # object ids per BatchRetrieveCatalogObjects
VERSION_RETRIES = 5
# A stale `version`: CONFLICT in Square's document's error codes; VERSION_MISMATCH as Square's catalog
# has been seen to answer (the code its document gives other version-checked endpoints).
CONFLICT_CODES = {"VERSION_MISMATCH", "CONFLICT"}
LIVE_BOOKINGS = {"PENDING", "ACCEPTED"}  # bookings that still hold an appointment
# Marked readOnly in Square's OpenAPI document (CatalogObject, CatalogItemVariation).
READ_ONLY_OBJECT, READ_ONLY_VARIATION = {"updated_at"}, {"ordinal"}


class Square:
    system: ClassVar[str] = "square"
    title: ClassVar[str] = "Square"
    credential_fields: ClassVar[tuple[str, ...]] = ("access_token",)
    guards_bookings: ClassVar[bool] = (
        True  # signed booking notifications, and a cancel (api.connectors.guard)
    )

    def __init__(self, http: Http):
        self.http = http

    @staticmethod
    def default_base_url(credentials: Mapping[str, str]) -> str:
        return "https://connect.squareup.com"

    @staticmethod
    def auth_headers(credentials: Mapping[str, str]) -> dict[str, str]:
        return {"Authorization": f"Bearer {credentials['access_token']}", "Square-Version": API_VERSION}

    def read(self, external_ids: Sequence[str]) -> dict[str, bool]:
        online: dict[str, bool] = {}
        ids = list(dict.fromkeys(external_ids))
        for start in range(0, len(ids), BATCH_LIMIT):
            chunk = ids[start : start + BATCH_LIMIT]
            reply = self.http.send("POST", "/v2/catalog/batch-retrieve", {"object_ids": chunk})
            if not reply.ok:
                raise ConnectorError(
                    f"Square refused to list the services ({reply.status}): {error_detail(reply.body)}"
                )
            for item in (reply.body or {}).get("objects") or []:
                if _is_variation(item):
                    online[item["id"]] = _online(item)
        return online

    def switch(self, external_id: str, online: bool) -> bool:
        for _ in range(VERSION_RETRIES):
            variation = self._retrieve(external_id)
            if variation is None or _online(variation) == online:
                return False
            body = {"idempotency_key": str(uuid.uuid4()), "object": _writable(variation, online)}
            reply = self.http.send("POST", "/v2/catalog/object", body)
            if reply.ok:
                return True
            if not _conflict(reply.body):
                raise ConnectorError(
                    f"Square refused to update {external_id} ({reply.status}): {error_detail(reply.body)}"
                )
        raise ConnectorError(
            f"Square kept refusing {external_id} as changed meanwhile ({VERSION_RETRIES} tries)."
        )

    def cancel_booking(self, booking_id: str, version: int | None, idempotency_key: str) -> bool:
        """Cancel a booking (scope APPOINTMENTS_ALL_WRITE for bookings the seller's staff or
        customers made); False if it is already cancelled, declined or gone. A stale
        `booking_version` is read again and retried."""
        path = f"/v2/bookings/{quote(booking_id, safe='')}"
        for attempt in range(VERSION_RETRIES):
            if version is None or attempt > 0:  # read the booking's current version
                reply = self.http.send("GET", path)
                booking = (reply.body or {}).get("booking") if reply.ok else None
                if booking is None or booking.get("status") not in LIVE_BOOKINGS:
                    return False
                version = booking.get("version")
            body = {"idempotency_key": idempotency_key, "booking_version": version}
            reply = self.http.send("POST", f"{path}/cancel", body)
            if reply.ok:
                return True
            if reply.status == 404:
                return False
            if not _conflict(reply.body):
                raise ConnectorError(f"Square refused to cancel booking {booking_id} ({reply.status}): "
                                     f"{error_detail(reply.body)}")  # fmt: skip
        raise ConnectorError(f"Square kept refusing to cancel {booking_id} as changed meanwhile.")

    def _retrieve(self, external_id: str) -> dict[str, Any] | None:
        reply = self.http.send("GET", f"/v2/catalog/object/{quote(external_id, safe='')}")
        if reply.status == 404:
            return None
        if not reply.ok:
            raise ConnectorError(
                f"Square refused to read {external_id} ({reply.status}): {error_detail(reply.body)}"
            )
        item = (reply.body or {}).get("object")
        return item if _is_variation(item) else None


def _is_variation(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("type") == "ITEM_VARIATION"
        and not item.get("is_deleted")
        and isinstance(item.get("item_variation_data"), dict)
    )


def _online(variation: dict[str, Any]) -> bool:
    return variation["item_variation_data"].get("available_for_booking") is True


def _writable(variation: dict[str, Any], online: bool) -> dict[str, Any]:
    """The variation as read, with `available_for_booking` set and Square's read-only fields left
    out (Square keeps its own values of those; sending them is refused)."""
    data = {k: v for k, v in variation["item_variation_data"].items() if k not in READ_ONLY_VARIATION}
    data["available_for_booking"] = online
    return {k: v for k, v in variation.items() if k not in READ_ONLY_OBJECT} | {"item_variation_data": data}


def _conflict(body: Any) -> bool:
    errors = body.get("errors") if isinstance(body, dict) else None
    return any(isinstance(e, dict) and e.get("code") in CONFLICT_CODES for e in errors or [])


def notification_signed(
    signature_key: str, notification_url: str, body: bytes, signature: str | None
) -> bool:
    """Square signs each notification: base64 HMAC-SHA256, keyed with the subscription's signature
    key, of the notification URL (exactly as configured in Square) followed by the raw body."""
    if not signature:
        return False
    digest = hmac.new(signature_key.encode(), notification_url.encode() + body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), signature)
