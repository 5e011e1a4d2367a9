"""Literature import: RIS, PubMed MEDLINE and CSL-JSON files become studies in screening"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import execute
from tests.helpers import create_treatment

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "literature"
PROBLEM = "application/problem+json"
RIS = "application/x-research-info-systems"
NBIB = "application/x-nbib"
CSL = "application/vnd.citationstyles.csl+json"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def post_file(client: Any, slug: str, body: bytes | str, content_type: str, headers: dict[str, str],
              query: str = "") -> Any:  # fmt: skip
    return client.post(
        f"/v1/treatments/{slug}/studies/import{query}", data=body, content_type=content_type, headers=headers
    )


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    return response.get_json()


def evidence(client: Any, slug: str) -> dict[str, Any]:
    return client.get(f"/v1/treatments/{slug}").get_json()["evidence"]


def event_types(app: Any) -> list[str]:
    return [row[0] for row in execute(app, "SELECT event_type FROM change_events ORDER BY id")]


@pytest.fixture
def editor(auth):
    return auth("editor", name="lit-editor")


@pytest.fixture
def slug(client, editor):
    return create_treatment(client, editor)["slug"]


# --- each format --------------------------------------------------------------------------------


def test_a_ris_file_is_imported_with_its_identifiers_as_studies_in_screening(client, editor, slug):
    response = post_file(client, slug, fixture("sample.ris"), RIS, editor)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["count"], body["records"], body["duplicates"]) == (3, 3, [])
    first, second, third = body["imported"]
    assert first | {"id": 0, "created_at": "", "updated_at": ""} == {
        "id": 0,
        "title": "Microneedling with a topical serum for photoaged skin: a randomised split-face trial",
        "authors": "Doe J, Roe RA", "journal": "Journal of Test Dermatology", "year": 2021,
        "doi": "10.5555/TPA.RIS.001", "pmid": None, "url": "https://doi.org/10.5555/TPA.RIS.001",
        "design": None, "participants": None, "randomised": False, "controlled": False, "blinded": False,
        "follow_up_months": None, "sponsorship": "unknown", "peer_reviewed": False, "outcome_summary": "",
        "risk_of_bias": "not_assessed", "risk_of_bias_note": None, "pooled_designs": None,
        "pooled_studies": None, "screening": "screening", "created_at": "", "updated_at": "",
    }  # fmt: skip
    assert (second["pmid"], second["doi"], second["authors"], second["year"]) == (
        "99999902",
        None,
        "Smith AM",
        2019,
    )
    assert (third["doi"], third["pmid"], third["authors"]) == (None, None, "TPA Test Consortium")
    listed = client.get(f"/v1/treatments/{slug}/studies").get_json()
    assert [s["id"] for s in listed] == [s["id"] for s in body["imported"]]


def test_a_pubmed_nbib_file_keeps_pmid_doi_and_an_unambiguous_publication_type(client, editor, slug):
    response = post_file(client, slug, fixture("sample.nbib"), NBIB, editor)

    assert response.status_code == 201, response.get_json()
    rct, narrative = response.get_json()["imported"]
    assert rct["pmid"] == "99999911"
    assert rct["doi"] == "10.5555/TPA.NBIB.011"
    assert rct["title"].endswith("trial whose title wraps onto a second line.")
    assert (rct["authors"], rct["journal"], rct["year"]) == (
        "Doe J, Roe RA",
        "Journal of Test Dermatology",
        2022,
    )
    assert (rct["design"], rct["screening"], rct["participants"]) == ("rct", "screening", None)
    assert (narrative["pmid"], narrative["doi"], narrative["design"]) == ("99999912", None, None)


def test_nbib_is_also_accepted_as_plain_text_with_a_format_argument(client, editor, slug):
    response = post_file(client, slug, fixture("sample.nbib"), "text/plain", editor, "?format=nbib")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["count"] == 2


def test_a_csl_json_file_keeps_doi_pmid_and_url(client, editor, slug):
    response = post_file(client, slug, fixture("sample.json"), CSL, editor)

    assert response.status_code == 201, response.get_json()
    first, second = response.get_json()["imported"]
    assert (first["doi"], first["pmid"], first["url"]) == (
        "10.5555/TPA.CSL.021", "99999921", "https://example.org/articles/21",
    )  # fmt: skip
    assert (first["authors"], first["journal"], first["year"]) == (
        "Doe J, van den Berg AM", "Journal of Test Dermatology", 2023,
    )  # fmt: skip
    assert (second["pmid"], second["year"], second["authors"]) == ("99999922", 2018, "TPA Test Consortium")
    assert {s["screening"] for s in (first, second)} == {"screening"}


def test_csl_json_is_also_accepted_as_application_json(client, editor, slug):
    response = post_file(client, slug, fixture("sample.json"), "application/json", editor)
    assert response.status_code == 201
    assert response.get_json()["count"] == 2


def test_the_format_argument_wins_over_the_content_type(client, editor, slug):
    response = post_file(
        client, slug, fixture("sample.ris"), "application/octet-stream", editor, "?format=ris"
    )
    assert response.status_code == 201
    assert response.get_json()["count"] == 3


def test_an_unknown_format_is_415_or_422(client, editor, slug):
    body = assert_problem(post_file(client, slug, fixture("sample.ris"), "text/plain", editor), 415)
    assert "format=" in body["detail"]
    response = post_file(client, slug, fixture("sample.ris"), RIS, editor, "?format=bibtex")
    assert "format" in {e["field"] for e in assert_problem(response, 422)["errors"]}


# --- evidence only counts accepted studies ------------------------------------------------------


def test_imported_studies_change_the_evidence_only_once_an_editor_accepts_them(app, client, editor, slug):
    before = evidence(client, slug)
    assert (before["level"], before["studies"]) == ("insufficient", 0)
    etag = client.get(f"/v1/treatments/{slug}").headers["ETag"]

    rct = post_file(client, slug, fixture("sample.nbib"), NBIB, editor).get_json()["imported"][0]

    assert evidence(client, slug) == before
    assert client.get(f"/v1/treatments/{slug}").headers["ETag"] != etag
    # Accepting without a design is refused, even for a record that came with none.
    url = f"/v1/treatments/{slug}/studies/{rct['id']}"
    study_etag = client.get(url).headers["ETag"]
    patch = client.patch(url, json={"screening": "accepted", "design": None},
                         headers=editor | {"If-Match": study_etag})  # fmt: skip
    assert_problem(patch, 422)
    assert evidence(client, slug) == before

    completed = {"screening": "accepted", "participants": 250, "randomised": True, "controlled": True,
                 "follow_up_months": 12, "sponsorship": "independent", "peer_reviewed": True}  # fmt: skip
    patch = client.patch(url, json=completed, headers=editor | {"If-Match": study_etag})

    assert patch.status_code == 200, patch.get_json()
    assert (patch.get_json()["design"], patch.get_json()["pmid"]) == ("rct", "99999911")
    after = evidence(client, slug)
    assert (after["level"], after["studies"], after["rcts"], after["largest_sample"]) == ("high", 1, 1, 250)
    assert event_types(app)[-1] == "study.updated"


def test_an_imported_study_without_a_design_is_accepted_once_the_editor_sets_one(client, editor, slug):
    study = post_file(client, slug, fixture("sample.ris"), RIS, editor).get_json()["imported"][1]
    url = f"/v1/treatments/{slug}/studies/{study['id']}"
    headers = editor | {"If-Match": client.get(url).headers["ETag"]}

    patch = client.patch(url, json={"screening": "accepted", "design": "case_series", "participants": 12},
                         headers=headers)  # fmt: skip

    assert patch.status_code == 200, patch.get_json()
    assert (evidence(client, slug)["studies"], evidence(client, slug)["level"]) == (1, "very_low")


# --- duplicates ---------------------------------------------------------------------------------


def test_duplicates_by_doi_in_any_case_by_pmid_and_within_the_file_are_reported_not_added(
    client, editor, slug
):
    first = post_file(client, slug, fixture("sample.ris"), RIS, editor).get_json()["imported"]

    response = post_file(client, slug, fixture("duplicates.ris"), RIS, editor)

    assert response.status_code == 201
    body = response.get_json()
    assert (body["count"], body["records"]) == (1, 4)
    new = body["imported"][0]
    assert new["doi"] == "10.5555/TPA.DUP.003"
    assert body["duplicates"] == [
        {"record": 1, "title": "The RIS fixture's first record again, its DOI in lower case",
         "doi": "10.5555/tpa.ris.001", "pmid": None, "matched_on": "doi",
         "existing_study_id": first[0]["id"], "duplicate_of_record": None},
        {"record": 2, "title": "The RIS fixture's second record again, by its PMID", "doi": None,
         "pmid": "99999902", "matched_on": "pmid", "existing_study_id": first[1]["id"],
         "duplicate_of_record": None},
        {"record": 4, "title": "The new record repeated in the same file", "doi": "10.5555/tpa.dup.003",
         "pmid": None, "matched_on": "doi", "existing_study_id": new["id"], "duplicate_of_record": 3},
    ]  # fmt: skip
    assert len(client.get(f"/v1/treatments/{slug}/studies").get_json()) == 4


def test_a_file_with_nothing_new_answers_200_and_writes_nothing_but_its_batch(app, client, editor, slug):
    post_file(client, slug, fixture("sample.nbib"), NBIB, editor)
    events, audits = len(event_types(app)), execute(app, "SELECT COUNT(*) FROM audit_records")[0][0]
    etag = client.get(f"/v1/treatments/{slug}").headers["ETag"]

    response = post_file(client, slug, fixture("sample.nbib"), NBIB, editor)

    assert response.status_code == 200
    body = response.get_json()
    assert (body["count"], body["imported"], len(body["duplicates"])) == (0, [], 2)
    assert [d["matched_on"] for d in body["duplicates"]] == ["doi", "pmid"]
    assert len(event_types(app)) == events
    assert execute(app, "SELECT COUNT(*) FROM audit_records")[0][0] == audits
    assert client.get(f"/v1/treatments/{slug}").headers["ETag"] == etag
    assert body["batch"] | {"id": 0, "created_at": ""} == {
        "id": 0, "created_at": "", "created_by": "lit-editor", "filename": None, "format": "nbib",
        "records": 2, "imported": 0, "duplicates": 2,
    }  # fmt: skip
    assert execute(app, "SELECT COUNT(*) FROM import_batches")[0][0] == 2


def test_the_same_pmid_from_another_format_is_a_duplicate(client, editor, slug):
    post_file(client, slug, fixture("sample.json"), CSL, editor)
    nbib = "PMID- 99999922\nTI  - The CSL fixture's second item, exported from PubMed\nDP  - 2018\n"
    response = post_file(client, slug, nbib, NBIB, editor)
    assert response.status_code == 200
    assert response.get_json()["duplicates"][0]["matched_on"] == "pmid"


def test_a_study_added_by_hand_counts_for_duplicates_too(client, editor, slug):
    by_hand = {"title": "Entered by hand", "design": "rct", "doi": "10.5555/TPA.CSL.021"}
    added = client.post(f"/v1/treatments/{slug}/studies", headers=editor, json=by_hand)
    body = post_file(client, slug, fixture("sample.json"), CSL, editor).get_json()
    assert body["duplicates"][0]["existing_study_id"] == added.get_json()["id"]
    assert body["count"] == 1


# --- one transaction, audited, in the feed ------------------------------------------------------


def test_each_imported_study_is_audited_and_published_as_study_created(app, client, editor, slug):
    events_before = len(event_types(app))

    imported = post_file(client, slug, fixture("sample.ris"), RIS, editor).get_json()["imported"]

    assert event_types(app)[events_before:] == ["study.created"] * 3
    feed = client.get("/v1/changes?after=0&limit=500").get_json()["events"][-3:]
    assert [e["data"] for e in feed] == [
        {"slug": slug, "id": s["id"], "evidence_level": "insufficient"} for s in imported
    ]
    audit = [a for a in client.get(f"/v1/treatments/{slug}/audit", headers=editor).get_json()
             if a["entity"] == "study"]  # fmt: skip
    assert [(a["entity_id"], a["action"], a["actor_name"]) for a in audit] == [
        (s["id"], "created", "lit-editor") for s in imported
    ]
    assert audit[0]["changes"]["doi"] == {"from": None, "to": "10.5555/TPA.RIS.001"}
    assert audit[0]["changes"]["screening"] == {"from": None, "to": "screening"}


# --- malformed files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content_type, record, line, words",
    [
        ("malformed.ris", RIS, 2, 6, "no 'ER  - ' before the next 'TY' on line 8"),
        ("malformed.nbib", NBIB, 1, 5, "Not a MEDLINE line"),
        ("malformed.json", CSL, None, 5, "Not valid JSON"),
        ("sample.nbib", RIS, 1, 5, "'IS' outside a record"),
        ("sample.ris", NBIB, 1, 1, "Not a MEDLINE line"),
    ],
)  # fmt: skip
def test_a_malformed_file_is_422_naming_the_record_and_line(app, client, editor, slug, name, content_type,
                                                             record, line, words):  # fmt: skip
    response = post_file(client, slug, fixture(name), content_type, editor)

    body = assert_problem(response, 422)
    [error] = body["errors"]
    assert (error["record"], error["line"], error["location"]) == (record, line, "body")
    assert words in error["message"]
    assert f"line {line}" in error["message"].lower()
    assert execute(app, "SELECT COUNT(*) FROM studies")[0][0] == 0


def test_an_invalid_csl_item_is_422_naming_each_record_and_field(app, client, editor, slug):
    body = assert_problem(post_file(client, slug, fixture("invalid_record.json"), CSL, editor), 422)
    assert [(e["record"], e["field"]) for e in body["errors"]] == [(2, "title"), (3, "doi")]
    assert body["errors"][0]["message"].startswith("Record 2: title:")
    assert execute(app, "SELECT COUNT(*) FROM studies")[0][0] == 0


@pytest.mark.parametrize(
    "body, content_type, words",
    [
        (b"", RIS, "no references"),
        (b"   \n\n", NBIB, "no references"),
        (b"Just some text\nwith no records\n", RIS, "No references found"),
        (b'{"id": 1, "type": "article", "title": "An object, not an array"}', CSL, "array"),
        (b"[1, 2]", CSL, "object"),
        (b"[" * 100_000, CSL, "nesting too deep"),
        (b'[{"id": 1, "type": "x", "title": "T", "issued": {"date-parts": [["May"]]}}]', CSL, "date part"),
        (b"TY  - JOUR\nTI  - Latin-1 caf\xe9\nER  - \n", RIS, "UTF-8"),
        (b"TY  - JOUR\nTI  - A title\nER  - \nTI  - stray tag\n", RIS, "'TI' outside a record"),
        (b"TY  - JOUR\nTI  - A title\nER  - \nstray text\n", RIS, "Text between records"),
        (b"TY  - JOUR\nTI  - A title with no end\n", RIS, "no 'ER  - ' end tag"),
        (b"TY  - JOUR\nAU  - Doe, Jane\nER  - \n", RIS, "no title"),
        (b"PMID- 1\nTI  - Bad\x00title\n", NBIB, "Control characters"),
        (b"TI  - No PMID first\nPMID- 1\n", NBIB, "starts with 'PMID- '"),
        (b"PMID- 1\nTI  - A title\nDP  - 1066 Oct\n", NBIB, "year"),
        (b"PMID- abc\nTI  - A title\n", NBIB, "pmid"),
        ("TY  - JOUR\nTI  - {}\nER  - \n".format("x" * 501).encode(), RIS, "title"),
    ],
)  # fmt: skip
def test_files_that_are_not_references_are_422(client, editor, slug, body, content_type, words):
    problem = assert_problem(post_file(client, slug, body, content_type, editor), 422)
    assert any(words.lower() in (e["message"] + e["field"]).lower() for e in problem["errors"]), problem


def test_an_import_above_the_record_cap_is_422(app, client, editor, slug, monkeypatch):
    items = [{"id": n, "type": "article-journal", "title": f"Item {n}"} for n in range(501)]
    problem = assert_problem(post_file(client, slug, json.dumps(items), CSL, editor), 422)
    assert "at most 500" in problem["detail"]
    assert problem["errors"][0]["record"] == 501

    monkeypatch.setitem(app.config, "IMPORT_MAX_RECORDS", 2)
    problem = assert_problem(post_file(client, slug, fixture("sample.ris"), RIS, editor), 422)
    assert problem["errors"][0]["record"] == 3
    problem = assert_problem(post_file(client, slug, fixture("sample.nbib") * 2, NBIB, editor), 422)
    assert problem["errors"][0]["record"] == 3
    assert post_file(client, slug, fixture("sample.json"), CSL, editor).status_code == 201
    assert execute(app, "SELECT COUNT(*) FROM studies")[0][0] == 2


def test_a_body_above_the_size_limit_is_413(client, editor, slug):
    body = b"TY  - JOUR\n" + b"AB  - " + b"x" * (1024 * 1024) + b"\nER  - \n"
    assert_problem(post_file(client, slug, body, RIS, editor), 413)


def test_long_author_lists_are_cut_with_et_al(client, editor, slug):
    authors = "".join(f"AU  - Author{n:03d}, Given\n" for n in range(200))
    body = f"TY  - JOUR\nTI  - A consortium paper\n{authors}ER  - \n"
    study = post_file(client, slug, body, RIS, editor).get_json()["imported"][0]
    assert study["authors"].startswith("Author000 G, Author001 G")
    assert study["authors"].endswith(", et al.")
    assert len(study["authors"]) <= 1000


# --- who may import -----------------------------------------------------------------------------


def test_importing_needs_an_editor_key(app, client, auth, slug):
    assert_problem(post_file(client, slug, fixture("sample.ris"), RIS, {}), 401)
    assert_problem(
        post_file(client, slug, fixture("sample.ris"), RIS, {"Authorization": "Bearer tpa_x"}), 401
    )
    assert post_file(client, slug, fixture("sample.ris"), RIS, auth("editor")).status_code == 201


def test_importing_into_an_unknown_treatment_is_404(client, editor):
    assert_problem(post_file(client, "no-such-treatment", fixture("sample.ris"), RIS, editor), 404)


# --- a file upload (multipart/form-data), as a browser's file input sends it ------------------


def upload(client: Any, slug: str, files: dict[str, Any], headers: dict[str, str], query: str = "",
           **form: str) -> Any:  # fmt: skip
    """POST a multipart form: `files` maps part names to (bytes, file name[, content type])."""
    data: dict[str, Any] = dict(form)
    for part, (content, *name_and_type) in files.items():
        data[part] = (io.BytesIO(content), *name_and_type)
    return client.post(f"/v1/treatments/{slug}/studies/import{query}", data=data, headers=headers,
                       content_type="multipart/form-data")  # fmt: skip


@pytest.mark.parametrize(
    ("fixture_name", "file_name", "count"),
    [("sample.ris", "export.ris", 3), ("sample.nbib", "pubmed-set.nbib", 2),
     ("sample.nbib", "pubmed-set.TXT", 2), ("sample.json", "zotero.json", 2)],
)  # fmt: skip
def test_an_uploaded_file_is_read_in_the_format_its_name_gives(client, editor, slug, fixture_name, file_name,
                                                               count):  # fmt: skip
    # Browsers send their own guess of the part's type (often application/octet-stream): the name wins.
    files = {"file": (fixture(fixture_name), file_name, "application/octet-stream")}
    response = upload(client, slug, files, editor)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["count"], body["records"]) == (count, count)
    assert {study["screening"] for study in body["imported"]} == {"screening"}


def test_an_upload_is_the_same_import_as_the_raw_body(client, editor, auth):
    raw_slug, uploaded_slug = (
        create_treatment(client, editor)["slug"],
        create_treatment(client, editor)["slug"],
    )
    raw = post_file(client, raw_slug, fixture("sample.nbib"), NBIB, editor).get_json()
    uploaded = upload(client, uploaded_slug, {"file": (fixture("sample.nbib"), "x.nbib")}, editor).get_json()

    def comparable(result: dict[str, Any]) -> list[dict[str, Any]]:
        return [s | {"id": 0, "created_at": "", "updated_at": ""} for s in result["imported"]]

    assert comparable(raw) == comparable(uploaded)


def test_the_form_field_or_the_part_type_names_the_format_when_the_name_does_not(client, editor, slug):
    by_field = upload(client, slug, {"file": (fixture("sample.ris"), "references")}, editor, format="ris")
    assert by_field.status_code == 201, by_field.get_json()
    by_type = upload(client, slug, {"file": (fixture("sample.json"), "refs", CSL)}, editor)
    assert by_type.status_code == 201, by_type.get_json()
    # The field wins over the name, as ?format= wins over the Content-Type.
    wrong_name = upload(client, slug, {"file": (fixture("sample.nbib"), "refs.ris")}, editor, format="nbib")
    assert wrong_name.status_code == 201, wrong_name.get_json()


def test_an_upload_whose_format_cannot_be_told_is_415_naming_the_file(client, editor, slug):
    response = upload(
        client, slug, {"file": (fixture("sample.ris"), "refs.docx", "application/msword")}, editor
    )
    problem = assert_problem(response, 415)
    assert "'refs.docx'" in problem["detail"] and "`format`" in problem["detail"]


@pytest.mark.parametrize(
    ("files", "form", "field"),
    [({}, {}, "file"),
     ({"document": (b"TY  - JOUR\nER  - \n", "a.ris")}, {}, "document"),
     ({"file": (b"TY  - JOUR\nER  - \n", "a.ris")}, {"format": "bibtex"}, "format"),
     ({"file": (b"TY  - JOUR\nER  - \n", "a.ris")}, {"title": "x"}, "title")],
    ids=["no file", "another part", "unknown format", "unknown field"],
)  # fmt: skip
def test_a_bad_upload_is_422_naming_the_part(client, editor, slug, files, form, field):
    problem = assert_problem(upload(client, slug, files, editor, **form), 422)
    assert field in {e["field"] for e in problem["errors"]}


def test_two_files_are_422(client, editor, slug):
    data = {
        "file": [(io.BytesIO(fixture("sample.ris")), "a.ris"), (io.BytesIO(fixture("sample.ris")), "b.ris")]
    }
    response = client.post(f"/v1/treatments/{slug}/studies/import", data=data, headers=editor,
                           content_type="multipart/form-data")  # fmt: skip
    assert "Send exactly one file (got 2)." in {e["message"] for e in assert_problem(response, 422)["errors"]}


def test_a_form_field_contradicting_the_query_is_422(client, editor, slug):
    response = upload(client, slug, {"file": (fixture("sample.ris"), "a.ris")}, editor, "?format=nbib",
                      format="ris")  # fmt: skip
    assert "format" in {e["field"] for e in assert_problem(response, 422)["errors"]}


@pytest.mark.parametrize(
    "body",
    [b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.ris\"\r\n\r\nTY  - JOUR",  # cut
     b"not a multipart body at all", b""],
    ids=["cut short", "garbage", "empty"],
)  # fmt: skip
def test_a_malformed_multipart_body_is_a_problem_never_a_500(client, editor, slug, body):
    response = client.post(f"/v1/treatments/{slug}/studies/import", data=body, headers=editor,
                           content_type="multipart/form-data; boundary=x")  # fmt: skip
    assert_problem(response, 422)


def test_a_malformed_uploaded_file_is_422_naming_the_record_and_line(client, editor, slug):
    response = upload(client, slug, {"file": (fixture("malformed.ris"), "bad.ris")}, editor)
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["line"] is not None


def test_an_upload_above_the_size_limit_is_413_however_it_is_framed(client, editor, slug):
    boundary = "b0undary"
    content = b"TY  - JOUR\nAB  - " + b"x" * (1024 * 1024) + b"\nER  - \n"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.ris\"\r\n\r\n"
            .encode() + content + f"\r\n--{boundary}--\r\n".encode())  # fmt: skip
    headers = editor | {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    assert_problem(client.post(f"/v1/treatments/{slug}/studies/import", data=body, headers=headers), 413)
    # Sent chunked, as a server hands it on: no Content-Length (api/http.py's BoundedBody).
    chunked = client.post(
        f"/v1/treatments/{slug}/studies/import", input_stream=io.BytesIO(body),
        headers=headers | {"Transfer-Encoding": "chunked"}, environ_overrides={"CONTENT_LENGTH": ""},
    )  # fmt: skip
    assert_problem(chunked, 413)
    assert execute_count(client, slug) == 0


def execute_count(client: Any, slug: str) -> int:
    return len(client.get(f"/v1/treatments/{slug}/studies").get_json())


def test_an_upload_needs_an_editor_key(client, slug):
    assert_problem(upload(client, slug, {"file": (fixture("sample.ris"), "a.ris")}, {}), 401)
