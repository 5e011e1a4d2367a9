"""Shared fixtures: one migrated database per run, emptied after every test"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, text

from api import create_app
from api.api_keys.models import Role
from api.api_keys.service import create_key
from api.context import current_rules
from api.db import get_engine, get_session
from api.models import Base
from api.seed import load_catalogue
from tests.databases import fresh_database

pytest_plugins = ["tests.browser"]  # the browser tests' fixtures, defined once for the suite

TEST_SECRET_KEY = "kQ5nT0m6d0bGyH1x9W3x0Jd6o7b4mX2Zc8rV1sL5pQk="
# Every app the tests build, in this process or in a server they start, publishes its URLs here
# (a server refuses to start without TPA_PUBLIC_BASE_URL; tests that need another pass their own).
PUBLIC_BASE_URL = "https://clinic.test"
os.environ["TPA_PUBLIC_BASE_URL"] = PUBLIC_BASE_URL
# Every server the tests start signs the console's forms with this (a server refuses to start without
# TPA_SECRET_KEY; the test app, like any command, makes one of its own).
TEST_CONSOLE_SECRET_KEY = "test-console-secret-key-0123456789abcdef"
os.environ["TPA_SECRET_KEY"] = TEST_CONSOLE_SECRET_KEY


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "TESTING": True,
            "RATELIMIT_ENABLED": False,
            "LOG_REQUESTS": False,
            # Threaded test servers run many requests at once, more than a sync worker's pool.
            "DATABASE_POOL_SIZE": 5,
            "DATABASE_MAX_OVERFLOW": 10,
            # Encrypts connectors' credentials (a fixed test key; production keys come from the environment).
            "SECRET_KEYS": (TEST_SECRET_KEY,),
        }
    )
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture(autouse=True)
def _empty_database(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "app" not in request.fixturenames:
        return
    app: Flask = request.getfixturevalue("app")
    with app.app_context(), get_engine().begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    # A write behind the API's back, heard at once in this process (other processes hear it
    # through NOTIFY or data_version). SQLite also reuses event ids once the table is emptied.
    app.extensions["readcache"].forget()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def seeded(app: Flask) -> None:
    with app.app_context():
        load_catalogue(get_session(), current_rules(), demo=True)


@pytest.fixture
def auth(app: Flask) -> Any:
    """`auth("editor")` gives headers carrying a new key of that role."""
    counter = iter(range(1_000_000))

    def make(role: str = "editor", name: str | None = None) -> dict[str, str]:
        with app.app_context():
            key = create_key(get_session(), name or f"{role}-{next(counter)}", Role(role))
        return {"Authorization": f"Bearer {key}"}

    return make


@pytest.fixture
def editor(auth: Any) -> dict[str, str]:
    return auth("editor", name="editor-key")


@pytest.fixture
def reviewer(auth: Any) -> dict[str, str]:
    return auth("reviewer", name="reviewer-key")


@pytest.fixture
def admin(auth: Any) -> dict[str, str]:
    return auth("admin", name="admin-key")


class QueryCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(app: Flask) -> Iterator[QueryCounter]:
    counter = QueryCounter()
    engine = app.extensions["db_engine"]

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        counter.statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    yield counter
    event.remove(engine, "before_cursor_execute", before)


def execute(app: Flask, sql: str, **params: Any) -> list[Any]:
    """Run raw SQL against the test database (for assertions the API cannot see)."""
    with app.app_context(), get_engine().begin() as conn:
        result = conn.execute(text(sql), params)
        rows = list(result) if result.returns_rows else []
    app.extensions["readcache"].forget()  # in case it wrote: this process's caches hear at once
    return rows
