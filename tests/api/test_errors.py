"""Every error is an RFC 9457 problem document, never HTML, never a stack trace"""

import pytest

from api import create_app

PROBLEM = "application/problem+json"


def assert_problem(response, status):
    assert response.status_code == status
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status
    assert {"type", "title", "status", "instance"} <= set(body)
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_unknown_routes_are_404_problems(client):
    assert_problem(client.get("/v1/nothing-here"), 404)


def test_malformed_json_is_400(client):
    response = client.post("/v1/booking-checks", data="{not json", content_type="application/json")
    body = assert_problem(response, 400)
    assert "JSON" in body["detail"]


def test_wrong_method_is_405_with_allow(client):
    response = client.delete("/v1/booking-checks")
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


def test_bodies_over_the_limit_are_413(app):
    small = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "MAX_CONTENT_LENGTH": 1024})
    body = '{"treatments": ["' + "a" * 2048 + '"]}'
    response = small.test_client().post("/v1/booking-checks", data=body, content_type="application/json")
    assert_problem(response, 413)
    small.extensions["db_engine"].dispose()


def test_default_body_limit_is_one_mebibyte(app):
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024


def test_invalid_fields_are_422_with_field_errors(client):
    body = assert_problem(client.get("/v1/treatments?status=maybe"), 422)
    assert body["errors"] == [
        {"location": "query", "field": "status", "message": body["errors"][0]["message"]}
    ]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_non_json_bodies_are_refused_with_a_problem(client, content_type):
    response = client.post("/v1/booking-checks", data="treatments=botox", content_type=content_type)
    assert response.status_code in {415, 422}
    assert response.mimetype == PROBLEM


def test_an_unexpected_error_is_a_500_problem_without_details(app):
    failing = create_app({"DATABASE_URL": app.config["DATABASE_URL"]})

    @failing.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = failing.test_client().get("/boom")
    body = assert_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert body["title"] == "Internal server error"
    failing.extensions["db_engine"].dispose()
