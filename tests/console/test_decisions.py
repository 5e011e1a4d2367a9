"""Decisions and reviews in the console: the gate shown before sending, overrides, roles"""

from __future__ import annotations

from tests.conftest import execute
from tests.helpers import add_treatment, approval, study


def test_the_gate_check_shows_the_unmet_criteria_before_anything_is_sent(app, signed_in):
    add_treatment(app, "plain")
    browser = signed_in("reviewer")
    browser.get("/console/treatments/plain")
    before = execute(app, "SELECT count(*) FROM decisions")[0][0]
    fragment = browser.post(
        "/console/treatments/plain/decisions/check",
        {"status": "approved", "reason": ""},
        headers={"X-Requested-With": "fetch"},
    ).get_data(as_text=True)
    assert "The policy gate would refuse this approval" in fragment
    assert (
        'data-code="evidence_below_minimum"' in fragment and 'data-code="no_regulatory_approval"' in fragment
    )
    assert "only an admin may override" in fragment
    assert execute(app, "SELECT count(*) FROM decisions")[0][0] == before


def test_without_script_the_check_button_shows_the_page_with_the_gate_and_the_draft(app, signed_in):
    add_treatment(app, "plain")
    browser = signed_in("reviewer")
    browser.get("/console/treatments/plain")
    html = browser.post(
        "/console/treatments/plain/decisions/check", {"status": "approved", "reason": "My draft reason"}
    ).get_data(as_text=True)
    assert "The policy gate would refuse this approval" in html and "My draft reason" in html


def test_a_refused_approval_keeps_the_draft_and_lists_the_unmet_criteria(app, signed_in):
    add_treatment(app, "plain")
    browser = signed_in("reviewer")
    browser.get("/console/treatments/plain")
    response = browser.post(
        "/console/treatments/plain/decisions", {"status": "approved", "reason": "Kept reason"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and response.mimetype == "text/html"
    assert "The policy gate would refuse this approval" in html and "Kept reason" in html


def test_a_reviewer_approves_once_the_gate_is_met_and_the_decision_is_theirs(app, signed_in):
    add_treatment(app, "ready", studies=[study()], regulatory=[approval()])
    browser = signed_in("reviewer")
    browser.get("/console/treatments/ready")
    check = browser.post(
        "/console/treatments/ready/decisions/check",
        {"status": "approved", "reason": "Ready."},
        headers={"X-Requested-With": "fetch"},
    ).get_data(as_text=True)
    assert "The policy gate is met" in check and "be bookable" in check
    response = browser.post("/console/treatments/ready/decisions", {"status": "approved", "reason": "Ready."})
    assert response.status_code == 302
    decided_by, role = execute(app, "SELECT decided_by, decided_by_role FROM decisions ORDER BY id DESC")[0]
    assert decided_by.startswith("reviewer-") and role == "reviewer"
    page = browser.get("/console/treatments/ready").get_data(as_text=True)
    assert 'id="booking-answer" class="ok">bookable' in page


def test_an_admin_sees_the_override_path_and_overrides_with_a_public_justification(app, signed_in):
    add_treatment(app, "plain")
    admin = signed_in("admin")
    page = admin.get("/console/treatments/plain").get_data(as_text=True)
    assert "Override the policy gate" in page
    why = "The governance board approved it after an independent specialist panel review."
    form = {
        "status": "approved",
        "reason": "Approved by the board.",
        "override": "on",
        "override_justification": why,
    }
    check = admin.post(
        "/console/treatments/plain/decisions/check", form, headers={"X-Requested-With": "fetch"}
    ).get_data(as_text=True)
    assert "An override" in check
    assert admin.post("/console/treatments/plain/decisions", form).status_code == 302
    assert execute(app, "SELECT override_justification FROM decisions ORDER BY id DESC")[0][0] == why


def test_a_reviewer_has_no_override_path(app, signed_in):
    add_treatment(app, "plain")
    reviewer = signed_in("reviewer")
    assert "Override the policy gate" not in reviewer.get("/console/treatments/plain").get_data(as_text=True)
    form = {"status": "approved", "reason": "Sneaky.", "override": "on", "override_justification": "x" * 50}
    assert (
        reviewer.post("/console/treatments/plain/decisions", form).status_code == 409
    )  # the gate, not ignored


def test_an_editor_cannot_decide(app, signed_in):
    add_treatment(app, "ready", studies=[study()], regulatory=[approval()])
    editor = signed_in("editor")
    page = editor.get("/console/treatments/ready").get_data(as_text=True)
    assert "Only reviewers and admins record decisions" in page and 'id="decision-form"' not in page
    response = editor.post("/console/treatments/ready/decisions", {"status": "approved", "reason": "Ready."})
    assert response.status_code == 403
    assert execute(app, "SELECT count(*) FROM decisions WHERE status = 'approved'")[0][0] == 0


def test_a_review_is_recorded_by_the_reviewer(app, signed_in):
    add_treatment(app, "plain")
    browser = signed_in("reviewer")
    browser.get("/console/treatments/plain")
    assert (
        browser.post("/console/treatments/plain/reviews", {"note": "Nothing new in PubMed."}).status_code
        == 302
    )
    note, by = execute(app, "SELECT note, reviewed_by FROM treatment_reviews")[0]
    assert note == "Nothing new in PubMed." and by.startswith("reviewer-")
    empty = browser.post("/console/treatments/plain/reviews", {"note": "  "})
    assert empty.status_code == 422


def test_withdrawing_makes_it_not_bookable(app, signed_in):
    add_treatment(app, "botox", "approved", studies=[study()], regulatory=[approval()])
    browser = signed_in("reviewer")
    browser.get("/console/treatments/botox")
    browser.post("/console/treatments/botox/decisions", {"status": "withdrawn", "reason": "Safety signal."})
    page = browser.get("/console/treatments/botox").get_data(as_text=True)
    assert 'id="booking-answer" class="bad">not bookable' in page
