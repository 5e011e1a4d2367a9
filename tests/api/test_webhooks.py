"""Webhook subscriptions through the API: admins only, https, the secret shown once"""

from __future__ import annotations

import ast
import base64
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from standardwebhooks import Webhook

from api.changes.service import EVENT_TYPES
from api.db import get_engine
from api.outbound import is_loopback_host
from api.webhooks.service import url_problem
from tests.helpers import create_treatment

PROBLEM = "application/problem+json"
HOOK = {"url": "https://booking.example.com/hooks/tpa", "description": "Booking system"}


def subscribe(client: Any, headers: dict[str, str], **fields: Any) -> Any:
    response = client.post("/v1/webhooks", json=HOOK | fields, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    return response.get_json()


def error_fields(response: Any) -> set[str]:
    return {e["field"] for e in assert_problem(response, 422)["errors"]}


# --- create, read: the secret once -----------------------------------------------------------


def test_an_admin_subscribes_and_sees_the_secret_only_in_the_answer(client, admin):
    response = subscribe(client, admin, event_types=["treatment.status_changed"])
    body = response.get_json()
    assert body["url"] == HOOK["url"]
    assert body["event_types"] == ["treatment.status_changed"]
    assert (body["active"], body["consecutive_failures"], body["disabled_reason"]) == (True, 0, None)
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24
    Webhook(secret)  # the library accepts it as it is
    assert response.headers["ETag"]

    one = client.get(f"/v1/webhooks/{body['id']}", headers=admin)
    assert one.status_code == 200
    assert "secret" not in one.get_json()
    assert secret not in one.get_data(as_text=True)
    listed = client.get("/v1/webhooks", headers=admin)
    assert [w["id"] for w in listed.get_json()] == [body["id"]]
    assert secret not in listed.get_data(as_text=True)


def test_every_subscription_gets_its_own_secret(client, admin):
    first = subscribe(client, admin).get_json()["secret"]
    second = subscribe(client, admin).get_json()["secret"]
    assert first != second


def test_an_empty_event_type_list_means_every_type(client, admin):
    assert subscribe(client, admin, event_types=[]).get_json()["event_types"] == []
    assert (
        client.post("/v1/webhooks", json={"url": HOOK["url"]}, headers=admin).get_json()["event_types"] == []
    )


# --- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["editor", "reviewer"])
@pytest.mark.parametrize(
    "method, path",
    [("get", "/v1/webhooks"), ("post", "/v1/webhooks"), ("get", "/v1/webhooks/{id}"),
     ("patch", "/v1/webhooks/{id}"), ("delete", "/v1/webhooks/{id}"), ("get", "/v1/webhooks/{id}/deliveries"),
     ("post", "/v1/webhooks/{id}/deliveries/1/redeliver")],
)  # fmt: skip
def test_only_admins_manage_webhooks(client, admin, auth, role, method, path):
    webhook_id = subscribe(client, admin).get_json()["id"]
    url = path.format(id=webhook_id)
    forbidden = getattr(client, method)(url, json=HOOK, headers=auth(role) | {"If-Match": "*"})
    assert assert_problem(forbidden, 403)["type"] == "/problems/forbidden"
    assert_problem(getattr(client, method)(url, json=HOOK), 401)
    assert client.get(f"/v1/webhooks/{webhook_id}", headers=admin).status_code == 200


# --- the URL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://booking.example.com/hooks", "http://10.0.0.5/hooks", "ftp://booking.example.com/hooks",
     "https://user:password@booking.example.com/hooks", "not a url", "https://" + "a" * 1990 + ".com/"],
    ids=["plain-http", "http-private-ip", "ftp", "credentials", "not-a-url", "too-long"],
)  # fmt: skip
def test_a_webhook_url_must_be_https(client, admin, url):
    assert error_fields(client.post("/v1/webhooks", json=HOOK | {"url": url}, headers=admin)) == {"url"}
    assert client.get("/v1/webhooks", headers=admin).get_json() == []


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://localhost/hook", "http://[::1]:8080/"])
def test_plain_http_to_a_loopback_host_needs_the_development_setting(client, admin, app, url):
    assert app.config["WEBHOOKS_ALLOW_LOOPBACK_HTTP"] is False  # the default
    refused = client.post("/v1/webhooks", json=HOOK | {"url": url}, headers=admin)
    assert "WEBHOOKS_ALLOW_LOOPBACK_HTTP" in assert_problem(refused, 422)["errors"][0]["message"]
    app.config["WEBHOOKS_ALLOW_LOOPBACK_HTTP"] = True
    try:
        assert subscribe(client, admin, url=url).get_json()["url"] == url
    finally:
        app.config["WEBHOOKS_ALLOW_LOOPBACK_HTTP"] = False


