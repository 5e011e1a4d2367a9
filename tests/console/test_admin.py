"""Administration in the console: people (roles, sign-out everywhere), API keys, webhooks and
booking-system connectors; admins only"""

from __future__ import annotations

import re

import pytest

from tests.conftest import execute
from tests.helpers import create_treatment

ADMIN_PAGES = ("/console/admin", "/console/people", "/console/admin/keys", "/console/admin/webhooks",
               "/console/admin/connectors")  # fmt: skip


@pytest.mark.parametrize("role", ["editor", "reviewer"])
def test_only_admins_reach_administration(signed_in, role):
    browser = signed_in(role)
    for path in ADMIN_PAGES:
        response = browser.get(path)
        assert response.status_code == 403, path
        assert response.headers["Cache-Control"] == "no-store"
    assert "Administration" not in browser.get("/console/").get_data(as_text=True)
    for path in ("/console/admin/keys", "/console/admin/webhooks"):
        assert (
            browser.post(path, {"name": "x", "role": "admin", "url": "https://example.org/x"}).status_code
            == 403
        )


def test_an_admin_changes_a_role_and_signs_a_person_out_everywhere(app, signed_in, make_person):
    admin = signed_in("admin")
    email = make_person("editor")
    user_id = execute(app, f"SELECT id FROM staff_users WHERE email = '{email}'")[0][0]
    admin.get("/console/people")
    changed = admin.post(f"/console/people/{user_id}/role", {"role": "reviewer"})
    assert changed.status_code == 302
    assert execute(app, f"SELECT role FROM staff_users WHERE id = {user_id}")[0][0] == "reviewer"
    assert admin.post(f"/console/people/{user_id}/role", {"role": "owner"}).status_code == 422

    from tests.console.conftest import Console

    person = Console(app.test_client())
    person.sign_in(email)
    assert person.get("/console/").status_code == 200
    admin.get("/console/people")
    out = admin.post(f"/console/people/{user_id}/sign-out")
    assert out.status_code == 302 and "signed out everywhere (1 session ended)" in admin.get(
        "/console/people"
    ).get_data(as_text=True)
    assert person.get("/console/").status_code == 302  # back to sign-in


def test_the_last_active_admin_keeps_the_role(app, signed_in):
    admin = signed_in("admin")
    admins = execute(app, "SELECT id FROM staff_users WHERE role = 'admin'")
    assert len(admins) == 1
    admin.get("/console/people")
    refused = admin.post(f"/console/people/{admins[0][0]}/role", {"role": "editor"})
    assert refused.status_code == 409 and "last active admin" in refused.get_data(as_text=True)
    assert execute(app, f"SELECT role FROM staff_users WHERE id = {admins[0][0]}")[0][0] == "admin"


