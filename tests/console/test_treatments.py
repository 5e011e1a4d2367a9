"""Treatments in the console: list, page, editing with If-Match handled, studies, regulatory entries"""

from __future__ import annotations

import json
import re

from tests.conftest import execute
from tests.helpers import STRONG_RCT, add_treatment, approval, create_treatment, study


def test_the_list_filters_by_status_category_level_and_search(app, signed_in):
    add_treatment(
        app, "botox", "approved", category="neuromodulator", studies=[study()], regulatory=[approval()]
    )
    add_treatment(app, "exosomes", "not_approved", category="regenerative")
    browser = signed_in("editor")
    everything = browser.get("/console/treatments").get_data(as_text=True)
    assert "Botox" in everything and "Exosomes" in everything
    approved = browser.get("/console/treatments?status=approved").get_data(as_text=True)
    assert "Botox" in approved and "Exosomes" not in approved
    regenerative = browser.get("/console/treatments?category=regenerative").get_data(as_text=True)
    assert "Exosomes" in regenerative and "Botox" not in regenerative
    moderate = browser.get("/console/treatments?level=moderate").get_data(as_text=True)
    assert "Botox" in moderate and "Exosomes" not in moderate
    assert "Exosomes" in browser.get("/console/treatments?q=exo").get_data(as_text=True)
    assert "Botox" not in browser.get("/console/treatments?q=exo").get_data(as_text=True)


def test_the_list_filters_by_review_due(app, signed_in):
    add_treatment(app, "due-now")  # seeded treatments' next review is due today
    browser = signed_in("editor")
    execute(app, "UPDATE treatments SET next_review_due = '2099-01-01' WHERE slug = 'due-now'")
    assert "Due Now" not in browser.get("/console/treatments?review=30").get_data(as_text=True)
    execute(app, "UPDATE treatments SET next_review_due = '2000-01-01' WHERE slug = 'due-now'")
    assert "Due Now" in browser.get("/console/treatments?review=overdue").get_data(as_text=True)


