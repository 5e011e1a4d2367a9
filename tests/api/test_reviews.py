"""Review monitoring: recording reviews, the due-review report and its cron command"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from api.reviews.service import due_state
from tests.conftest import execute
from tests.helpers import add_treatment, approval, create_treatment, study

PROBLEM = "application/problem+json"
NOTE = "Searched PubMed since the last review: no new trials, no new regulatory action."


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def months_later(day: dt.date, months: int) -> dt.date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=min(day.day, last))
        except ValueError:
            continue
    raise AssertionError


def set_due(app: Any, slug: str, due: dt.date | None) -> None:
    execute(app, "UPDATE treatments SET next_review_due = :due WHERE slug = :slug RETURNING id",
            due=due.isoformat() if due else None, slug=slug)  # fmt: skip


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    return response.get_json()


@pytest.fixture
def reviewer(auth):
    return auth("reviewer", name="rev-key")


@pytest.fixture
def editor(auth):
    return auth("editor", name="ed-key")


# --- recording a review -------------------------------------------------------------------------


def test_a_review_moves_the_schedule_on_by_the_interval_for_the_current_status(app, client, reviewer):
    add_treatment(app, "approved-one", status="approved", studies=[study()], regulatory=[approval()])
    set_due(app, "approved-one", today() - dt.timedelta(days=3))
    before = client.get("/v1/treatments/approved-one")

    response = client.post("/v1/treatments/approved-one/reviews", json={"note": NOTE}, headers=reviewer)

    assert response.status_code == 201, response.get_json()
    review = response.get_json()
    assert review["note"] == NOTE
    assert review["reviewed_by"] == "rev-key"
    assert review["next_review_due"] == months_later(today(), 12).isoformat()
    after = client.get("/v1/treatments/approved-one")
    body = after.get_json()
    assert body["last_reviewed_on"] == today().isoformat()
    assert body["next_review_due"] == months_later(today(), 12).isoformat()
    assert body["status"] == "approved"
    assert after.headers["ETag"] != before.headers["ETag"]


def test_a_review_of_a_treatment_under_review_schedules_the_shorter_interval(client, editor, reviewer):
    treatment = create_treatment(client, editor)
    response = client.post(
        f"/v1/treatments/{treatment['slug']}/reviews", json={"note": NOTE}, headers=reviewer
    )
    assert response.status_code == 201
    assert response.get_json()["next_review_due"] == months_later(today(), 6).isoformat()


def test_a_review_is_audited_and_published_in_the_change_feed(app, client, editor, reviewer):
    slug = create_treatment(client, editor)["slug"]
    set_due(app, slug, today() - dt.timedelta(days=1))
    after = client.get("/v1/changes?after=0&limit=500").get_json()["next_after"]

    review = client.post(f"/v1/treatments/{slug}/reviews", json={"note": NOTE}, headers=reviewer).get_json()

    events = client.get(f"/v1/changes?after={after}").get_json()["events"]
    assert [e["type"] for e in events] == ["treatment.reviewed"]
    assert events[0]["data"] == {
        "slug": slug, "review_id": review["id"], "status": "under_review",
        "last_reviewed_on": today().isoformat(), "next_review_due": review["next_review_due"],
    }  # fmt: skip
    audit = client.get(f"/v1/treatments/{slug}/audit", headers=editor).get_json()
    entry = audit[-1]
    assert (entry["entity"], entry["entity_id"], entry["action"]) == ("review", review["id"], "created")
    assert (entry["actor_name"], entry["actor_role"]) == ("rev-key", "reviewer")
    assert entry["changes"]["note"] == {"from": None, "to": NOTE}
    assert entry["changes"]["next_review_due"] == {
        "from": (today() - dt.timedelta(days=1)).isoformat(), "to": review["next_review_due"],
    }  # fmt: skip


def test_reviews_are_listed_publicly_oldest_first(client, editor, reviewer):
    slug = create_treatment(client, editor)["slug"]
    for note in ("First look.", "Second look."):
        assert (
            client.post(f"/v1/treatments/{slug}/reviews", json={"note": note}, headers=reviewer).status_code
            == 201
        )

    response = client.get(f"/v1/treatments/{slug}/reviews")

    assert response.status_code == 200
    assert [r["note"] for r in response.get_json()] == ["First look.", "Second look."]
    assert set(response.get_json()[0]) == {"id", "note", "reviewed_by", "reviewed_at", "next_review_due"}


@pytest.mark.parametrize(
    "body, field",
    [({}, "note"), ({"note": ""}, "note"), ({"note": "x" * 2001}, "note"), ({"note": "bad\x00note"}, "note"),
     ({"note": NOTE, "status": "approved"}, "status")],
)  # fmt: skip
def test_a_review_needs_a_short_clean_note(client, editor, reviewer, body, field):
    slug = create_treatment(client, editor)["slug"]
    response = client.post(f"/v1/treatments/{slug}/reviews", json=body, headers=reviewer)
    assert field in {e["field"] for e in assert_problem(response, 422)["errors"]}


def test_a_multi_line_note_is_kept(client, editor, reviewer):
    slug = create_treatment(client, editor)["slug"]
    note = "Checked:\n- PubMed\n- FDA and EMA databases"
    response = client.post(f"/v1/treatments/{slug}/reviews", json={"note": note}, headers=reviewer)
    assert response.status_code == 201
    assert response.get_json()["note"] == note


def test_reviewing_an_unknown_treatment_is_404(client, reviewer):
    assert_problem(
        client.post("/v1/treatments/no-such-thing/reviews", json={"note": NOTE}, headers=reviewer), 404
    )
    assert_problem(client.get("/v1/treatments/no-such-thing/reviews"), 404)


def test_recording_a_review_needs_a_reviewer_key(app, client, editor, auth):
    slug = create_treatment(client, editor)["slug"]
    url = f"/v1/treatments/{slug}/reviews"
    assert_problem(client.post(url, json={"note": NOTE}), 401)
    assert_problem(client.post(url, json={"note": NOTE}, headers=editor), 403)
    assert client.post(url, json={"note": NOTE}, headers=auth("admin")).status_code == 201
    assert execute(app, "SELECT COUNT(*) FROM treatment_reviews")[0][0] == 1


# --- reviews due --------------------------------------------------------------------------------


@pytest.fixture
def schedule(app, client, editor):
    """Four treatments: never scheduled, 10 days overdue, due in 5 days, due in 100 days."""
    slugs = {}
    for name, due in (("never", None), ("overdue", -10), ("soon", 5), ("later", 100)):
        slug = create_treatment(client, editor, slug=f"due-{name}", name=f"Due {name}")["slug"]
        set_due(app, slug, None if due is None else today() + dt.timedelta(days=due))
        slugs[name] = slug
    return slugs


def test_reviews_due_lists_overdue_first_then_soonest(client, editor, schedule):
    response = client.get("/v1/reviews/due?within=30", headers=editor)

    assert response.status_code == 200
    report = response.get_json()
    assert [i["slug"] for i in report["items"]] == ["due-never", "due-overdue", "due-soon"]
    assert report["overdue"] == 2
    assert report["as_of"] == today().isoformat()
    assert report["due_by"] == (today() + dt.timedelta(days=30)).isoformat()
    never, overdue, soon = report["items"]
    assert never | {"last_reviewed_on": None} == {
        "slug": "due-never", "name": "Due never", "status": "under_review", "last_reviewed_on": None,
        "next_review_due": None, "overdue": True, "days_overdue": None, "days_until_due": None,
        "gate_not_met": False, "unmet": [],
    }  # fmt: skip
    assert (overdue["overdue"], overdue["days_overdue"], overdue["days_until_due"]) == (True, 10, None)
    assert (soon["overdue"], soon["days_overdue"], soon["days_until_due"]) == (False, None, 5)
    assert soon["last_reviewed_on"] == today().isoformat()


def test_reviews_due_defaults_to_thirty_days_and_widens_with_within(client, editor, schedule):
    default = client.get("/v1/reviews/due", headers=editor).get_json()
    assert default["within_days"] == 30
    assert len(default["items"]) == 3
    wide = client.get("/v1/reviews/due?within=365", headers=editor).get_json()
    assert [i["slug"] for i in wide["items"]][-1] == "due-later"
    narrow = client.get("/v1/reviews/due?within=0", headers=editor).get_json()
    assert [i["slug"] for i in narrow["items"]] == ["due-never", "due-overdue"]


def test_a_review_takes_a_treatment_off_the_overdue_list(client, editor, reviewer, schedule):
    client.post("/v1/treatments/due-overdue/reviews", json={"note": NOTE}, headers=reviewer)
    report = client.get("/v1/reviews/due", headers=editor).get_json()
    assert "due-overdue" not in [i["slug"] for i in report["items"]]


@pytest.mark.parametrize("within", ["-1", "3651", "abc", "1.5"])
def test_reviews_due_refuses_a_bad_window(client, editor, within):
    response = client.get(f"/v1/reviews/due?within={within}", headers=editor)
    assert "within" in {e["field"] for e in assert_problem(response, 422)["errors"]}


def test_reviews_due_needs_an_editor_key(client):
    assert_problem(client.get("/v1/reviews/due"), 401)


@pytest.mark.parametrize(
    "due, expected",
    [(None, (True, None, None)), (-1, (True, 1, None)), (0, (False, None, 0)), (1, (False, None, 1))],
)
def test_due_today_is_not_yet_overdue(due, expected):
    day = dt.date(2026, 3, 1)
    state = due_state(None if due is None else day + dt.timedelta(days=due), day)
    assert (state["overdue"], state["days_overdue"], state["days_until_due"]) == expected


# --- the cron command ---------------------------------------------------------------------------


def test_the_cron_command_exits_0_when_nothing_is_overdue(app, client, editor, runner):
    slug = create_treatment(client, editor)["slug"]
    set_due(app, slug, today() + dt.timedelta(days=3))

    result = runner.invoke(args=["reviews", "due"])

    assert result.exit_code == 0, result.output
    assert "1 listed, 0 overdue" in result.output
    assert slug in result.output and "due in 3 days" in result.output


def test_the_cron_command_exits_0_on_an_empty_report(runner):
    result = runner.invoke(args=["reviews", "due"])
    assert result.exit_code == 0, result.output
    assert "0 listed, 0 overdue" in result.output


def test_the_cron_command_exits_1_and_prints_the_table_when_something_is_overdue(runner, schedule):
    result = runner.invoke(args=["reviews", "due"])

    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert "3 listed, 2 overdue" in lines[0]
    assert lines[1].split() == ["slug", "status", "last", "reviewed", "next", "due", "when"]
    assert [line.split()[0] for line in lines[2:]] == ["due-never", "due-overdue", "due-soon"]
    assert "OVERDUE: never scheduled" in lines[2]
    assert "OVERDUE by 10 days" in lines[3]
    assert "due in 5 days" in lines[4]


def test_the_cron_command_takes_a_window(runner, schedule):
    result = runner.invoke(args=["reviews", "due", "--within", "365"])
    assert result.exit_code == 1
    assert "due-later" in result.output
    assert runner.invoke(args=["reviews", "due", "--within", "-1"]).exit_code == 2