@pytest.mark.parametrize(
    "host, loopback",
    [("127.0.0.1", True), ("127.200.3.4", True), ("::1", True), ("localhost", True), ("LOCALHOST", True),
     ("128.0.0.1", False), ("10.0.0.1", False), ("localhost.example.com", False), ("0.0.0.0", False),
     ("", False), (None, False)],
)  # fmt: skip
def test_loopback_hosts(host, loopback):
    assert is_loopback_host(host) is loopback


def test_https_is_always_allowed_and_plain_http_elsewhere_never():
    assert url_problem("https://example.com/x", allow_loopback_http=False) is None
    assert url_problem("http://example.com/x", allow_loopback_http=True)
    assert url_problem("http://127.0.0.1/x", allow_loopback_http=True) is None


# --- other fields ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, field",
    [({"event_types": ["treatment.deleted"]}, "event_types.0"),
     ({"event_types": ["decision.recorded", "decision.recorded"]}, "event_types"),
     ({"event_types": "decision.recorded"}, "event_types"),
     ({"description": "x" * 501}, "description"), ({"description": "bell\x07"}, "description"),
     ({"active": 1}, "active"), ({"secret": "whsec_bWluZQ=="}, "secret"),
     ({"consecutive_failures": 0}, "consecutive_failures")],
    ids=["unknown-type", "duplicate-type", "not-a-list", "long-description", "control-char", "int-active",
         "own-secret", "read-only"],
)  # fmt: skip
def test_invalid_fields_are_422(client, admin, fields, field):
    assert field in error_fields(client.post("/v1/webhooks", json=HOOK | fields, headers=admin))


# --- update, delete --------------------------------------------------------------------------


def test_an_update_needs_the_current_etag(client, admin):
    created = subscribe(client, admin)
    webhook_id, etag = created.get_json()["id"], created.headers["ETag"]
    path = f"/v1/webhooks/{webhook_id}"
    assert_problem(client.patch(path, json={"description": "x"}, headers=admin), 428)
    assert_problem(
        client.patch(path, json={"description": "x"}, headers=admin | {"If-Match": '"w0-v0"'}), 412
    )
    change = {"description": "Partner app", "event_types": ["decision.recorded"],
              "url": "https://partner.example.com/in"}  # fmt: skip
    updated = client.patch(path, json=change, headers=admin | {"If-Match": etag})
    assert updated.status_code == 200, updated.get_json()
    body = updated.get_json()
    assert (body["description"], body["event_types"], body["url"]) == (
        "Partner app", ["decision.recorded"], "https://partner.example.com/in",
    )  # fmt: skip
    assert "secret" not in body
    assert updated.headers["ETag"] != etag
    assert_problem(client.patch(path, json={"active": False}, headers=admin | {"If-Match": etag}), 412)


def test_an_update_checks_the_url_too(client, admin):
    created = subscribe(client, admin)
    path, etag = f"/v1/webhooks/{created.get_json()['id']}", created.headers["ETag"]
    response = client.patch(path, json={"url": "http://example.com/"}, headers=admin | {"If-Match": etag})
    assert error_fields(response) == {"url"}
    assert client.get(path, headers=admin).get_json()["url"] == HOOK["url"]


def test_reactivating_clears_the_failures_and_the_reason(client, admin, app):
    webhook_id = subscribe(client, admin).get_json()["id"]
    with app.app_context(), get_engine().begin() as conn:
        conn.execute(
            text("UPDATE webhook_subscriptions SET active = false, consecutive_failures = 20, version = 7, "
                 "disabled_reason = 'Disabled after 20 consecutive failed attempts' WHERE id = :id"),
            {"id": webhook_id},
        )  # fmt: skip
    current = client.get(f"/v1/webhooks/{webhook_id}", headers=admin)
    assert current.get_json()["disabled_reason"].startswith("Disabled after 20")
    response = client.patch(f"/v1/webhooks/{webhook_id}", json={"active": True},
                            headers=admin | {"If-Match": current.headers["ETag"]})  # fmt: skip
    body = response.get_json()
    assert (body["active"], body["consecutive_failures"], body["disabled_reason"]) == (True, 0, None)