def test_an_editor_creates_a_treatment_attributed_to_them(app, signed_in):
    browser = signed_in("editor")
    browser.get("/console/treatments/new")
    response = browser.post(
        "/console/treatments/new",
        {"slug": "new-filler", "name": "New filler", "category": "dermal_filler", "summary": "A filler."},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/console/treatments/new-filler"
    page = browser.get("/console/treatments/new-filler").get_data(as_text=True)
    assert "under review" in page
    who = execute(
        app,
        "SELECT actor_name, actor_role FROM audit_records WHERE action = 'created' AND entity = 'treatment'",
    )
    assert who[0][0].startswith("editor-") and who[0][0].endswith("@clinic.example") and who[0][1] == "editor"


def test_an_invalid_treatment_is_refused_with_the_apis_own_messages_and_the_form_kept(signed_in):
    browser = signed_in("editor")
    browser.get("/console/treatments/new")
    response = browser.post(
        "/console/treatments/new",
        {"slug": "Not A Slug", "name": "Kept name", "category": "dermal_filler", "summary": "x"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'aria-invalid="true" aria-describedby="slug-error"' in html and 'value="Kept name"' in html


def test_the_treatment_page_shows_every_section(app, signed_in):
    add_treatment(app, "botox", "approved", studies=[study(doi="10.5555/abc")], regulatory=[approval()])
    html = signed_in("editor").get("/console/treatments/botox").get_data(as_text=True)
    for section in (
        "Public view",
        "Evidence: moderate",
        "Studies",
        "Regulatory entries",
        "Decisions",
        "Reviews",
        "Content",
        "History",
        "https://doi.org/10.5555/abc",
        "bookable",
    ):
        assert section in html, section


def test_the_evidence_is_explained_step_by_step(app, signed_in):
    add_treatment(app, "small-rct", studies=[study(participants=20, follow_up_months=6)])
    html = signed_in("editor").get("/console/treatments/small-rct").get_data(as_text=True)
    steps = re.search(r'<ol class="steps" id="evidence-steps">(.*?)</ol>', html, re.S).group(1)
    assert "Start: high" in steps
    assert "Step down: small samples</strong> → moderate" in steps
    assert "Step down: no long-term follow-up</strong> → low" in steps
    assert "Step down: no independent sponsorship</strong> → very low" in steps


def test_an_added_study_changes_the_level(app, signed_in):
    add_treatment(app, "plain")
    browser = signed_in("editor")
    assert "Evidence: insufficient" in browser.get("/console/treatments/plain").get_data(as_text=True)
    form = {
        "title": "A big trial",
        "design": "rct",
        "participants": "300",
        "follow_up_months": "12",
        "sponsorship": "industry",
        "risk_of_bias": "not_assessed",
        "peer_reviewed": "on",
        "randomised": "on",
    }
    assert browser.post("/console/treatments/plain/studies", form).status_code == 302
    assert "Evidence: moderate" in browser.get("/console/treatments/plain").get_data(as_text=True)


def test_a_study_with_bad_numbers_is_refused_and_kept(app, signed_in):
    add_treatment(app, "plain")
    browser = signed_in("editor")
    browser.get("/console/treatments/plain")
    response = browser.post(
        "/console/treatments/plain/studies", {"title": "Kept title", "design": "rct", "participants": "many"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Not saved" in html and 'value="Kept title"' in html


def test_a_regulatory_entry_is_added_and_deleted(app, signed_in):
    add_treatment(app, "plain")
    browser = signed_in("editor")
    browser.get("/console/treatments/plain")
    assert (
        browser.post(
            "/console/treatments/plain/regulatory",
            {"regulator": "fda", "status": "approved", "source_url": "https://www.accessdata.fda.gov/x"},
        ).status_code
        == 302
    )
    html = browser.get("/console/treatments/plain").get_data(as_text=True)
    assert "FDA" in html
    action = re.search(r'action="(/console/treatments/plain/regulatory/\d+/delete)"', html).group(1)
    assert (
        browser.post(
            action,
            {"etag": re.search(r'name="etag" value="(&#34;r[^"]+)"', html).group(1).replace("&#34;", '"')},
        ).status_code
        == 302
    )
    assert execute(app, "SELECT count(*) FROM regulatory_statuses")[0][0] == 0


def test_a_stale_delete_is_not_made_and_says_why(app, client, editor, signed_in):
    slug = create_treatment(client, editor)["slug"]
    entry = client.post(f"/v1/treatments/{slug}/studies", headers=editor, json=STRONG_RCT).get_json()
    browser = signed_in("editor")
    browser.get(f"/console/treatments/{slug}")
    response = browser.post(
        f"/console/treatments/{slug}/studies/{entry['id']}/delete", {"etag": '"s0-v0"'}, follow_redirects=True
    )
    assert "Not deleted: someone changed this entry" in response.get_data(as_text=True)
    assert execute(app, "SELECT count(*) FROM studies")[0][0] == 1


def content_form(html: str) -> dict[str, str]:
    form = re.search(r'<form method="post" action="[^"]*/content".*?</form>', html, re.S).group(0)
    values = {}
    for name, value in re.findall(r'<input[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', form):
        values[name] = (
            value.replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&").replace("&#39;", "'")
        )
    for name, value in re.findall(r'<textarea[^>]*name="([a-z_]+)"[^>]*>(.*?)</textarea>', form, re.S):
        values[name] = value
    return values


def test_content_is_saved_with_the_etag_the_form_was_shown_with(app, signed_in):
    add_treatment(app, "plain")
    browser = signed_in("editor")
    form = content_form(browser.get("/console/treatments/plain").get_data(as_text=True))
    assert form["etag"].startswith('"t')
    response = browser.post("/console/treatments/plain/content", form | {"summary": "A better summary."})
    assert response.status_code == 302
    assert "A better summary." in browser.get("/console/treatments/plain").get_data(as_text=True)


def test_a_concurrent_edit_shows_what_changed_and_keeps_the_draft_never_a_bare_412(
    app, client, editor, signed_in
):
    slug = create_treatment(client, editor, summary="The first summary.")["slug"]
    browser = signed_in("editor")
    form = content_form(browser.get(f"/console/treatments/{slug}").get_data(as_text=True))
    etag = client.get(f"/v1/treatments/{slug}").headers["ETag"]
    client.patch(
        f"/v1/treatments/{slug}", headers=editor | {"If-Match": etag}, json={"summary": "Their summary."}
    )

    response = browser.post(f"/console/treatments/{slug}/content", form | {"name": "My new name"})
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and response.mimetype == "text/html"
    assert "Someone else saved this treatment" in html
    assert "was “The first summary.”, now “Their summary.”" in html
    assert 'value="My new name"' in html  # the draft is kept
    # Saving again applies the draft over their change, knowingly.
    again = content_form(html)
    assert json.loads(again["original"])["summary"] == "Their summary."
    assert browser.post(f"/console/treatments/{slug}/content", again).status_code == 302
    current = client.get(f"/v1/treatments/{slug}").get_json()
    assert current["name"] == "My new name"


def test_an_unknown_treatment_is_a_console_page(signed_in):
    response = signed_in("editor").get("/console/treatments/nope")
    assert response.status_code == 404 and response.mimetype == "text/html"


def study_form(html: str) -> dict[str, str]:
    form = re.search(r'<form method="post" class="grid" id="study-form">.*?</form>', html, re.S).group(0)
    values = {}
    for name, value in re.findall(r'<input[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', form):
        values[name] = (
            value.replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&").replace("&#39;", "'")
        )
    for name in re.findall(r'<input type="checkbox" name="([a-z_]+)" checked>', form):
        values[name] = "on"
    for name, body in re.findall(r'<select id="[a-z_]+" name="([a-z_]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        values[name] = chosen.group(1) if chosen else ""
    for name, value in re.findall(r'<textarea[^>]*name="([a-z_]+)"[^>]*>(.*?)</textarea>', form, re.S):
        values[name] = value
    return values


def test_a_screening_study_is_completed_and_accepted_and_then_counts(app, client, editor, signed_in):
    slug = create_treatment(client, editor)["slug"]
    made = client.post(
        f"/v1/treatments/{slug}/studies",
        headers=editor,
        json={"title": "Imported trial", "design": None, "screening": "screening"},
    ).get_json()
    browser = signed_in("editor")
    form = study_form(browser.get(f"/console/treatments/{slug}/studies/{made['id']}").get_data(as_text=True))
    assert form["screening"] == "screening" and form["design"] == ""
    edited = form | {
        "screening": "accepted",
        "design": "rct",
        "participants": "300",
        "follow_up_months": "12",
        "peer_reviewed": "on",
    }
    assert browser.post(f"/console/treatments/{slug}/studies/{made['id']}", edited).status_code == 302
    assert "Evidence: moderate" in browser.get(f"/console/treatments/{slug}").get_data(as_text=True)


def test_accepting_a_study_without_a_design_is_refused_with_the_apis_message(app, client, editor, signed_in):
    slug = create_treatment(client, editor)["slug"]
    made = client.post(
        f"/v1/treatments/{slug}/studies",
        headers=editor,
        json={"title": "Imported trial", "design": None, "screening": "screening"},
    ).get_json()
    browser = signed_in("editor")
    form = study_form(browser.get(f"/console/treatments/{slug}/studies/{made['id']}").get_data(as_text=True))
    response = browser.post(
        f"/console/treatments/{slug}/studies/{made['id']}", form | {"screening": "accepted"}
    )
    assert response.status_code in {409, 422}
    assert "needs a design" in response.get_data(as_text=True)


def test_a_concurrent_study_edit_keeps_the_draft_and_shows_what_changed(app, client, editor, signed_in):
    slug = create_treatment(client, editor)["slug"]
    made = client.post(f"/v1/treatments/{slug}/studies", headers=editor, json=STRONG_RCT).get_json()
    browser = signed_in("editor")
    form = study_form(browser.get(f"/console/treatments/{slug}/studies/{made['id']}").get_data(as_text=True))
    etag = client.get(f"/v1/treatments/{slug}/studies/{made['id']}").headers["ETag"]
    client.patch(
        f"/v1/treatments/{slug}/studies/{made['id']}",
        headers=editor | {"If-Match": etag},
        json={"participants": 400},
    )
    response = browser.post(f"/console/treatments/{slug}/studies/{made['id']}", form | {"title": "My title"})
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and "Someone else saved this study" in html
    assert "was “250”, now “400”" in html and 'value="My title"' in html
    again = study_form(html)
    assert browser.post(f"/console/treatments/{slug}/studies/{made['id']}", again).status_code == 302
    stored = client.get(f"/v1/treatments/{slug}/studies/{made['id']}").get_json()
    assert stored["title"] == "My title" and stored["participants"] == 250  # the draft, knowingly


def form_values(html: str, form_id: str) -> dict[str, str]:
    form = re.search(rf'<form method="post" class="grid" id="{form_id}">.*?</form>', html, re.S).group(0)
    values = {}
    for name, value in re.findall(r'<input[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', form):
        values[name] = (
            value.replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&").replace("&#39;", "'")
        )
    for name, body in re.findall(r'<select id="[a-z_]+" name="([a-z_]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        values[name] = chosen.group(1) if chosen else ""
    return values


def test_a_regulatory_entry_is_edited_and_a_warning_suspends_bookings(app, client, signed_in):
    add_treatment(app, "botox", "approved", studies=[study()], regulatory=[approval()])
    entry_id = client.get("/v1/treatments/botox/regulatory").get_json()[0]["id"]
    browser = signed_in("editor")
    form = form_values(
        browser.get(f"/console/treatments/botox/regulatory/{entry_id}").get_data(as_text=True),
        "regulatory-form",
    )
    assert form["regulator"] == "FDA" and form["status"] == "approved"
    response = browser.post(
        f"/console/treatments/botox/regulatory/{entry_id}", form | {"status": "warning_issued"}
    )
    assert response.status_code == 302
    page = browser.get("/console/treatments/botox").get_data(as_text=True)
    assert "Bookings suspended pending review" in page and 'class="bad">not bookable' in page
    who = execute(
        app, "SELECT actor_name FROM audit_records WHERE entity = 'regulatory' AND action = 'updated'"
    )
    assert who[0][0].startswith("editor-")


def test_a_concurrent_regulatory_edit_keeps_the_draft(app, client, editor, signed_in):
    add_treatment(app, "botox", "approved", studies=[study()], regulatory=[approval()])
    entry_id = client.get("/v1/treatments/botox/regulatory").get_json()[0]["id"]
    browser = signed_in("editor")
    form = form_values(
        browser.get(f"/console/treatments/botox/regulatory/{entry_id}").get_data(as_text=True),
        "regulatory-form",
    )
    etag = client.get(f"/v1/treatments/botox/regulatory/{entry_id}").headers["ETag"]
    client.patch(
        f"/v1/treatments/botox/regulatory/{entry_id}",
        headers=editor | {"If-Match": etag},
        json={"reference": "P111111"},
    )
    response = browser.post(
        f"/console/treatments/botox/regulatory/{entry_id}", form | {"pathway": "My pathway"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and "Someone else saved this entry" in html
    assert "now “P111111”" in html and 'value="My pathway"' in html
