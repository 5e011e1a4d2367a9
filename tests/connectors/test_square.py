"""Square, hide mode: a pass switches off what the clinic does not offer, and only that"""

from __future__ import annotations

import copy

from api.connectors.base import HttpSettings
from api.connectors.registry import open_system
from tests.conftest import execute
from tests.connectors.conftest import approved, connect
from tests.helpers import add_treatment, decide


def unchanged_but_for_booking(before, after):
    """Everything but availability, version and the time Square stamps is as it was."""

    def strip(variation):
        data = {k: v for k, v in variation["item_variation_data"].items() if k != "available_for_booking"}
        kept = {k: v for k, v in variation.items() if k not in ("version", "updated_at")}
        return kept | {"item_variation_data": data}

    return strip(before) == strip(after)


def test_a_withdrawal_switches_the_service_off_and_an_approval_restores_it(
    app, client, admin, reviewer, square, passes
):
    approved(app, "botox", external_ids={"square": "VAR-BTX"})
    square.add_service("VAR-BTX", "Botox", price=30000)
    original = copy.deepcopy(square.objects["VAR-BTX"])
    connector = connect(client, admin, square)
    assert passes.run(connector["id"], None).error is None
    assert square.available("VAR-BTX") and square.writes() == []  # bookable: nothing to do

    assert decide(client, reviewer, "botox", "withdrawn").status_code == 201
    report = passes.run(connector["id"], ["botox"])
    assert [s.move for s in report.done] == ["hide"]
    assert not square.available("VAR-BTX")
    assert unchanged_but_for_booking(original, square.objects["VAR-BTX"])  # price, name, team: all kept

    assert decide(client, reviewer, "botox", "approved").status_code == 201
    report = passes.run(connector["id"], ["botox"])
    assert [s.move for s in report.done] == ["restore"]
    assert square.available("VAR-BTX")
    assert unchanged_but_for_booking(original, square.objects["VAR-BTX"])
    for write in square.writes():  # the whole object, with the version read and a fresh key
        assert write["object"]["item_variation_data"]["price_money"] == {"amount": 30000, "currency": "EUR"}
        assert write["object"]["version"] and write["idempotency_key"]
    assert len({w["idempotency_key"] for w in square.writes()}) == 2


def test_a_service_staff_switched_off_is_not_switched_on_by_an_approval(
    app, client, admin, reviewer, square, passes
):
    approved(app, "fillers", external_ids={"square": "VAR-FIL"})
    square.add_service("VAR-FIL", "Fillers", available=False)  # staff took it off online booking
    connector = connect(client, admin, square)
    decide(client, reviewer, "fillers", "withdrawn")
    decide(client, reviewer, "fillers", "approved")
    report = passes.run(connector["id"], None)
    assert report.error is None and report.done == []
    assert not square.available("VAR-FIL") and square.writes() == []


def test_staff_switching_a_hidden_service_back_on_is_undone_and_recorded(app, client, admin, square, passes):
    add_treatment(app, "exosomes", "not_approved", external_ids={"square": "VAR-EXO"})
    square.add_service("VAR-EXO", "Exosome facial")
    connector = connect(client, admin, square)
    passes.run(connector["id"], None)
    assert not square.available("VAR-EXO")

    square.staff_set("VAR-EXO", True)  # someone at the desk switches it back on
    report = passes.run(connector["id"], None)
    assert [s.move for s in report.done] == ["correct_drift"]
    assert not square.available("VAR-EXO")
    events = client.get("/v1/changes").get_json()["events"]
    drift = [e for e in events if e["type"] == "connector.drift_corrected"]
    assert len(drift) == 1 and drift[0]["data"]["external_id"] == "VAR-EXO"
    audit = client.get("/v1/treatments/exosomes/audit", headers=admin).get_json()
    assert [r["action"] for r in audit if r["entity"] == "connector"] == ["hidden", "drift_corrected"]
    status = client.get(f"/v1/connectors/{connector['id']}", headers=admin).get_json()["status"]
    assert status["counts"]["drift_corrected"] == 1 and status["counts"]["hidden"] == 1


def test_a_stale_version_is_read_again_and_retried(app, client, admin, square, passes):
    add_treatment(app, "exosomes", "not_approved", external_ids={"square": "VAR-EXO"})
    square.add_service("VAR-EXO", "Exosome facial")
    square.conflict_next_writes("VAR-EXO", times=2)  # edited in Square's dashboard twice meanwhile
    connector = connect(client, admin, square)
    report = passes.run(connector["id"], None)
    assert report.error is None and not square.available("VAR-EXO")
    statuses = [c.status for c in report.calls if c.path == "/v2/catalog/object"]
    assert statuses == [409, 409, 200]


