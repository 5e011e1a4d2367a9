"""`/v1/connectors`: admins configure a booking system; credentials go in and never come out"""

from __future__ import annotations

import pytest

from api.connectors import service
from api.connectors.vault import Vault, new_key
from tests.conftest import TEST_SECRET_KEY
from tests.connectors.conftest import connect
from tests.helpers import add_treatment

SQUARE = {"system": "square", "name": "Square", "credentials": {"access_token": "EAAA-secret"}}


def test_an_admin_connects_square_and_the_answer_never_carries_the_credentials(client, admin):
    created = client.post("/v1/connectors", json=SQUARE, headers=admin)
    assert created.status_code == 201
    body = created.get_json()
    assert body["base_url"] == "https://connect.squareup.com"  # the vendor's production address
    assert "credentials" not in body and "EAAA-secret" not in created.get_data(as_text=True)
    assert body["status"]["counts"] == dict.fromkeys(
        ("in_step", "hidden", "drift_corrected", "unmapped", "missing", "orphaned"), 0
    )
    read = client.get(f"/v1/connectors/{body['id']}", headers=admin)
    assert read.get_json() == body and read.headers["ETag"] == created.headers["ETag"]
    assert client.get("/v1/connectors", headers=admin).get_json() == [body]


@pytest.mark.parametrize(
    "change, field",
    [({"system": "acuity"}, "system"), ({"system": {"name": "square"}}, "system"),
     ({"system": ["square"]}, "system"), ({"credentials": {}}, "credentials.access_token"),
     ({"credentials": {"token": "x"}}, "credentials.token"), ({"name": ""}, "name"),
     ({"base_url": "http://square.example.com"}, "base_url"),
     ({"base_url": "https://10.0.0.1/"}, "base_url")],
    ids=["unknown-system", "system-object", "system-list", "no-credentials", "wrong-credential",
         "blank-name", "plain-http", "private-ip"],
)  # fmt: skip
def test_a_bad_connector_is_refused_and_nothing_is_stored(client, admin, change, field):
    refused = client.post("/v1/connectors", json=SQUARE | change, headers=admin)
    assert refused.status_code == 422, refused.get_json()
    assert field in {e["field"] for e in refused.get_json()["errors"]}
    assert client.get("/v1/connectors", headers=admin).get_json() == []


def test_plain_http_to_this_machine_needs_the_development_setting(app, client, admin, monkeypatch):
    local = SQUARE | {"base_url": "http://127.0.0.1:9/"}
    refused = client.post("/v1/connectors", json=local, headers=admin)
    assert "TPA_CONNECTORS_ALLOW_LOOPBACK_HTTP" in refused.get_json()["errors"][0]["message"]
    monkeypatch.setitem(app.config, "CONNECTORS_ALLOW_LOOPBACK_HTTP", True)
    assert client.post("/v1/connectors", json=local, headers=admin).status_code == 201


def test_only_admins_see_or_change_connectors(client, auth):
    assert client.get("/v1/connectors").status_code == 401
    for role in ("editor", "reviewer"):
        assert client.get("/v1/connectors", headers=auth(role)).status_code == 403
        assert client.post("/v1/connectors", json=SQUARE, headers=auth(role)).status_code == 403


def test_without_secret_keys_no_credentials_are_taken(app, client, admin, monkeypatch):
    monkeypatch.setitem(app.extensions, "connector_vault", Vault(()))
    refused = client.post("/v1/connectors", json=SQUARE, headers=admin)
    assert refused.status_code == 503 and "TPA_SECRET_KEYS" in refused.get_json()["detail"]
    assert client.get("/v1/connectors", headers=admin).get_json() == []


def test_patch_needs_the_current_etag_and_the_workers_bookkeeping_never_changes_it(
    app, client, admin, square, passes
):
    add_treatment(app, "exosomes", "not_approved", external_ids={"square": "VAR-EXO"})
    square.add_service("VAR-EXO", "Exosome facial")
    connector = connect(client, admin, square)
    url = f"/v1/connectors/{connector['id']}"
    etag = client.get(url, headers=admin).headers["ETag"]
    assert client.patch(url, json={"name": "Square HQ"}, headers=admin).status_code == 428
    passes.run(connector["id"], None)  # a pass: status, counts, calls all change
    passes.run(connector["id"], None)
    assert client.get(url, headers=admin).headers["ETag"] == etag
    changed = client.patch(url, json={"name": "Square HQ"}, headers=admin | {"If-Match": etag})
    assert changed.status_code == 200 and changed.get_json()["name"] == "Square HQ"
    assert client.patch(url, json={"active": False}, headers=admin | {"If-Match": etag}).status_code == 412
    new_etag = changed.headers["ETag"]
    assert client.delete(url, headers=admin | {"If-Match": new_etag}).status_code == 204
    assert client.get(url, headers=admin).status_code == 404


def test_new_credentials_replace_the_old_and_are_checked(app, client, admin, square):
    connector = connect(client, admin, square)
    url = f"/v1/connectors/{connector['id']}"
    etag = client.get(url, headers=admin).headers["ETag"]
    shapeless = client.patch(url, json={"credentials": {"api_key": "x"}}, headers=admin | {"If-Match": etag})
    assert shapeless.status_code == 422  # no system's credentials
    clinikos = {"api_key": "MS0x-uk1", "user_agent": "App (it@clinic.example)"}
    bad = client.patch(url, json={"credentials": clinikos}, headers=admin | {"If-Match": etag})
    assert bad.status_code == 409  # Cliniko's kind of credentials, for a Square connector
    new = {"access_token": "EAAA-rotated-by-staff"}
    good = client.patch(url, json={"credentials": new}, headers=admin | {"If-Match": etag})
    assert good.status_code == 200 and new["access_token"] not in good.get_data(as_text=True)
    with app.app_context():
        from api.db import get_session

        token = service.find_connector(get_session(), connector["id"]).credentials
        assert app.extensions["connector_vault"].open(token) == new


def test_asking_for_a_sync_queues_a_full_pass(client, admin, square):
    connector = connect(client, admin, square)
    asked = client.post(f"/v1/connectors/{connector['id']}/sync", headers=admin)
    assert asked.status_code == 202 and asked.get_json()["status"]["sync_requested_at"]
    assert client.post("/v1/connectors/999/sync", headers=admin).status_code == 404


def test_rotating_keys_re_encrypts_with_the_newest_and_keeps_the_etag(app, client, admin, square, runner):
    connector = connect(client, admin, square)
    url = f"/v1/connectors/{connector['id']}"
    etag = client.get(url, headers=admin).headers["ETag"]
    newest = new_key()
    rotated = Vault((newest, TEST_SECRET_KEY))
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(app.extensions, "connector_vault", rotated)
        result = runner.invoke(args=["connectors", "rotate-keys"])
    assert result.exit_code == 0 and "1 connector" in result.output
    with app.app_context():
        from api.db import get_session

        token = service.find_connector(get_session(), connector["id"]).credentials
    assert Vault((newest,)).open(token) == {"access_token": square.token}  # the old key is no longer needed
    assert client.get(url, headers=admin).headers["ETag"] == etag
