"""Square guard mode: signed booking notifications, each handled once; slipped-through bookings of
what the clinic does not offer are flagged, or cancelled when configured"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from tests.connectors.conftest import approved, connect
from tests.helpers import add_treatment

KEY = "sq-signature-key-1234"


def signed(url: str, body: bytes, key: str = KEY) -> dict[str, str]:
    digest = hmac.new(key.encode(), url.encode() + body, hashlib.sha256).digest()
    return {
        "x-square-hmacsha256-signature": base64.b64encode(digest).decode(),
        "Content-Type": "application/json",
    }


@pytest.fixture
def guarded(app, client, admin, square):
    """A Square connector guarding bookings; exosomes not offered (SQ-EXO), botox offered (SQ-BTX),
    a consultation mapped to no treatment (SQ-CON)."""
    add_treatment(app, "exosomes", "not_approved", external_ids={"square": "SQ-EXO"})
    approved(app, "botox", external_ids={"square": "SQ-BTX"})
    for variation_id, name in (("SQ-EXO", "Exosome facial"), ("SQ-BTX", "Botox"), ("SQ-CON", "Consultation")):
        square.add_service(variation_id, name)

    def make(action: str = "flag") -> tuple[str, str]:
        connector = connect(client, admin, square)
        url = f"http://127.0.0.1/v1/connectors/{connector['id']}/events"  # as configured in Square
        etag = client.get(f"/v1/connectors/{connector['id']}", headers=admin).headers["ETag"]
        guard = {"signature_key": KEY, "notification_url": url, "action": action}
        changed = client.patch(f"/v1/connectors/{connector['id']}", json={"guard": guard},
                               headers=admin | {"If-Match": etag})  # fmt: skip
        assert changed.status_code == 200 and changed.get_json()["guard"] == {
            "notification_url": url,
            "action": action,
        }
        assert KEY not in changed.get_data(as_text=True)
        return f"/v1/connectors/{connector['id']}/events", url

    return make


def blocked_events(client):
    return [
        e for e in client.get("/v1/changes").get_json()["events"] if e["type"] == "connector.booking_blocked"
    ]


def test_unsigned_and_forged_notifications_are_refused(client, square, guarded):
    path, url = guarded()
    square.add_booking("BK-1", "SQ-EXO")
    body = square.notification("BK-1", "evt-1")
    assert client.post(path, data=body, content_type="application/json").status_code == 401
    forged = client.post(path, data=body, headers=signed(url, body, key="not-the-key"))
    assert forged.status_code == 401 and forged.get_json()["type"].endswith("/bad-signature")
    tampered = body.replace(b"SQ-EXO", b"SQ-BTX")
    assert client.post(path, data=tampered, headers=signed(url, body)).status_code == 401
    assert blocked_events(client) == []


def test_a_slipped_through_booking_is_flagged_and_a_repeat_is_not_processed_again(
    client, admin, square, guarded
):
    path, url = guarded()
    square.add_booking("BK-1", "SQ-EXO", "SQ-CON")
    body = square.notification("BK-1", "evt-1")
    first = client.post(path, data=body, headers=signed(url, body))
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["outcome"] == "flagged"
    assert first.get_json()["blocked"] == [
        {"external_id": "SQ-EXO", "slug": "exosomes", "reason": "not_approved"}
    ]  # the consultation maps to no treatment: left alone
    events = blocked_events(client)
    assert (
        len(events) == 1
        and events[0]["data"]["booking_id"] == "BK-1"
        and events[0]["data"]["action"] == "flagged"
    )
    assert square.bookings["BK-1"]["status"] == "ACCEPTED"  # flagged, not cancelled

    again = client.post(path, data=body, headers=signed(url, body))  # Square retries
    assert again.status_code == 200 and again.get_json() == first.get_json()
    assert len(blocked_events(client)) == 1
    notifications = client.get(path.replace("/events", "/notifications"), headers=admin).get_json()
    assert [n["outcome"] for n in notifications] == ["flagged"]
    audit = client.get("/v1/treatments/exosomes/audit", headers=admin).get_json()
    assert [r["action"] for r in audit if r["entity"] == "connector"][-1] == "booking_flagged"


def test_with_cancel_the_booking_is_cancelled_in_square_and_recorded(client, square, guarded):
    path, url = guarded("cancel")
    square.add_booking("BK-2", "SQ-EXO")
    square.bookings["BK-2"]["version"] = 3  # changed since the notification was sent: a stale version
    stale = square.notification("BK-2", "evt-2")
    square.bookings["BK-2"]["version"] = 4
    answer = client.post(path, data=stale, headers=signed(url, stale))
    assert answer.status_code == 200 and answer.get_json()["outcome"] == "cancelled"
    assert square.bookings["BK-2"]["status"] == "CANCELLED_BY_SELLER"
    assert blocked_events(client)[0]["data"]["action"] == "cancelled"
    cancels = [b for m, p, b in square.requests if p.endswith("/cancel")]
    assert [c["booking_version"] for c in cancels] == [3, 4]  # the stale one refused, read again, retried
    assert len({c["idempotency_key"] for c in cancels}) == 1


def test_a_booking_of_what_the_clinic_offers_is_allowed(client, square, guarded):
    path, url = guarded("cancel")
    square.add_booking("BK-3", "SQ-BTX")
    body = square.notification("BK-3", "evt-3", "booking.updated")
    answer = client.post(path, data=body, headers=signed(url, body))
    assert answer.get_json()["outcome"] == "allowed" and square.bookings["BK-3"]["status"] == "ACCEPTED"
    assert blocked_events(client) == []


def test_a_cancel_square_cannot_take_now_fails_the_notification_so_square_sends_it_again(
    client, square, guarded
):
    path, url = guarded("cancel")
    square.add_booking("BK-4", "SQ-EXO")
    square.fail("POST", "/v2/bookings/", 503, times=4)
    body = square.notification("BK-4", "evt-4")
    failed = client.post(path, data=body, headers=signed(url, body))
    assert failed.status_code == 503 and failed.headers["Retry-After"]
    assert blocked_events(client) == []  # nothing recorded: the retry is processed afresh
    retried = client.post(path, data=body, headers=signed(url, body))
    assert (
        retried.get_json()["outcome"] == "cancelled"
        and square.bookings["BK-4"]["status"] == "CANCELLED_BY_SELLER"
    )


def test_guard_mode_is_for_square_and_needs_its_fields(client, admin, square):
    connector = connect(client, admin, square)
    guard = {"signature_key": KEY, "notification_url": "https://x.example/e"}
    cliniko = {"system": "cliniko", "name": "C", "base_url": "https://x.example",
               "credentials": {"api_key": "k-uk1", "user_agent": "A (a@b.example)"}}  # fmt: skip
    bad = client.post("/v1/connectors", json=cliniko | {"guard": guard}, headers=admin)
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "guard"
    created = client.post("/v1/connectors", json=cliniko, headers=admin)
    stored = client.patch(f"/v1/connectors/{created.get_json()['id']}", json={"guard": guard},
                          headers=admin | {"If-Match": created.headers["ETag"]})  # fmt: skip
    assert stored.status_code == 409  # a fine body that the stored Cliniko connector cannot take
    square_ = {"system": "square", "name": "S", "credentials": {"access_token": "t"}}
    missing = client.post("/v1/connectors", json=square_ | {"guard": {"notification_url": "https://x.example/e"}},
                          headers=admin)  # fmt: skip
    assert missing.status_code == 422
    unguarded = client.post(
        f"/v1/connectors/{connector['id']}/events", data=b"{}", content_type="application/json"
    )
    assert unguarded.status_code == 404
