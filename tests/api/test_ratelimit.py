"""Rate limits per client: 429 problem+json with Retry-After and rate-limit headers"""

import os
import uuid

import pytest

from api import create_app


@pytest.fixture
def limited(app):
    made = []

    def make(**config):
        limited_app = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "RATELIMIT_ENABLED": True,
                                  "LOG_REQUESTS": False, "RATE_LIMIT_PUBLIC": "3/minute",
                                  "RATE_LIMIT_BOOKING": "2/minute", "RATE_LIMIT_AUTHENTICATED": "6/minute",
                                  "RATE_LIMIT_AUTH_FAILURES": "2/minute"} | config)  # fmt: skip
        made.append(limited_app)
        return limited_app

    yield make
    for limited_app in made:
        limited_app.extensions["db_engine"].dispose()


def test_public_reads_are_limited_with_a_429_problem_and_headers(limited):
    client = limited().test_client()
    for _ in range(3):
        ok = client.get("/v1/treatments")
        assert ok.status_code == 200
    assert ok.headers["X-RateLimit-Limit"] == "3"
    assert ok.headers["X-RateLimit-Remaining"] == "0"
    refused = client.get("/v1/treatments")
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.headers["X-RateLimit-Remaining"] == "0"


def test_each_endpoint_has_its_own_count_for_a_client(limited):
    client = limited().test_client()
    assert [client.get(path).status_code for path in ("/v1/treatments", "/v1/changes") for _ in range(3)] == [
        200
    ] * 6
    assert client.get("/v1/treatments").status_code == 429


def test_limits_are_per_client_address(limited):
    client = limited().test_client()
    for _ in range(3):
        client.get("/v1/treatments", environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert client.get("/v1/treatments", environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 429
    assert client.get("/v1/treatments", environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code == 200


def test_booking_checks_have_their_own_limit(limited):
    client = limited().test_client()
    statuses = [client.post("/v1/booking-checks", json={"treatments": ["x"]}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_authenticated_clients_get_their_own_higher_limit(limited, auth):
    client = limited().test_client()
    headers = auth("editor")
    statuses = [client.get("/v1/treatments", headers=headers).status_code for _ in range(7)]
    assert statuses == [200] * 6 + [429]
    assert client.get("/v1/treatments").status_code == 200  # the address's own budget is untouched


BAD_KEY = {"Authorization": "Bearer tpa_" + "x" * 43}


def test_repeated_bad_keys_are_limited_but_a_valid_key_never_is(limited, auth):
    client = limited(RATE_LIMIT_PUBLIC="100/minute").test_client()
    assert [client.post("/v1/treatments", json={}, headers=BAD_KEY).status_code for _ in range(2)] == [
        401,
        401,
    ]
    refused = client.post("/v1/treatments", json={}, headers=BAD_KEY)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"]
    # The same address, over its failure limit: a valid key still reaches its route (422: empty body).
    assert client.post("/v1/treatments", json={}, headers=auth("editor")).status_code == 422
    assert client.post("/v1/treatments", json={}, headers=BAD_KEY).status_code == 429


def test_health_checks_are_never_limited(limited):
    client = limited().test_client()
    assert {client.get("/health/live").status_code for _ in range(10)} == {200}


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_available():
    try:
        import redis

        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception:
        return False


@pytest.mark.skipif(
    not redis_available() and not os.environ.get("REQUIRE_REDIS"), reason="needs the Redis on 127.0.0.1:6379"
)
def test_limits_hold_across_workers_through_redis(limited):
    prefix = f"tpa-test-{uuid.uuid4().hex[:8]}"
    shared = {"RATE_LIMIT_STORAGE_URL": REDIS_URL, "RATELIMIT_KEY_PREFIX": prefix}
    worker_a, worker_b = limited(**shared).test_client(), limited(**shared).test_client()
    statuses = [
        worker.get("/v1/treatments").status_code for worker in (worker_a, worker_b, worker_a, worker_b)
    ]
    assert statuses == [200, 200, 200, 429]


@pytest.mark.skipif(
    not redis_available() and not os.environ.get("REQUIRE_REDIS"), reason="needs the Redis on 127.0.0.1:6379"
)
def test_the_failure_limit_holds_across_workers_through_redis(limited, auth):
    prefix = f"tpa-test-{uuid.uuid4().hex[:8]}"
    shared = {
        "RATE_LIMIT_STORAGE_URL": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": prefix,
        "RATE_LIMIT_PUBLIC": "100/minute",
    }
    worker_a, worker_b = limited(**shared).test_client(), limited(**shared).test_client()
    statuses = [
        w.post("/v1/treatments", json={}, headers=BAD_KEY).status_code for w in (worker_a, worker_b, worker_a)
    ]
    assert statuses == [401, 401, 429]
    assert worker_b.post("/v1/treatments", json={}, headers=BAD_KEY).status_code == 429
    assert worker_b.post("/v1/treatments", json={}, headers=auth("editor")).status_code == 422


def test_retry_after_is_only_on_refusals_and_never_overrides_a_503s(limited):
    ok = limited().test_client().get("/v1/treatments")
    assert ok.status_code == 200 and "Retry-After" not in ok.headers
    down = limited(DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")
    unavailable = down.test_client().get("/v1/treatments")
    assert unavailable.status_code == 503
    assert unavailable.headers["Retry-After"] == "5"
