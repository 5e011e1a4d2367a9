"""A regulatory warning suspends bookings at once; only a decision lifts it. Approved treatments
that stop meeting the gate are flagged for staff (issue 15, items 5-7)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from api import create_app
from tests.helpers import add_treatment, approval, decide, study

WARNING = {"regulator": "FDA", "status": "warning_issued", "reference": "FDA safety communication 2026-11",
           "source_url": "https://www.fda.gov/example"}  # fmt: skip
JUSTIFICATION = "The clinic's medical board reviewed the warning: it concerns another product's use."


@pytest.fixture
def botox(app):
    add_treatment(app, "botox", "approved", studies=[study()], regulatory=[approval()],
                  external_ids={"square": "SQ-BTX", "cliniko": "1001"})  # fmt: skip
    return "botox"


def check(client: Any, slug: str) -> dict[str, Any]:
    response = client.post("/v1/booking-checks", json={"treatments": [slug]})
    assert response.status_code == 200
    return response.get_json()["results"][0]


def feed(client: Any, event_type: str) -> list[dict[str, Any]]:
    events = client.get("/v1/changes?after=0&limit=500").get_json()["events"]
    return [e for e in events if e["type"] == event_type]


def warn(client: Any, editor: dict[str, str], slug: str) -> dict[str, Any]:
    response = client.post(f"/v1/treatments/{slug}/regulatory", json=WARNING, headers=editor)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_warning_on_an_approved_treatment_suspends_its_bookings_at_once(client, editor, botox):
    assert check(client, botox)["bookable"] is True
    assert check(client, botox)["bookable"] is True  # now remembered by this worker

    warn(client, editor, botox)

    answer = check(client, botox)
    assert (answer["bookable"], answer["status"], answer["reason"]) == (
        False,
        "approved",
        "suspended_pending_review",
    )
    assert "regulatory safety warning" in answer["message"]
    assert client.get(f"/v1/treatments/{botox}").get_json()["bookable"] is False
    assert client.get(f"/v1/treatments/{botox}").get_json()["status"] == "approved"  # no decision rewritten
    listed = client.get("/v1/treatments?bookable=true").get_json()["items"]
    assert botox not in [t["slug"] for t in listed]
    assert botox in [t["slug"] for t in client.get("/v1/treatments?bookable=false").get_json()["items"]]


def test_a_warning_suspends_bookings_on_every_worker_even_when_the_answer_was_remembered(app, editor, botox):
    made = [create_app({"DATABASE_URL": app.config["DATABASE_URL"], "LOG_REQUESTS": False}) for _ in range(2)]
    try:
        reader, writer = (m.test_client() for m in made)
        assert check(reader, botox)["bookable"] is True
        assert check(reader, botox)["bookable"] is True  # answered from the remembered facts
        warn(writer, editor, botox)
        answer = check(reader, botox)
        deadline = dt.datetime.now() + dt.timedelta(seconds=2)  # another worker hears within the bound
        while answer["bookable"] and dt.datetime.now() < deadline:
            answer = check(reader, botox)
        assert (answer["bookable"], answer["reason"]) == (False, "suspended_pending_review")
    finally:
        for m in made:
            m.extensions["db_engine"].dispose()


def test_the_suspension_is_the_systems_action_in_the_audit_trail_naming_the_entry(client, editor, botox):
    entry = warn(client, editor, botox)
    records = client.get(f"/v1/treatments/{botox}/audit", headers=editor).get_json()
    (suspended,) = [r for r in records if r["action"] == "suspended"]
    assert (suspended["entity"], suspended["actor_name"], suspended["actor_role"]) == (
        "treatment", "system", "system",
    )  # fmt: skip
    assert suspended["changes"]["regulatory_entry_id"] == {"from": None, "to": entry["id"]}
    assert f"regulatory entry {entry['id']}" in suspended["changes"]["suspension_reason"]["to"]


def test_a_suspension_emits_bookability_changed_and_no_status_change(client, editor, botox):
    entry = warn(client, editor, botox)
    (event,) = feed(client, "treatment.bookability_changed")
    assert event["data"] == {
        "slug": botox, "old_bookable": True, "new_bookable": False, "status": "approved",
        "reason": "suspended_pending_review", "regulatory_entry_id": entry["id"],
        "external_ids": {"square": "SQ-BTX", "cliniko": "1001"},  # a receiver needs no call back
    }  # fmt: skip
    assert feed(client, "treatment.status_changed") == []


def test_a_patch_to_warning_issued_suspends_too(client, editor, botox):
    entries = client.get(f"/v1/treatments/{botox}/regulatory").get_json()
    url = f"/v1/treatments/{botox}/regulatory/{entries[0]['id']}"
    etag = client.get(url).headers["ETag"]
    response = client.patch(url, json={"status": "warning_issued"}, headers=editor | {"If-Match": etag})
    assert response.status_code == 200
    assert check(client, botox)["reason"] == "suspended_pending_review"


def test_a_warning_on_a_treatment_not_approved_changes_no_bookability(app, client, editor):
    add_treatment(app, "exosomes", "not_approved")
    warn(client, editor, "exosomes")
    assert check(client, "exosomes")["reason"] == "not_approved"
    assert feed(client, "treatment.bookability_changed") == []


def test_with_suspension_off_a_warning_leaves_bookings_to_the_next_decision(app, editor, botox):
    off = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "LOG_REQUESTS": False,
                      "POLICY_SUSPEND_ON_WARNING": False})  # fmt: skip
    try:
        client = off.test_client()
        warn(client, editor, botox)
        assert check(client, botox)["bookable"] is True
        assert feed(client, "treatment.bookability_changed") == []
    finally:
        off.extensions["db_engine"].dispose()


def test_removing_the_warning_does_not_lift_the_suspension_a_reviewers_approval_does(
    client, editor, reviewer, botox
):
    entry = warn(client, editor, botox)
    refused = decide(client, reviewer, botox, "approved")
    assert refused.status_code == 409
    assert "regulatory_warning" in [u["code"] for u in refused.get_json()["unmet"]]

    assert (
        client.delete(f"/v1/treatments/{botox}/regulatory/{entry['id']}", headers=editor).status_code == 204
    )
    assert check(client, botox)["reason"] == "suspended_pending_review"

    assert decide(client, reviewer, botox, "approved").status_code == 201
    assert check(client, botox)["bookable"] is True
    lifted = feed(client, "treatment.bookability_changed")[-1]["data"]
    assert (lifted["old_bookable"], lifted["new_bookable"], lifted["reason"]) == (
        False, True, "The clinic decided: approved.",
    )  # fmt: skip
    assert feed(client, "treatment.status_changed") == []  # approved all along


def test_an_admin_override_lifts_the_suspension_with_the_warning_in_place(client, editor, admin, botox):
    warn(client, editor, botox)
    response = decide(client, admin, botox, "approved", override_justification=JUSTIFICATION)
    assert response.status_code == 201
    assert check(client, botox)["bookable"] is True


def test_a_withdrawal_reports_both_status_and_bookability_changes(client, reviewer, botox):
    assert decide(client, reviewer, botox, "withdrawn").status_code == 201
    (status,) = feed(client, "treatment.status_changed")
    assert (status["data"]["old_bookable"], status["data"]["new_bookable"]) == (True, False)
    (bookability,) = feed(client, "treatment.bookability_changed")
    assert bookability["data"]["reason"] == "The clinic decided: withdrawn."


def test_a_decision_that_keeps_bookability_emits_no_bookability_change(app, client, reviewer):
    add_treatment(app, "exosomes", "under_review")
    assert decide(client, reviewer, "exosomes", "not_approved").status_code == 201
    assert feed(client, "treatment.bookability_changed") == []


def test_webhooks_may_subscribe_to_bookability_changes_and_unmet_gates(client, admin):
    body = {"url": "https://hooks.example/tpa",
            "event_types": ["treatment.bookability_changed", "treatment.gate_not_met"]}  # fmt: skip
    response = client.post("/v1/webhooks", json=body, headers=admin)
    assert response.status_code == 201, response.get_json()


# --- approved treatments that stop meeting the gate (item 7) ----------------------------------


def test_the_gate_status_is_for_staff_only(client, botox):
    assert client.get(f"/v1/treatments/{botox}/gate").status_code == 401


def test_an_approved_treatment_meeting_the_gate_is_not_flagged(client, editor, botox):
    gate = client.get(f"/v1/treatments/{botox}/gate", headers=editor).get_json()
    assert (gate["meets_gate"], gate["flagged"], gate["unmet"], gate["bookable"]) == (True, False, [], True)


def test_losing_its_approval_entry_flags_an_approved_treatment_without_rewriting_its_decision(
    client, editor, botox
):
    decisions = client.get(f"/v1/treatments/{botox}/decisions").get_json()
    (entry,) = client.get(f"/v1/treatments/{botox}/regulatory").get_json()
    assert (
        client.delete(f"/v1/treatments/{botox}/regulatory/{entry['id']}", headers=editor).status_code == 204
    )

    gate = client.get(f"/v1/treatments/{botox}/gate", headers=editor).get_json()
    assert (gate["status"], gate["meets_gate"], gate["flagged"]) == ("approved", False, True)
    assert [u["code"] for u in gate["unmet"]] == ["no_regulatory_approval"]
    (event,) = feed(client, "treatment.gate_not_met")
    assert event["data"]["unmet"][0]["code"] == "no_regulatory_approval"
    assert client.get(f"/v1/treatments/{botox}/decisions").get_json() == decisions


def test_a_weakened_study_flags_the_treatment_and_lists_it_first_in_the_due_report(
    app, client, editor, botox
):
    add_treatment(app, "never-reviewed", "under_review")  # never scheduled: normally listed first
    (rct,) = client.get(f"/v1/treatments/{botox}/studies").get_json()
    url = f"/v1/treatments/{botox}/studies/{rct['id']}"
    response = client.patch(url, json={"participants": 20, "follow_up_months": 1},
                            headers=editor | {"If-Match": client.get(url).headers["ETag"]})  # fmt: skip
    assert response.status_code == 200

    report = client.get("/v1/reviews/due?within=0", headers=editor).get_json()
    first = report["items"][0]
    assert (first["slug"], first["gate_not_met"]) == (botox, True)  # its review is not due for a year
    assert [u["code"] for u in first["unmet"]] == ["evidence_below_minimum"]
    assert feed(client, "treatment.gate_not_met")[0]["data"]["slug"] == botox


def test_the_due_review_command_lists_flagged_treatments_first_and_fails(app, client, editor, runner, botox):
    warn(client, editor, botox)
    result = runner.invoke(args=["reviews", "due", "--within", "0"])
    assert result.exit_code == 1
    assert result.output.splitlines()[2].startswith(botox)
    assert "GATE NOT MET: regulatory_warning" in result.output