def test_429_honours_retry_after_and_5xx_backs_off(app, client, admin, square, passes):
    add_treatment(app, "exosomes", "not_approved", external_ids={"square": "VAR-EXO"})
    square.add_service("VAR-EXO", "Exosome facial")
    square.fail("POST", "/v2/catalog/batch-retrieve", 503, times=2)
    square.fail("POST", "/v2/catalog/object", 429, times=1, retry_after="0.3")
    waits: list[float] = []
    client_ = open_system("square", square.url, {"access_token": square.token},
                          HttpSettings(allow_loopback=True, backoff_base_seconds=0.01))  # fmt: skip
    client_.http.sleep = waits.append
    assert client_.read(["VAR-EXO"]) == {"VAR-EXO": True}
    assert client_.switch("VAR-EXO", False) and not square.available("VAR-EXO")
    assert waits[-1] == 0.3  # Square's Retry-After, exactly
    assert len(waits) == 3 and all(0 <= w <= 0.02 for w in waits[:2])  # jittered backoff, doubling


def test_a_system_that_stays_down_fails_the_pass_and_the_status_says_so(app, client, admin, square, passes):
    add_treatment(app, "exosomes", "not_approved", external_ids={"square": "VAR-EXO"})
    square.add_service("VAR-EXO", "Exosome facial")
    square.fail("POST", "/v2/catalog/batch-retrieve", 500, times=10)
    connector = connect(client, admin, square)
    report = passes.run(connector["id"], None)
    assert "gave up after 4 attempts" in report.error
    status = client.get(f"/v1/connectors/{connector['id']}", headers=admin).get_json()["status"]
    assert "gave up" in status["last_error"] and status["last_success_at"] is None
    calls = client.get(f"/v1/connectors/{connector['id']}/calls", headers=admin).get_json()
    assert [c["status"] for c in calls] == [500, 500, 500, 500]
    assert {c["path"] for c in calls} == {"/v2/catalog/batch-retrieve"}


def test_unmapped_treatments_and_removed_mappings_are_reported_and_left_alone(
    app, client, admin, editor, square, passes
):
    add_treatment(app, "exosomes", "not_approved", external_ids={"square": "VAR-EXO"})
    add_treatment(app, "pdo-threads", "not_approved")  # no mapping
    square.add_service("VAR-EXO", "Exosome facial")
    connector = connect(client, admin, square)
    passes.run(connector["id"], None)
    etag = client.get("/v1/treatments/exosomes").headers["ETag"]
    changed = client.patch("/v1/treatments/exosomes", json={"external_ids": {}},
                           headers=editor | {"If-Match": etag})  # fmt: skip
    assert changed.status_code == 200, changed.get_json()
    report = passes.run(connector["id"], None)
    assert report.done == [] and not square.available("VAR-EXO")  # stays off: fail closed
    assert report.plan.orphaned == [("exosomes", "VAR-EXO")]
    assert set(report.plan.unmapped) == {"exosomes", "pdo-threads"}
    counts = client.get(f"/v1/connectors/{connector['id']}", headers=admin).get_json()["status"]["counts"]
    assert counts["orphaned"] == 1 and counts["unmapped"] == 2


def test_a_mapping_to_no_service_is_reported(app, client, admin, square, passes):
    add_treatment(app, "exosomes", "not_approved", external_ids={"square": "VAR-TYPO"})
    connector = connect(client, admin, square)
    report = passes.run(connector["id"], None)
    assert report.error is None and report.plan.missing == [("exosomes", "VAR-TYPO")]


def test_the_credentials_are_encrypted_at_rest_and_never_shown_or_logged(
    app, client, admin, square, passes, said, caplog
):
    add_treatment(app, "exosomes", "not_approved", external_ids={"square": "VAR-EXO"})
    square.add_service("VAR-EXO", "Exosome facial")
    square.fail("POST", "/v2/catalog/batch-retrieve", 500, times=10)  # errors too
    body = {"system": "square", "name": "Square", "base_url": square.url,
            "credentials": {"access_token": square.token}}  # fmt: skip
    created = client.post("/v1/connectors", json=body, headers=admin)
    connector_id = created.get_json()["id"]
    passes.run(connector_id, None)
    seen = [created.get_data(as_text=True)]
    seen += [
        client.get(path, headers=admin).get_data(as_text=True)
        for path in (
            "/v1/connectors",
            f"/v1/connectors/{connector_id}",
            f"/v1/connectors/{connector_id}/calls",
        )
    ]
    seen += said + [caplog.text]
    assert not [text for text in seen if square.token in text]
    stored = execute(app, "SELECT credentials FROM connectors")[0][0]
    assert square.token not in stored and stored.startswith("gAAAAA")  # a Fernet token