def test_an_admin_creates_a_key_shown_once_sees_its_last_use_and_revokes_it(app, client, signed_in):
    admin = signed_in("admin")
    admin.get("/console/admin/keys")
    page = admin.post("/console/admin/keys", {"name": "booking-widget", "role": "editor"})
    assert page.status_code == 200
    key = re.search(r'id="new-key-value">([^<]+)<', page.get_data(as_text=True)).group(1)
    assert "booking-widget" in admin.get("/console/admin/keys").get_data(as_text=True)
    assert key not in admin.get("/console/admin/keys").get_data(as_text=True)  # shown once
    assert admin.post("/console/admin/keys", {"name": "booking-widget", "role": "editor"}).status_code == 409
    assert admin.post("/console/admin/keys", {"name": "", "role": "editor"}).status_code == 422

    assert client.get("/v1/reviews/due", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    listed = admin.get("/console/admin/keys").get_data(as_text=True)
    row = listed.split("booking-widget", 1)[1].split("</tr>", 1)[0]
    assert "never" not in row  # last used is shown

    key_id = execute(app, "SELECT id FROM api_keys WHERE name = 'booking-widget'")[0][0]
    assert admin.post(f"/console/admin/keys/{key_id}/revoke").status_code == 302
    assert client.get("/v1/reviews/due", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert "revoked" in admin.get("/console/admin/keys").get_data(as_text=True)


def test_an_admin_subscribes_a_webhook_sees_deliveries_redelivers_and_switches_it_off(
    app, client, auth, signed_in
):
    admin = signed_in("admin")
    admin.get("/console/admin/webhooks")
    bad = admin.post("/console/admin/webhooks", {"url": "ftp://example.org/x"})
    assert bad.status_code == 422 and "Not subscribed" in bad.get_data(as_text=True)
    created = admin.post(
        "/console/admin/webhooks", {"url": "https://example.org/hook", "event_types": "study.created"}
    )
    assert created.status_code == 200 and "signing secret" in created.get_data(as_text=True)
    webhook_id = execute(app, "SELECT id FROM webhook_subscriptions")[0][0]

    editor = auth("editor")
    slug = create_treatment(client, editor)["slug"]
    client.post(f"/v1/treatments/{slug}/studies", json={"title": "An RCT", "design": "rct"}, headers=editor)
    page = admin.get(f"/console/admin/webhooks/{webhook_id}").get_data(as_text=True)
    assert "study.created" in page
    delivery_id = execute(app, "SELECT id FROM webhook_deliveries")[0][0]
    execute(app, f"UPDATE webhook_deliveries SET state = 'failed' WHERE id = {delivery_id}")
    again = admin.post(f"/console/admin/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
    assert again.status_code == 302
    assert execute(app, f"SELECT state FROM webhook_deliveries WHERE id = {delivery_id}")[0][0] == "pending"

    shown = admin.get(f"/console/admin/webhooks/{webhook_id}")
    etag = re.search(r'name="etag" value="([^"]+)"', shown.get_data(
        as_text=True
    )).group(1).replace("&#34;", '"')  # fmt: skip
    off = admin.post(f"/console/admin/webhooks/{webhook_id}/active", {"active": "false", "etag": etag})
    assert off.status_code == 302, off.get_data(as_text=True)
    assert "switched off" in admin.get(off.headers["Location"]).get_data(as_text=True)
    assert execute(app, f"SELECT active FROM webhook_subscriptions WHERE id = {webhook_id}")[0][0] in (
        False,
        0,
    )
    assert execute(app, f"SELECT state FROM webhook_deliveries WHERE id = {delivery_id}")[0][0] == "failed"
    stale = admin.post(f"/console/admin/webhooks/{webhook_id}/active", {"active": "true", "etag": etag})
    assert "changed after you opened" in admin.get(stale.headers["Location"]).get_data(as_text=True)


def test_an_admin_sees_a_connectors_status_and_calls_and_asks_for_a_sync(app, client, auth, signed_in):
    admin_key = auth("admin")
    body = {"system": "square", "name": "Front desk Square", "credentials": {"access_token": "t0ken"}}
    connector = client.post("/v1/connectors", json=body, headers=admin_key)
    assert connector.status_code == 201, connector.get_json()
    connector_id = connector.get_json()["id"]
    execute(app, f"UPDATE connector_states SET sync_requested_at = NULL, last_error = 'HTTP 401 from Square' "
                 f"WHERE connector_id = {connector_id}")  # fmt: skip
    columns = "connector_id, at, method, path, status, duration_ms"
    values = f"{connector_id}, '2026-12-01 10:00:00', 'GET', '/v2/catalog/list', 401, 42"
    execute(app, f"INSERT INTO connector_calls ({columns}) VALUES ({values})")
    admin = signed_in("admin")
    listed = admin.get("/console/admin/connectors").get_data(as_text=True)
    assert "Front desk Square" in listed and "HTTP 401 from Square" in listed
    page = admin.get(f"/console/admin/connectors/{connector_id}").get_data(as_text=True)
    assert "/v2/catalog/list" in page and "42 ms" in page
    assert admin.post(f"/console/admin/connectors/{connector_id}/sync").status_code == 302
    assert execute(
        app, f"SELECT sync_requested_at FROM connector_states WHERE connector_id = {connector_id}"
    )[0][0]
    assert admin.get("/console/admin/connectors/999999").status_code == 404
