"""Public reads: list, filters, pagination, detail, ETags, sub-resources"""

import pytest

from tests.helpers import add_treatment, approval, study


@pytest.fixture
def catalogue(app):
    add_treatment(
        app, "botox", "approved", name="Botulinum toxin", aliases=["Vistabel", "Azzalure"],
        category="neuromodulator", studies=[study()], regulatory=[approval()],
        explanation="## Why we offer it\n\n<script>alert(1)</script> [x](javascript:alert(1))",
        booking_requirements=[{"code": "prescriber_consultation", "text": "See a prescriber first."}],
    )  # fmt: skip
    add_treatment(
        app, "exosomes", "not_approved", name="Exosome therapy", category="regenerative",
        studies=[study(design="pilot_uncontrolled", participants=12, randomised=False, controlled=False,
                       blinded=False, follow_up_months=3)],
        regulatory=[approval(status="warning_issued", reference="FDA notification 2019-12-06")],
        safety=[{"event": "granuloma", "description": "Reported.", "source_url": None}],
    )  # fmt: skip
    add_treatment(app, "prp", "under_review", name="Platelet-rich plasma", category="regenerative")


def slugs(response):
    return [item["slug"] for item in response.get_json()["items"]]


def test_list_returns_every_treatment_ordered_by_name(client, catalogue):
    response = client.get("/v1/treatments")
    assert response.status_code == 200
    assert slugs(response) == ["botox", "exosomes", "prp"]
    assert response.get_json()["total"] == 3


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=approved", ["botox"]),
        ("status=not_approved", ["exosomes"]),
        ("category=regenerative", ["exosomes", "prp"]),
        ("bookable=true", ["botox"]),
        ("bookable=false", ["exosomes", "prp"]),
        ("q=EXOSOME", ["exosomes"]),
        ("q=vistabel", ["botox"]),
        ("q=plasma&status=under_review", ["prp"]),
        ("q=%25", []),
        ("updated_since=2000-01-01T00:00:00Z", ["botox", "exosomes", "prp"]),
        ("updated_since=2999-01-01T00:00:00%2B00:00", []),
    ],
)
def test_list_filters(client, catalogue, query, expected):
    assert slugs(client.get(f"/v1/treatments?{query}")) == expected


@pytest.mark.parametrize(
    "query",
    ["status=maybe", "bookable=yes", "bookable=1", "per_page=101", "per_page=0", "page=0",
     "page=99999999999999999999", "updated_since=yesterday", "updated_since=2024-01-01T00:00:00",
     "category=Not%20A%20Code", "q="],
)  # fmt: skip
def test_bad_filter_values_are_422_problems_naming_the_field(client, query):
    response = client.get(f"/v1/treatments?{query}")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"][0]["field"] == query.split("=")[0]


def test_pagination_is_bounded_and_consistent(client, catalogue):
    first = client.get("/v1/treatments?per_page=2").get_json()
    second = client.get("/v1/treatments?per_page=2&page=2").get_json()
    assert [t["slug"] for t in first["items"] + second["items"]] == ["botox", "exosomes", "prp"]
    assert first["total"] == second["total"] == 3
    assert client.get("/v1/treatments?per_page=2&page=9").get_json()["items"] == []


def follow_cursors(client, query):
    """Every page, following next_cursor from the first."""
    pages = [client.get(f"/v1/treatments?{query}").get_json()]
    while pages[-1]["next_cursor"] is not None:
        pages.append(client.get(f"/v1/treatments?{query}&cursor={pages[-1]['next_cursor']}").get_json())
    return pages


def test_following_next_cursor_lists_every_treatment_once_in_order(client, catalogue):
    pages = follow_cursors(client, "per_page=1")
    assert [[t["slug"] for t in page["items"]] for page in pages] == [["botox"], ["exosomes"], ["prp"]]
    assert [page["page"] for page in pages] == [1, None, None]
    assert {page["total"] for page in pages} == {3}
    assert slugs(client.get("/v1/treatments?per_page=2&page=2")) == ["prp"]
    assert client.get("/v1/treatments?per_page=2&page=2").get_json()["next_cursor"] is None


def test_a_cursor_keeps_the_filters_it_is_sent_with(client, catalogue):
    pages = follow_cursors(client, "per_page=1&bookable=false")
    assert [t["slug"] for page in pages for t in page["items"]] == ["exosomes", "prp"]


