"""Booking checks: fast, in request order, failing closed"""

import pytest

from api import create_app
from tests.helpers import add_treatment, approval, study


@pytest.fixture
def catalogue(app):
    add_treatment(
        app, "botox", "approved", studies=[study()], regulatory=[approval()],
        external_ids={"cliniko": "1001", "square": "SQ-BTX"},
        booking_requirements=[{"code": "prescriber_consultation", "text": "See a prescriber first."}],
    )  # fmt: skip
    add_treatment(app, "exosomes", "not_approved", external_ids={"cliniko": "2002"})
    add_treatment(app, "prp", "under_review")


def check(client, *refs):
    response = client.post("/v1/booking-checks", json={"treatments": list(refs)})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_an_approved_treatment_is_bookable_with_its_requirements(client, catalogue):
    answer = check(client, "botox")
    assert answer["bookable"] is True
    result = answer["results"][0]
    assert result == {
        "treatment": "botox", "slug": "botox", "bookable": True, "status": "approved",
        "reason": "approved", "message": result["message"],
        "requirements": [{"code": "prescriber_consultation", "text": "See a prescriber first."}],
    }  # fmt: skip


def test_one_refused_treatment_makes_the_whole_answer_no(client, catalogue):
    answer = check(client, "botox", "exosomes")
    assert answer["bookable"] is False
    assert [r["bookable"] for r in answer["results"]] == [True, False]
    assert answer["results"][1]["reason"] == "not_approved"


@pytest.mark.parametrize(("slug", "reason"), [("exosomes", "not_approved"), ("prp", "under_review")])
def test_statuses_other_than_approved_are_not_bookable(client, catalogue, slug, reason):
    result = check(client, slug)["results"][0]
    assert (result["bookable"], result["reason"], result["status"]) == (False, reason, reason)


def test_unknown_slugs_are_answered_not_bookable_rather_than_404(client, catalogue):
    result = check(client, "no-such-treatment")["results"][0]
    assert result["bookable"] is False
    assert result["reason"] == "unknown_treatment"
    assert result["status"] is None


def test_results_come_back_in_request_order_with_repeats(client, catalogue):
    refs = ["prp", "botox", "nope", "botox", "exosomes"]
    assert [r["treatment"] for r in check(client, *refs)["results"]] == refs


def test_booking_systems_can_name_services_by_their_own_ids(client, catalogue):
    answer = check(client, {"system": "cliniko", "id": "1001"}, {"system": "square", "id": "SQ-BTX"},
                   {"system": "cliniko", "id": "2002"}, {"system": "cliniko", "id": "9999"})  # fmt: skip
    results = answer["results"]
    assert [r["slug"] for r in results] == ["botox", "botox", "exosomes", None]
    assert [r["bookable"] for r in results] == [True, True, False, False]
    assert results[3]["reason"] == "unknown_treatment"
    assert results[0]["treatment"] == {"system": "cliniko", "id": "1001"}


@pytest.mark.parametrize(
    "body",
    [{}, {"treatments": []}, {"treatments": ["x"] * 101}, {"treatments": "botox"},
     {"treatments": [42]}, {"treatments": [{"system": "cliniko"}]},
     {"treatments": [{"system": "cliniko", "id": "1", "extra": 1}]}, {"treatments": ["a\x00b"]}],
)  # fmt: skip
def test_bad_bodies_are_422_problems(client, body):
    response = client.post("/v1/booking-checks", json=body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"]


def test_a_hundred_treatments_are_accepted(client, catalogue):
    assert len(check(client, *(["botox"] * 100))["results"]) == 100


def test_an_unreachable_database_never_answers_bookable():
    app = create_app({"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2"})
    response = app.test_client().post("/v1/booking-checks", json={"treatments": ["botox"]})
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert "bookable" not in response.get_json()
    app.extensions["db_engine"].dispose()
