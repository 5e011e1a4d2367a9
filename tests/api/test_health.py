"""Health checks"""

from api import create_app


def test_live_answers_ok(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready_checks_the_database_and_says_how_the_caches_hear_of_writes(client, app):
    ready = client.get("/health/ready").get_json()
    assert ready["status"] == "ok"
    postgresql = app.extensions["db_engine"].dialect.name == "postgresql"
    expected = "listen" if postgresql else "sqlite-data-version"
    assert ready["cache"]["coherence"] == expected and ready["cache"]["trusted"] is True
    if postgresql:
        assert ready["cache"]["listener"] == "confirmed"


def test_ready_is_503_problem_when_the_database_is_unreachable(tmp_path):
    # A PostgreSQL port nothing listens on: the connection is refused at once.
    app = create_app({"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2"})
    response = app.test_client().get("/health/ready")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"]
    assert app.test_client().get("/health/live").status_code == 200
    app.extensions["db_engine"].dispose()