def test_a_treatment_added_between_pages_is_never_repeated_and_later_ones_are_not_missed(
    app, client, catalogue
):
    first = client.get("/v1/treatments?per_page=2").get_json()  # botox, exosomes
    add_treatment(app, "aaa-early", "under_review", name="Aardvark peel")  # sorts before the cursor
    add_treatment(app, "zzz-late", "under_review", name="Zinc mask")  # sorts after it
    rest = client.get(f"/v1/treatments?per_page=2&cursor={first['next_cursor']}").get_json()
    assert [t["slug"] for t in rest["items"]] == ["prp", "zzz-late"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=WzEsMl0", "cursor"),  # [1,2]: the right encoding, the wrong content
        ("cursor=" + "A" * 401, "cursor"),
        ("cursor=WyJhIiwxXQ&page=2", "cursor"),  # ["a",1] with a page number
        ("per_page=100&page=102", "page"),  # 10,100 items deep
    ],
)
def test_a_bad_cursor_or_a_page_too_deep_is_a_422_naming_the_field(client, query, field):
    response = client.get(f"/v1/treatments?{query}")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"][0]["field"] == field


def test_page_numbers_reach_ten_thousand_items_deep(client, catalogue):
    assert client.get("/v1/treatments?per_page=100&page=101").status_code == 200
    assert client.get("/v1/treatments?per_page=1&page=10001").status_code == 200


def test_list_items_carry_status_bookability_and_evidence(client, catalogue):
    items = {t["slug"]: t for t in client.get("/v1/treatments").get_json()["items"]}
    assert items["botox"]["bookable"] is True
    assert items["exosomes"]["bookable"] is False
    assert items["exosomes"]["evidence"]["level"] == "very_low"
    assert "explanation" not in items["botox"]


def test_detail_has_the_full_public_record(client, catalogue):
    response = client.get("/v1/treatments/exosomes")
    body = response.get_json()
    assert response.status_code == 200
    assert body["status"] == "not_approved"
    assert body["bookable"] is False
    assert body["evidence"]["level"] == "very_low"
    assert {"small_samples", "not_randomised", "not_controlled", "no_long_term_follow_up",
            "industry_sponsored", "adverse_events_reported"} <= set(body["evidence"]["concerns"])  # fmt: skip
    assert body["regulatory"][0]["status"] == "warning_issued"
    assert body["safety"][0]["event"] == "granuloma"
    assert body["latest_decision"]["status"] == "not_approved"
    assert body["created_at"].endswith("+00:00")


def test_explanation_html_is_rendered_and_sanitised(client, catalogue):
    html = client.get("/v1/treatments/botox").get_json()["explanation_html"]
    assert "<h2>Why we offer it</h2>" in html
    assert "<script" not in html
    assert 'href="javascript' not in html  # left as inert text, never a link


def test_detail_sends_an_etag_and_answers_304_when_it_still_matches(client, catalogue):
    first = client.get("/v1/treatments/botox")
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    again = client.get("/v1/treatments/botox", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag
    other = client.get("/v1/treatments/botox", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_unknown_slug_is_a_404_problem(client):
    response = client.get("/v1/treatments/no-such-thing")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert "no-such-thing" in response.get_json()["detail"]


def test_sub_resources_list_decisions_studies_and_regulatory(client, catalogue):
    decisions = client.get("/v1/treatments/botox/decisions").get_json()
    assert [d["status"] for d in decisions] == ["approved"]
    assert decisions[0]["evidence_snapshot"]["level"] == "moderate"
    assert decisions[0]["regulatory_snapshot"][0]["reference"] == "P000000"
    assert client.get("/v1/treatments/botox/studies").get_json()[0]["design"] == "rct"
    assert client.get("/v1/treatments/botox/regulatory").get_json()[0]["regulator"] == "FDA"
    for sub in ("decisions", "studies", "regulatory"):
        assert client.get(f"/v1/treatments/nope/{sub}").status_code == 404


def test_list_and_detail_take_a_fixed_number_of_queries(app, client, count_queries):
    many = [study(title=f"Study {n}") for n in range(8)]
    entries = [approval(reference=f"P{n:06d}") for n in range(5)]
    # Each add is a write, so the read cache is cold for the first reads after it.
    for n in range(3):
        add_treatment(app, f"small-{n}")
    count_queries.statements.clear()
    client.get("/v1/treatments")
    client.get("/v1/treatments/small-0")
    small = count_queries.count

    for n in range(30):
        add_treatment(app, f"large-{n}", studies=many, regulatory=entries,
                      external_ids={"cliniko": str(n)})  # fmt: skip
    count_queries.statements.clear()
    client.get("/v1/treatments?per_page=50")
    client.get("/v1/treatments/large-0")
    assert count_queries.count == small
    assert count_queries.count <= 10  # list 4 + detail 6, each including the cache check
