"""The schema exists only through migrations, and they agree with the models"""

import datetime as dt
import json

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from api.db import alembic_config
from api.models import Base
from tests.databases import fresh_database


def table_names(url):
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_migrations_build_the_schema_agree_with_the_models_and_downgrade_to_empty():
    with fresh_database(migrate=False) as url:
        config = alembic_config(url)
        assert table_names(url) == set()

        command.upgrade(config, "head")
        assert table_names(url) == set(Base.metadata.tables)
        command.check(config)  # raises if autogenerate would write anything

        command.downgrade(config, "base")
        assert table_names(url) == set()


def columns(url, table):
    engine = create_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def run(url, sql, **params):
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def row_counts(url):
    return {
        table: run(url, f"SELECT count(*) FROM {table}")[0][0]
        for table in ("treatments", "studies", "decisions")
    }


NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
NEW_STUDY_COLUMNS = {"risk_of_bias", "risk_of_bias_note", "pooled_designs", "pooled_studies"}


def add_study_as_of_0004(url, title, design, screening="accepted"):
    """A study written as the previous release writes one: none of the new columns."""
    run(url, """INSERT INTO studies (treatment_id, title, design, randomised, controlled, blinded,
                sponsorship, peer_reviewed, outcome_summary, screening, version, created_at, updated_at)
                VALUES (1, :title, :design, false, false, false, 'unknown', true, '', :screening, 1,
                :now, :now)""", title=title, design=design, screening=screening, now=NOW)  # fmt: skip


def add_treatment_as_of_0004(url):
    """A treatment with a decision and three studies: a review, a trial, an unscreened reference."""
    run(url, """INSERT INTO treatments (id, slug, name, aliases, search_text, category, summary, explanation,
                explanation_html, status, status_reason, booking_requirements, safety, version,
                created_at, updated_at)
                VALUES (1, 'peel', 'Peel', '[]', 'peel', 'skin_procedure', 's', '', '', 'approved', 'r',
                '[]', '[]', 1, :now, :now)""", now=NOW)  # fmt: skip
    run(url, """INSERT INTO decisions (treatment_id, status, reason, reason_codes, decided_by,
                decided_by_role, decided_at, evidence_level, evidence_snapshot, regulatory_snapshot)
                VALUES (1, 'approved', 'r', '[]', 'seed', 'admin', :now, 'moderate',
                '{"level": "moderate", "concerns": []}', '[]')""", now=NOW)  # fmt: skip
    add_study_as_of_0004(url, "A review", "meta_analysis")
    add_study_as_of_0004(url, "A trial", "rct")
    add_study_as_of_0004(url, "A reference", None, "screening")


def test_0005_keeps_every_row_gives_reviews_unknown_pooled_designs_and_downgrades_to_0004():
    with fresh_database(migrate=False) as url:
        config = alembic_config(url)
        command.upgrade(config, "0004")
        add_treatment_as_of_0004(url)
        before = row_counts(url)

        command.upgrade(config, "0005")
        assert row_counts(url) == before
        rows = run(url, "SELECT title, risk_of_bias, risk_of_bias_note, pooled_designs, pooled_studies "
                        "FROM studies ORDER BY id")  # fmt: skip
        assert [tuple(r) for r in rows] == [
            ("A review", "not_assessed", None, "unknown", None),
            ("A trial", "not_assessed", None, None, None),
            ("A reference", "not_assessed", None, None, None),
        ]
        snapshot = run(url, "SELECT evidence_snapshot FROM decisions")[0][0]  # JSON text on SQLite
        assert (json.loads(snapshot) if isinstance(snapshot, str) else snapshot)["level"] == "moderate"

        # The new columns take what the rules allow, and refuse the rest.
        run(url, "UPDATE studies SET risk_of_bias = 'high', risk_of_bias_note = 'Unblinded.', "
                 "pooled_designs = 'rct_only', pooled_studies = 12 WHERE title = 'A review'")  # fmt: skip
        for refused in (
            "UPDATE studies SET pooled_designs = 'unknown' WHERE title = 'A trial'",
            "UPDATE studies SET pooled_studies = 3 WHERE title = 'A reference'",
            "UPDATE studies SET pooled_studies = 0 WHERE title = 'A review'",
            "UPDATE studies SET risk_of_bias = 'dire' WHERE title = 'A trial'",
        ):
            with pytest.raises(IntegrityError):
                run(url, refused)

        # The previous release still writes during a rollout: its review keeps a null (read as unknown).
        add_study_as_of_0004(url, "A rollout review", "systematic_review")
        assert run(url, "SELECT pooled_designs FROM studies WHERE title = 'A rollout review'")[0][0] is None

        command.downgrade(config, "0004")
        assert row_counts(url) == before | {"studies": before["studies"] + 1}
        assert not NEW_STUDY_COLUMNS & columns(url, "studies")

        command.upgrade(config, "head")
        assert row_counts(url) == before | {"studies": before["studies"] + 1}
        assert NEW_STUDY_COLUMNS <= columns(url, "studies")


def test_0006_adds_the_suspension_columns_suspending_nothing_and_downgrades_to_0005():
    with fresh_database(migrate=False) as url:
        config = alembic_config(url)
        command.upgrade(config, "0004")
        add_treatment_as_of_0004(url)
        command.upgrade(config, "0005")
        before = row_counts(url)

        command.upgrade(config, "0006")
        assert row_counts(url) == before
        assert {"suspended_at", "suspension_reason"} <= columns(url, "treatments")
        assert [tuple(r) for r in run(url, "SELECT suspended_at, suspension_reason FROM treatments")] == [
            (None, None)
        ]

        command.downgrade(config, "0005")
        assert row_counts(url) == before
        assert not {"suspended_at", "suspension_reason"} & columns(url, "treatments")
