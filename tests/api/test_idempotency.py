"""Idempotency-Key on every POST: a retry replays the first answer and changes nothing more"""

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import execute
from tests.databases import on_postgresql
from tests.helpers import random_slug, serving


def body(slug):
    return {"slug": slug, "name": "Idempotent", "category": "skin_procedure", "summary": "Once only."}


def count(app, table):
    return execute(app, f"SELECT count(*) FROM {table}")[0][0]


def test_a_retry_with_the_same_key_replays_the_first_response(client, app, auth):
    headers = auth("editor") | {"Idempotency-Key": "create-1"}
    slug = random_slug()
    first = client.post("/v1/treatments", json=body(slug), headers=headers)
    events, audit = count(app, "change_events"), count(app, "audit_records")
    second = client.post("/v1/treatments", json=body(slug), headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.get_json() == first.get_json()
    assert second.headers["ETag"] == first.headers["ETag"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert count(app, "treatments") == 1
    assert count(app, "change_events") == events
    assert count(app, "audit_records") == audit


def test_the_same_key_with_a_different_body_is_422(client, auth):
    headers = auth("editor") | {"Idempotency-Key": "create-2"}
    assert client.post("/v1/treatments", json=body(random_slug()), headers=headers).status_code == 201
    response = client.post("/v1/treatments", json=body(random_slug()), headers=headers)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "Idempotency-Key"


@pytest.mark.parametrize(
    ("credentials", "path", "status"),
    [
        ({}, "/v1/treatments", 401),
        ({"Authorization": "Bearer tpa_" + "x" * 43}, "/v1/treatments", 401),
        ("editor", "/v1/treatments/botox/decisions", 403),  # decisions need a reviewer
    ],
)
def test_a_request_its_route_refuses_is_refused_before_the_key_is_claimed(
    client, app, auth, credentials, path, status
):
    headers = (auth(credentials) if isinstance(credentials, str) else credentials) | {
        "Idempotency-Key": "who-1"
    }
    answers = [client.post(path, json=body(random_slug()), headers=headers) for _ in range(2)]
    assert [a.status_code for a in answers] == [status, status]  # not 422 for the reused key
    assert "Idempotent-Replayed" not in answers[1].headers
    assert count(app, "idempotency_keys") == 0


def test_keys_belong_to_their_caller(client, auth):
    slug = random_slug()
    first = client.post("/v1/treatments", json=body(slug), headers=auth("editor") | {"Idempotency-Key": "k"})
    other = client.post("/v1/treatments", json=body(slug), headers=auth("editor") | {"Idempotency-Key": "k"})
    assert first.status_code == 201
    assert other.status_code == 409  # a new request for that caller: the slug now exists
    assert "Idempotent-Replayed" not in other.headers


def test_failed_requests_are_replayed_too_except_server_errors(client, auth):
    headers = auth("editor") | {"Idempotency-Key": "bad-1"}
    first = client.post("/v1/treatments", json={"slug": "Not Valid"}, headers=headers)
    second = client.post("/v1/treatments", json={"slug": "Not Valid"}, headers=headers)
    assert first.status_code == second.status_code == 422
    assert second.headers["Idempotent-Replayed"] == "true"


def test_public_posts_accept_keys_as_well(client):
    headers = {"Idempotency-Key": "check-1"}
    first = client.post("/v1/booking-checks", json={"treatments": ["x"]}, headers=headers)
    second = client.post("/v1/booking-checks", json={"treatments": ["x"]}, headers=headers)
    assert second.get_json() == first.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("key", ["", "a" * 256, "with space", "naïve"])
def test_malformed_keys_are_422(client, key):
    response = client.post("/v1/booking-checks", json={"treatments": ["x"]}, headers={"Idempotency-Key": key})
    assert response.status_code == 422


def test_keys_are_kept_a_day_and_then_may_be_reused(client, app, auth):
    headers = auth("editor") | {"Idempotency-Key": "old"}
    assert client.post("/v1/treatments", json=body(random_slug()), headers=headers).status_code == 201
    execute(app, "UPDATE idempotency_keys SET created_at = :t",
            t=dt.datetime.now(dt.UTC) - dt.timedelta(hours=23))  # fmt: skip
    assert client.post("/v1/treatments", json=body(random_slug()), headers=headers).status_code == 422
    execute(app, "UPDATE idempotency_keys SET created_at = :t",
            t=dt.datetime.now(dt.UTC) - dt.timedelta(hours=25))  # fmt: skip
    assert client.post("/v1/treatments", json=body(random_slug()), headers=headers).status_code == 201


@pytest.mark.skipif(not on_postgresql(), reason="concurrent retries need PostgreSQL")
def test_concurrent_retries_of_one_key_create_one_treatment(app, auth):
    import urllib.error
    import urllib.request

    import orjson

    headers = auth("editor") | {"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}
    payload = orjson.dumps(body(random_slug()))

    def post(_):
        request = urllib.request.Request(f"{base_url}/v1/treatments", data=payload, headers=headers,
                                         method="POST")  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            error.close()
            return error.code

    with serving(app) as base_url, ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(post, range(10)))
    assert set(statuses) <= {201, 409}
    assert statuses.count(201) >= 1
    assert count(app, "treatments") == 1
    assert count(app, "decisions") == 1


def test_expired_keys_are_purged_by_the_cron_command(client, app, auth, runner):
    headers = auth("editor")
    client.post("/v1/treatments", json=body(random_slug()), headers=headers | {"Idempotency-Key": "old-one"})
    client.post("/v1/treatments", json=body(random_slug()), headers=headers | {"Idempotency-Key": "new-one"})
    execute(app, "UPDATE idempotency_keys SET created_at = :t WHERE key = 'old-one'",
            t=dt.datetime.now(dt.UTC) - dt.timedelta(hours=25))  # fmt: skip
    result = runner.invoke(args=["purge-idempotency-keys"])
    assert result.exit_code == 0, result.output
    assert "Purged 1 " in result.output
    assert [row[0] for row in execute(app, "SELECT key FROM idempotency_keys")] == ["new-one"]


def test_a_write_whose_answer_fails_leaves_nothing_so_its_retry_runs_once(client, app, auth, monkeypatch):
    """The answer is committed with the write: a write whose answer could not be made (500)
    is not kept either, so the retry with its key creates the treatment, and only once."""
    from api.treatments import routes

    answer = routes._treatment_response
    failures = iter([RuntimeError("the answer could not be made")])

    def fails_once(*args, **kwargs):
        for failure in failures:
            raise failure
        return answer(*args, **kwargs)

    monkeypatch.setattr(routes, "_treatment_response", fails_once)
    headers, payload = auth("editor") | {"Idempotency-Key": "answer-fails"}, body(random_slug())
    first = client.post("/v1/treatments", json=payload, headers=headers)
    assert first.status_code == 500
    assert count(app, "treatments") == count(app, "change_events") == 0
    retry = client.post("/v1/treatments", json=payload, headers=headers)
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers, retry.get_json()
    assert count(app, "treatments") == 1


def test_a_request_whose_claim_was_taken_over_meanwhile_commits_nothing(client, app, auth, monkeypatch):
    """A slow request whose claim another took over (after IDEMPOTENCY_CLAIM_SECONDS) must not
    write too: its work and its answer are only committed onto its own claim."""
    from api.treatments import service

    create = service.create_treatment

    def overtaken(*args, **kwargs):
        # Another request found the claim abandoned, deleted it and claimed the key anew.
        execute(app, "UPDATE idempotency_keys SET created_at = :t", t=dt.datetime.now(dt.UTC))
        return create(*args, **kwargs)

    monkeypatch.setattr(service, "create_treatment", overtaken)
    response = client.post("/v1/treatments", json=body(random_slug()),
                           headers=auth("editor") | {"Idempotency-Key": "overtaken"})  # fmt: skip
    assert response.status_code == 409
    assert response.get_json()["type"].endswith("/idempotency-key-in-use")
    assert count(app, "treatments") == count(app, "change_events") == count(app, "audit_records") == 0
    assert execute(app, "SELECT response_status FROM idempotency_keys") == [(None,)]  # still the other's


def test_a_write_with_a_key_is_read_back_at_once(client, auth):
    """The write commits after its answer is made; the read cache still hears of it."""
    assert client.get("/v1/treatments").get_json()["items"] == []  # cached, empty
    slug = random_slug()
    headers = auth("editor") | {"Idempotency-Key": "read-back"}
    assert client.post("/v1/treatments", json=body(slug), headers=headers).status_code == 201
    assert [t["slug"] for t in client.get("/v1/treatments").get_json()["items"]] == [slug]
