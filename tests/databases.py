"""Throwaway databases for tests: a temp SQLite file, or a fresh PostgreSQL database.

`TEST_DATABASE_URL` names a PostgreSQL server database to connect through (for example
`postgresql+psycopg://postgres@127.0.0.1:5432/test`); each call makes a new database with a
fresh name beside it and drops it afterwards, so runs never see each other's leftovers.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.db import alembic_config

SERVER_URL = os.environ.get("TEST_DATABASE_URL")


def on_postgresql() -> bool:
    return bool(SERVER_URL)


@contextmanager
def fresh_database(migrate: bool = True) -> Iterator[str]:
    """Yield the URL of a new, empty database (migrated to head unless `migrate` is false)."""
    with _new_database(migrate) as url:
        yield url


@contextmanager
def _new_database(migrate: bool) -> Iterator[str]:
    if SERVER_URL:
        name = f"tpa_test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
        try:
            if migrate:
                command.upgrade(alembic_config(url), "head")
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    else:
        with tempfile.TemporaryDirectory(prefix="tpa-test-") as folder:
            url = f"sqlite:///{Path(folder) / 'test.db'}"
            if migrate:
                command.upgrade(alembic_config(url), "head")
            yield url
