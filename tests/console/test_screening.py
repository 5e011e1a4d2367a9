"""Literature in the console: upload, the screening queue (include, exclude with a reason) and
the PRISMA flow on a treatment's page"""

from __future__ import annotations

import io
import re
from pathlib import Path

from tests.conftest import execute
from tests.helpers import add_treatment

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "literature"


def upload(browser, slug: str, name: str = "sample.nbib", body: bytes | None = None):
    browser.get("/console/screening")
    data = {"treatment": slug, "file": (io.BytesIO(body or (FIXTURES / name).read_bytes()), name)}
    return browser.post("/console/screening/import", data, content_type="multipart/form-data")


def study_ids(app, slug: str) -> list[int]:
    rows = execute(
        app, f"SELECT s.id FROM studies s JOIN treatments t ON t.id = s.treatment_id WHERE t.slug = '{slug}' "
        "AND s.screening = 'screening' ORDER BY s.id",
    )  # fmt: skip
    return [r[0] for r in rows]


def test_an_upload_reports_what_was_imported_and_what_was_a_duplicate(app, signed_in):
    add_treatment(app, "polynucleotides")
    browser = signed_in("editor")
    first = upload(browser, "polynucleotides")
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    assert "2 imported" in first.get_data(as_text=True) and "0 duplicates" in first.get_data(as_text=True)
    again = upload(browser, "polynucleotides").get_data(as_text=True)
    assert "0 imported" in again and "2 duplicates" in again and "same DOI as study" in again
    batches = execute(
        app, "SELECT created_by, filename, format, records, imported, duplicates FROM import_batches"
    )
    assert [b[1:] for b in batches] == [("sample.nbib", "nbib", 2, 2, 0), ("sample.nbib", "nbib", 2, 0, 2)]
    assert batches[0][0].startswith("editor-")


def test_a_malformed_upload_shows_the_parsers_errors_and_no_file_is_refused(app, signed_in):
    add_treatment(app, "polynucleotides")
    browser = signed_in("editor")
    bad = upload(browser, "polynucleotides", "malformed.nbib")
    assert bad.status_code == 422 and "record" in bad.get_data(as_text=True)
    browser.get("/console/screening")
    none = browser.post("/console/screening/import", {"treatment": "polynucleotides"},
                        content_type="multipart/form-data")  # fmt: skip
    assert none.status_code == 422 and "Choose a file" in none.get_data(as_text=True)
    assert execute(app, "SELECT COUNT(*) FROM import_batches")[0][0] == 0


def test_the_queue_lists_records_across_treatments_and_excludes_with_a_reason(app, signed_in):
    add_treatment(app, "polynucleotides")
    add_treatment(app, "exosomes")
    browser = signed_in("editor")
    upload(browser, "polynucleotides")
    upload(browser, "exosomes", "sample.ris")
    page = browser.get("/console/screening").get_data(as_text=True)
    assert "Polynucleotides" in page and "Exosomes" in page
    only = browser.get("/console/screening?treatment=exosomes").get_data(as_text=True)
    assert "Polynucleotides" not in only.split('id="queue-h"')[1].split("</select>", 2)[-1]

    first, second = study_ids(app, "polynucleotides")
    etag_value = f'"s{first}-v1"'
    refused = browser.post(f"/console/treatments/polynucleotides/studies/{first}/exclude",
                           {"reason": "other", "note": "", "etag": etag_value})  # fmt: skip
    assert refused.status_code == 422 and "note" in refused.get_data(as_text=True).lower()
    done = browser.post(f"/console/treatments/polynucleotides/studies/{first}/exclude",
                        {"reason": "not_human", "etag": etag_value})  # fmt: skip
    assert done.status_code == 302
    stale = browser.post(f"/console/treatments/polynucleotides/studies/{second}/exclude",
                         {"reason": "not_human", "etag": '"s1-v99"'})  # fmt: skip
    assert stale.status_code == 302
    assert "someone changed" in browser.get(stale.headers["Location"]).get_data(as_text=True)
    rows = execute(
        app, f"SELECT screening, exclusion_reason FROM studies WHERE id IN ({first}, {second}) ORDER BY id"
    )
    assert rows == [("excluded", "not_human"), ("screening", None)]
    excluded = browser.get("/console/screening?state=excluded").get_data(as_text=True)
    assert "not human" in excluded


def test_including_a_record_completes_its_facts_and_changes_the_level_and_the_prisma_flow(app, signed_in):
    add_treatment(app, "polynucleotides")
    browser = signed_in("editor")
    upload(browser, "polynucleotides")
    first, second = study_ids(app, "polynucleotides")
    before = browser.get("/console/treatments/polynucleotides").get_data(as_text=True)
    assert 'data-count="identified">2<' in before and 'data-count="included">0<' in before

    form = browser.get(f"/console/treatments/polynucleotides/studies/{first}?include=1").get_data(
        as_text=True
    )
    assert "Include a record" in form and re.search(r'<option value="accepted"\s+selected', form)
    fields = {"title": "An RCT", "screening": "accepted", "design": "rct", "participants": "400",
              "follow_up_months": "12", "sponsorship": "independent", "risk_of_bias": "low",
              "randomised": "on", "controlled": "on", "peer_reviewed": "on", "include": "1",
              "etag": f'"s{first}-v1"', "original": "{}"}  # fmt: skip
    saved = browser.post(f"/console/treatments/polynucleotides/studies/{first}", fields)
    assert saved.status_code == 302 and saved.headers["Location"] == "/console/screening"
    assert "evidence" in browser.get("/console/screening").get_data(as_text=True)
    browser.post(f"/console/treatments/polynucleotides/studies/{second}/exclude",
                 {"reason": "wrong_design", "etag": f'"s{second}-v1"'})  # fmt: skip

    after = browser.get("/console/treatments/polynucleotides").get_data(as_text=True)
    for name, count in (("identified", 2), ("duplicates_removed", 0), ("screened", 2), ("excluded", 1),
                        ("included", 1)):  # fmt: skip
        assert f'data-count="{name}">{count}<' in after, name
    assert 'data-reason="wrong_design">1<' in after
    assert re.search(r"<h2 id=\"evidence-h\">Evidence: (?!very low)", after)


def test_screening_needs_an_editor_and_a_csrf_token(app, signed_in, console):
    assert console.get("/console/screening").status_code == 302  # to sign in
    add_treatment(app, "polynucleotides")
    browser = signed_in("editor")
    browser.get("/console/screening")
    refused = browser.client.post("/console/screening/import", data={"treatment": "polynucleotides"})
    assert refused.status_code == 400


def test_a_file_of_unknown_format_is_refused_with_the_reason(app, signed_in):
    add_treatment(app, "polynucleotides")
    browser = signed_in("editor")
    refused = upload(browser, "polynucleotides", "notes.docx", b"PK\x03\x04 not a reference file")
    assert refused.status_code == 415
    assert "Cannot tell the format of the uploaded file" in refused.get_data(as_text=True)
    assert execute(app, "SELECT COUNT(*) FROM import_batches")[0][0] == 0
