"""`POST /v1/treatments/{slug}/decisions?dry_run=true`: the gate's answer before a decision is sent"""

from tests.conftest import execute
from tests.helpers import FDA_APPROVAL, STRONG_RCT, create_treatment


def counts(app):
    return execute(
        app,
        "SELECT (SELECT count(*) FROM decisions), (SELECT count(*) FROM change_events), "
        "(SELECT count(*) FROM audit_records)",
    )[0]


def test_a_refused_dry_run_answers_like_the_real_request_and_writes_nothing(app, client, editor, reviewer):
    slug = create_treatment(client, editor)["slug"]
    before = counts(app)
    dry = client.post(
        f"/v1/treatments/{slug}/decisions?dry_run=true",
        headers=reviewer,
        json={"status": "approved", "reason": "Ready."},
    )
    real = client.post(
        f"/v1/treatments/{slug}/decisions", headers=reviewer, json={"status": "approved", "reason": "Ready."}
    )
    assert dry.status_code == real.status_code == 409
    assert dry.get_json()["unmet"] == real.get_json()["unmet"]
    assert {u["code"] for u in dry.get_json()["unmet"]} == {
        "evidence_below_minimum",
        "no_regulatory_approval",
    }
    assert counts(app) == before


def test_a_passing_dry_run_answers_200_with_what_would_be_recorded_and_writes_nothing(
    app, client, editor, reviewer
):
    slug = create_treatment(client, editor)["slug"]
    client.post(f"/v1/treatments/{slug}/studies", headers=editor, json=STRONG_RCT)
    client.post(f"/v1/treatments/{slug}/regulatory", headers=editor, json=FDA_APPROVAL)
    before = counts(app)
    response = client.post(
        f"/v1/treatments/{slug}/decisions?dry_run=true",
        headers=reviewer,
        json={"status": "approved", "reason": "Evidence and FDA approval."},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["dry_run"] is True and body["status"] == "approved" and body["bookable"] is True
    assert body["previous_status"] == "under_review" and body["overrides"] == []
    assert counts(app) == before
    assert client.get(f"/v1/treatments/{slug}").get_json()["status"] == "under_review"


def test_a_dry_run_shows_what_an_admin_override_would_set_aside(client, editor, admin, reviewer):
    slug = create_treatment(client, editor)["slug"]
    why = "The board approved it after a specialist panel review of the data."
    body = {"status": "approved", "reason": "Approved by the board.", "override_justification": why}
    as_admin = client.post(f"/v1/treatments/{slug}/decisions?dry_run=true", headers=admin, json=body)
    assert as_admin.status_code == 200
    assert {u["code"] for u in as_admin.get_json()["overrides"]} == {
        "evidence_below_minimum",
        "no_regulatory_approval",
    }
    as_reviewer = client.post(f"/v1/treatments/{slug}/decisions?dry_run=true", headers=reviewer, json=body)
    assert as_reviewer.status_code == 403


def test_a_dry_run_needs_the_reviewer_role(client, editor):
    slug = create_treatment(client, editor)["slug"]
    response = client.post(
        f"/v1/treatments/{slug}/decisions?dry_run=true",
        headers=editor,
        json={"status": "withdrawn", "reason": "Stop."},
    )
    assert response.status_code == 403