def test_deleting_a_subscription(client, admin):
    webhook_id = subscribe(client, admin).get_json()["id"]
    assert_problem(client.delete(f"/v1/webhooks/{webhook_id}", headers=admin | {"If-Match": '"w0-v0"'}), 412)
    assert client.delete(f"/v1/webhooks/{webhook_id}", headers=admin).status_code == 204
    assert_problem(client.get(f"/v1/webhooks/{webhook_id}", headers=admin), 404)
    assert_problem(client.delete(f"/v1/webhooks/{webhook_id}", headers=admin), 404)


# --- deliveries ------------------------------------------------------------------------------


def test_unknown_subscriptions_and_deliveries_are_404(client, admin):
    assert_problem(client.get("/v1/webhooks/999", headers=admin), 404)
    assert_problem(client.get("/v1/webhooks/999/deliveries", headers=admin), 404)
    webhook_id = subscribe(client, admin).get_json()["id"]
    assert client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=admin).get_json() == []
    assert_problem(client.post(f"/v1/webhooks/{webhook_id}/deliveries/999/redeliver", headers=admin), 404)
    assert client.get("/v1/webhooks/99999999999", headers=admin).status_code == 404


def test_a_subscription_is_queued_each_event_it_wants(client, admin, auth, app):
    everything = subscribe(client, admin).get_json()["id"]
    status_only = subscribe(client, admin, event_types=["treatment.status_changed"]).get_json()["id"]
    inactive = subscribe(client, admin, active=False).get_json()["id"]
    slug = create_treatment(client, auth("editor"))["slug"]
    decision = {"status": "not_approved", "reason": "No evidence."}
    assert (
        client.post(f"/v1/treatments/{slug}/decisions", headers=auth("reviewer"), json=decision).status_code
        == 201
    )

    def types(webhook_id: int) -> list[str]:
        response = client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=admin)
        assert response.status_code == 200
        return [d["event_type"] for d in reversed(response.get_json())]  # oldest first

    assert types(everything) == [
        "treatment.created", "decision.recorded", "decision.recorded", "treatment.status_changed",
    ]  # fmt: skip
    assert types(status_only) == ["treatment.status_changed"]
    assert types(inactive) == []
    (delivery,) = client.get(f"/v1/webhooks/{status_only}/deliveries", headers=admin).get_json()
    assert (delivery["state"], delivery["attempt_count"], delivery["attempts"]) == ("pending", 0, [])
    assert delivery["treatment"] == slug
    page = client.get(f"/v1/webhooks/{everything}/deliveries?limit=2", headers=admin).get_json()
    older = client.get(
        f"/v1/webhooks/{everything}/deliveries?before={page[-1]['id']}", headers=admin
    ).get_json()
    assert [d["event_type"] for d in page + older] == list(reversed(types(everything)))
    assert client.get(f"/v1/webhooks/{everything}/deliveries?state=delivered", headers=admin).get_json() == []
    assert error_fields(client.get(f"/v1/webhooks/{everything}/deliveries?state=lost", headers=admin)) == {
        "state"
    }


def test_redelivery_to_an_inactive_subscription_is_a_409(client, admin, auth):
    created = subscribe(client, admin)
    webhook_id = created.get_json()["id"]
    create_treatment(client, auth("editor"))
    (first, *_) = client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=admin).get_json()
    client.patch(
        f"/v1/webhooks/{webhook_id}",
        json={"active": False},
        headers=admin | {"If-Match": created.headers["ETag"]},
    )
    deliveries = client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=admin).get_json()
    assert {d["state"] for d in deliveries} == {"failed"}  # deactivating gives up what was pending
    response = client.post(f"/v1/webhooks/{webhook_id}/deliveries/{first['id']}/redeliver", headers=admin)
    assert assert_problem(response, 409)["type"] == "/problems/webhook-inactive"


# --- event types -----------------------------------------------------------------------------


def test_every_event_type_the_code_records_can_be_subscribed_to():
    """`EVENT_TYPES` is the one list: a new `record_change(session, "x.y", ...)` must be in it."""
    recorded = set()
    for path in (Path(__file__).resolve().parents[2] / "api").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "record_change":
                kind = node.args[1]
                if isinstance(kind, ast.Constant):
                    recorded.add(kind.value)
                else:  # f"{kind}.{action}" for studies and regulatory entries
                    recorded |= {
                        f"{k}.{a}" for k in ("study", "regulatory") for a in ("created", "updated", "deleted")
                    }
    assert recorded and recorded <= set(EVENT_TYPES), recorded - set(EVENT_TYPES)
