"""The console in a real browser (Chromium through Playwright): the reviewer's whole walk, a
concurrent edit, a CSRF refusal, an editor who cannot decide, sign-in limits, 360 px, axe-core.

One browser for the session (`tests.browser`), one live server (the test app behind a threaded
HTTP server) for the module; each test signs in through the pages themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.console.conftest import PASSWORD
from tests.helpers import add_treatment, approval, serving, study

SERIOUS = {"serious", "critical"}


@pytest.fixture(scope="module")
def live(app: Any) -> Iterator[str]:
    with serving(app) as base:
        yield base


def sign_in(page: Any, live: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{live}/console/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def assert_accessible(page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations
               if v["impact"] in SERIOUS]  # fmt: skip
    assert serious == [], serious


def booking_check(page: Any, live: str, slug: str) -> bool:
    response = page.request.post(f"{live}/v1/booking-checks", data=orjson.dumps({"treatments": [slug]}),
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status == 200
    return bool(response.json()["bookable"])


def test_a_reviewer_walks_from_a_one_time_link_to_an_approval_and_a_withdrawal(app, live, page):
    from playwright.sync_api import expect

    output = (
        app.test_cli_runner()
        .invoke(
            args=[
                "users",
                "create",
                "--email",
                "rita@clinic.example",
                "--name",
                "Rita Reviewer",
                "--role",
                "reviewer",
            ]
        )
        .output
    )
    link = output.strip().splitlines()[-1].replace(app.config["CONSOLE_BASE_URL"], live)

    # Sign in with the one-time link: it sets the password.
    page.goto(link)
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("The same password again").fill(PASSWORD)
    page.get_by_role("button", name="Set password and sign in").click()
    expect(page.get_by_role("heading", name="What needs attention")).to_be_visible()
    assert_accessible(page)

    # Create a treatment.
    page.get_by_role("link", name="Treatments", exact=True).click()
    page.get_by_role("link", name="Add a treatment").click()
    page.get_by_label("Slug").fill("walk-filler")
    page.get_by_label("Name").fill("Walk filler")
    page.get_by_label("Category").fill("dermal_filler")
    page.get_by_label("Public summary").fill("A hyaluronic-acid filler.")
    page.get_by_role("button", name="Add treatment").click()
    expect(page.locator("#evidence-level")).to_have_text("insufficient")

    # Add an RCT and see the level change.
    page.get_by_text("Add a study").click()
    form = page.locator("#add-study")
    form.get_by_label("Title").fill("Pivotal randomised trial")
    form.get_by_label("Design").select_option("rct")
    form.get_by_label("Participants").fill("300")
    form.get_by_label("Follow-up (months)").fill("12")
    form.get_by_label("Sponsorship").select_option("industry")
    form.get_by_label("Peer-reviewed").check()
    form.get_by_label("Randomised").check()
    form.get_by_role("button", name="Add study").click()
    expect(page.locator("#evidence-level")).to_have_text("moderate")
    expect(page.locator("#evidence-steps")).to_contain_text("Step down: no independent sponsorship")

    # Try to approve: the unmet criteria show before anything is sent.
    page.locator("#decision-status").select_option("approved")
    expect(page.locator("#gate-refused")).to_contain_text("No recognised regulator has approved")
    expect(page.locator("#preview-status")).to_have_text("approved")
    page.locator("#decision-reason").fill("Evidence and FDA approval in place.")
    expect(page.locator("#preview-reason")).to_have_text("Evidence and FDA approval in place.")
    assert_accessible(page)

    # Add an FDA approval; now the gate is met, and the approval goes through.
    page.get_by_text("Add a regulatory entry").click()
    entry = page.locator("#add-regulatory")
    entry.get_by_label("Regulator").fill("FDA")
    entry.get_by_label("Status").select_option("approved")
    entry.get_by_label("Pathway").fill("PMA")
    entry.get_by_label("Source URL").fill("https://www.accessdata.fda.gov/scripts/cdrh/cfdocs/cfpma/pma.cfm")
    entry.get_by_role("button", name="Add entry").click()
    page.locator("#decision-status").select_option("approved")
    expect(page.locator("#gate-passes")).to_contain_text("The policy gate is met")
    page.locator("#decision-reason").fill("Evidence and FDA approval in place.")
    page.get_by_role("button", name="Record decision").click()
    expect(page.locator("#status-badge")).to_have_text("approved")
    expect(page.locator("#booking-answer")).to_have_text("bookable")
    assert booking_check(page, live, "walk-filler") is True

    # Withdraw: not bookable.
    page.locator("#decision-status").select_option("withdrawn")
    page.locator("#decision-reason").fill("Withdrawn while a safety signal is reviewed.")
    page.get_by_role("button", name="Record decision").click()
    expect(page.locator("#status-badge")).to_have_text("withdrawn")
    expect(page.locator("#booking-answer")).to_have_text("not bookable")
    assert booking_check(page, live, "walk-filler") is False
    expect(page.locator("#audit")).to_contain_text("rita@clinic.example")

    # Sign out.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto(f"{live}/console/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.console_errors == []


def test_a_concurrent_edit_keeps_the_draft_and_shows_what_changed(app, live, browser, make_person):
    from playwright.sync_api import expect

    add_treatment(app, "shared", summary="The first summary.")
    mine, theirs = browser.new_context(), browser.new_context()
    try:
        me, them = mine.new_page(), theirs.new_page()
        sign_in(me, live, make_person("editor"))
        sign_in(them, live, make_person("editor"))
        me.goto(f"{live}/console/treatments/shared#content")
        them.goto(f"{live}/console/treatments/shared#content")
        them.locator("#content-summary").fill("Their summary.")
        them.get_by_role("button", name="Save content").click()
        expect(them.get_by_text("Content saved.")).to_be_visible()

        me.locator("#content-name").fill("My new name")
        me.get_by_role("button", name="Save content").click()
        expect(me.locator("#conflict")).to_contain_text("Someone else saved this treatment")
        expect(me.locator("#conflict")).to_contain_text("now “Their summary.”")
        expect(me.locator("#content-name")).to_have_value("My new name")
        assert "412" not in me.content()
        me.get_by_role("button", name="Save content").click()
        expect(me.get_by_text("Content saved.")).to_be_visible()
        expect(me.locator("#content-name")).to_have_value("My new name")
    finally:
        mine.close(), theirs.close()


def test_a_form_from_an_ended_session_is_refused(live, page, make_person):
    from playwright.sync_api import expect

    sign_in(page, live, make_person("editor"))
    page.goto(f"{live}/console/treatments/new")
    page.context.clear_cookies()  # the session that issued the form's token is gone
    page.get_by_label("Slug").fill("forged")
    page.get_by_label("Name").fill("Forged")
    page.get_by_label("Category").fill("skin_procedure")
    page.get_by_label("Public summary").fill("Should not be made.")
    page.get_by_role("button", name="Add treatment").click()
    expect(page.get_by_role("heading", name="Form expired")).to_be_visible()
    page.console_errors.clear()  # the 400 itself is logged by Chromium


def test_an_editor_cannot_decide(app, live, page, make_person):
    from playwright.sync_api import expect

    add_treatment(app, "ready", studies=[study()], regulatory=[approval()])
    sign_in(page, live, make_person("editor"))
    page.goto(f"{live}/console/treatments/ready")
    expect(page.locator("#cannot-decide")).to_contain_text("Only reviewers and admins record decisions")
    expect(page.locator("#decision-form")).to_have_count(0)
    assert page.console_errors == []


def test_sign_in_attempts_are_limited_per_account_not_for_everyone(app, live, page, make_person):
    from playwright.sync_api import expect

    limit = int(app.config["CONSOLE_SIGN_IN_LIMIT"].split("/")[0])
    target, colleague = make_person("editor"), make_person("editor")
    for _ in range(limit):
        sign_in(page, live, target, "not the password")
        expect(page.locator("#sign-in-error")).to_have_text("The email or password is not right.")
    sign_in(page, live, target)
    expect(page.locator("#sign-in-error")).to_contain_text("Too many failed sign-ins")
    sign_in(page, live, colleague)  # same address, another person: not locked out
    expect(page.get_by_role("heading", name="What needs attention")).to_be_visible()
    page.console_errors.clear()  # 401 and 429 answers are logged by Chromium


def test_the_console_works_at_360_px(app, live, browser, make_person):
    from playwright.sync_api import expect

    add_treatment(app, "narrow", studies=[study(participants=20)], regulatory=[approval()])
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        small = context.new_page()
        sign_in(small, live, make_person("reviewer"))
        for path in ("/console/", "/console/treatments", "/console/treatments/narrow"):
            small.goto(live + path)
            width = small.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, (path, width)
            assert_accessible(small)
        expect(small.get_by_role("button", name="Record decision")).to_be_visible()
        box = small.get_by_label("Public reason (shown on the website)").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    finally:
        context.close()


def test_the_sign_in_and_people_pages_are_accessible(live, page, make_person):
    sign_in(page, live, "nobody@clinic.example", "wrong password here")
    assert_accessible(page)
    sign_in(page, live, make_person("admin"))
    page.goto(f"{live}/console/people")
    assert_accessible(page)
    assert re.search(r"awaiting first sign-in|active", page.content())
    page.console_errors.clear()


def test_a_reviewer_uploads_medline_includes_one_record_excludes_another_and_the_prisma_flow_matches(
    app, live, page, make_person, tmp_path
):
    from playwright.sync_api import expect

    from tests.console.test_screening import FIXTURES

    add_treatment(app, "polynucleotides")
    medline = (FIXTURES / "sample.nbib").read_text()
    first = medline.split("\nPMID- 99999912")[0]
    export = tmp_path / "pubmed-export.nbib"
    export.write_text(medline + "\n" + first.strip() + "\n")  # three records, the third a repeat
    sign_in(page, live, make_person("reviewer"))
    page.goto(f"{live}/console/treatments/polynucleotides")
    expect(page.locator("#evidence-level")).to_have_text("insufficient")

    # Upload: two imported, one duplicate.
    page.get_by_role("link", name="Screening").click()
    upload = page.locator("#upload-form")
    upload.get_by_label("Treatment").select_option("polynucleotides")
    upload.get_by_label("File").set_input_files(str(export))
    upload.get_by_role("button", name="Upload").click()
    expect(page.locator("#import-summary")).to_contain_text("3 records read")
    expect(page.locator("#import-summary")).to_contain_text("2 imported")
    expect(page.locator("#import-summary")).to_contain_text("1 duplicate")
    expect(page.locator("#duplicates")).to_contain_text("Record 3")
    assert_accessible(page)

    # The queue: exclude the narrative review with a reason.
    page.get_by_role("link", name="Screen them now").click()
    review = page.locator(".record").filter(has_text="narrative review")
    review.get_by_label("Exclusion reason").select_option("wrong_design")
    review.get_by_role("button", name=re.compile("^Exclude")).click()
    expect(page.get_by_role("status")).to_contain_text("Excluded (wrong design)")
    assert_accessible(page)

    # Include the trial: complete its facts, then accept; the evidence level changes.
    page.locator(".record").filter(has_text="randomized controlled trial").get_by_role(
        "link", name=re.compile("^Include")
    ).click()
    expect(page.get_by_role("heading", name="Include a record")).to_be_visible()
    form = page.locator("#study-form")
    form.get_by_label("Design").select_option("rct")
    form.get_by_label("Participants").fill("400")
    form.get_by_label("Follow-up (months)").fill("12")
    form.get_by_label("Sponsorship").select_option("independent")
    form.get_by_label("Risk of bias", exact=True).select_option("low")
    form.get_by_label("Peer-reviewed").check()
    form.get_by_label("Randomised").check()
    form.get_by_label("Controlled").check()
    form.get_by_role("button", name="Save and include").click()
    expect(page.get_by_role("status")).to_contain_text("Polynucleotides: evidence")
    expect(page.locator(".queue")).to_contain_text("Nothing here.")

    # The treatment's page: the level has changed, and the PRISMA counts match.
    page.goto(f"{live}/console/treatments/polynucleotides")
    expect(page.locator("#evidence-level")).not_to_have_text("insufficient")
    prisma = page.locator("#prisma")
    counts = {"identified": "3", "duplicates_removed": "1", "screened": "2", "excluded": "1", "included": "1"}
    for name, count in counts.items():
        expect(prisma.locator(f'[data-count="{name}"]')).to_have_text(count)
    expect(prisma.locator('[data-reason="wrong_design"]')).to_have_text("1")
    assert_accessible(page)
    assert page.console_errors == []


def test_an_admin_invites_someone_who_signs_in_with_the_link_and_an_editor_cannot_administer(
    live, page, browser, make_person
):
    from playwright.sync_api import expect

    sign_in(page, live, make_person("admin"))
    page.get_by_role("link", name="Administration").click()
    assert_accessible(page)
    page.get_by_role("link", name="People").first.click()
    page.get_by_label("Email").fill("nina@clinic.example")
    page.get_by_label("Name").fill("Nina Editor")
    page.get_by_label("Role", exact=True).select_option("editor")
    page.get_by_role("button", name="Invite").click()
    link = page.locator("#one-time-link a").get_attribute("href")
    assert link and "/console/sign-in/link/" in link
    assert_accessible(page)
    for path in ("/console/admin/keys", "/console/admin/webhooks", "/console/admin/connectors"):
        page.goto(live + path)
        assert_accessible(page)

    context = browser.new_context()
    try:
        nina = context.new_page()
        nina.goto(live + link[link.index("/console/") :])
        nina.get_by_label("New password").fill(PASSWORD)
        nina.get_by_label("The same password again").fill(PASSWORD)
        nina.get_by_role("button", name="Set password and sign in").click()
        expect(nina.get_by_role("heading", name="What needs attention")).to_be_visible()
        expect(nina.get_by_role("link", name="Administration")).to_have_count(0)
        answer = nina.goto(f"{live}/console/people")
        assert answer is not None and answer.status == 403
        expect(nina.get_by_role("heading", name="Not allowed")).to_be_visible()
    finally:
        context.close()
    page.console_errors.clear()
