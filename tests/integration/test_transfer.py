"""Export and restore: a round trip through both databases keeps every record"""

import os
from pathlib import Path

import orjson
import pytest
from alembic import command
from sqlalchemy import create_engine, text

from api import create_app
from api.db import alembic_config
from api.transfer import TABLES, export_registry, import_registry
from tests.databases import fresh_database
from tests.helpers import create_treatment

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "literature"


def engine_for(url):
    return create_engine(url)


def export_from(url):
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return export_registry(conn)["tables"]
    finally:
        engine.dispose()


def import_into(url, document):
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            return import_registry(conn, document)
    finally:
        engine.dispose()


@pytest.fixture
def populated(app, client, seeded, auth):
    """The seed plus a few governed writes, so audit, decisions and the feed have history."""
    editor, reviewer = auth("editor"), auth("reviewer")
    slug = create_treatment(client, editor, external_ids={"square": "SQ-1"})["slug"]
    client.post(
        f"/v1/treatments/{slug}/studies",
        headers=editor,
        json={"title": "A trial", "design": "rct", "participants": 150, "follow_up_months": 6.5},
    )
    client.post(f"/v1/treatments/{slug}/decisions", headers=reviewer,
                json={"status": "not_approved", "reason": "No regulatory approval."})  # fmt: skip
    return app.config["DATABASE_URL"]


@pytest.fixture
def screened(populated, client, auth):
    """`populated` plus a literature import (a batch its studies link to) and an exclusion."""
    editor = auth("editor", name="screener")
    slug = create_treatment(client, editor)["slug"]
    medline = (FIXTURES / "sample.nbib").read_bytes()
    imported = client.post(f"/v1/treatments/{slug}/studies/import?format=nbib", headers=editor,
                           data=medline, content_type="text/plain")  # fmt: skip
    study = imported.get_json()["imported"][1]
    etag = client.get(f"/v1/treatments/{slug}/studies/{study['id']}").headers["ETag"]
    client.post(f"/v1/treatments/{slug}/studies/{study['id']}/exclusion", json={"reason": "wrong_design"},
                headers=editor | {"If-Match": etag})  # fmt: skip
    return populated


def normalised(tables):
    """Compare values as the databases mean them (timestamps to the microsecond, decimals as numbers)."""
    return orjson.loads(orjson.dumps(tables))


def test_export_has_every_table_and_no_secrets(populated, runner, tmp_path):
    target = tmp_path / "export.json"
    result = runner.invoke(args=["export", str(target)])
    assert result.exit_code == 0, result.output
    document = orjson.loads(target.read_bytes())
    assert document["format"] == "treatment-policy-export" and document["version"] == 1
    assert set(document["tables"]) == set(TABLES)
    assert document["tables"]["treatments"] and document["tables"]["change_events"]
    raw = target.read_text()
    assert "key_hash" not in raw and "tpa_" not in raw and "whsec_" not in raw


def test_round_trip_through_sqlite_and_postgresql_keeps_every_record(screened):
    original = export_from(screened)
    assert original["import_batches"] and any(s["exclusion_reason"] for s in original["studies"])
    second_engine = os.environ.get("TEST_DATABASE_URL")
    with fresh_database() as middle:  # PostgreSQL when the suite runs there
        import_into(middle, {"format": "treatment-policy-export", "version": 1, "tables": original})
        through_middle = export_from(middle)
    with fresh_database_sqlite() as last:
        import_into(last, {"format": "treatment-policy-export", "version": 1, "tables": through_middle})
        final = export_from(last)
    assert normalised(through_middle) == normalised(original)
    assert normalised(final) == normalised(original)
    assert second_engine is None or middle.startswith("postgresql")


def fresh_database_sqlite():
    from tests import databases

    saved, databases.SERVER_URL = databases.SERVER_URL, None
    try:
        return fresh_database()
    finally:
        databases.SERVER_URL = saved


def test_import_continues_ids_after_the_restored_ones(populated):
    original = export_from(populated)
    with fresh_database() as url:
        import_into(url, {"format": "treatment-policy-export", "version": 1, "tables": original})
        restored = create_app({"DATABASE_URL": url, "RATELIMIT_ENABLED": False, "LOG_REQUESTS": False})
        from api.api_keys.models import Role
        from api.api_keys.service import create_key
        from api.db import get_session

        with restored.app_context():
            key = create_key(get_session(), "restorer", Role("editor"))
        client = restored.test_client()
        created = create_treatment(client, {"Authorization": f"Bearer {key}"})
        page = client.get("/v1/changes?after=0&limit=500")
        assert page.status_code == 200, page.get_json()
        feed = page.get_json()["events"]
        assert feed[-1]["treatment"] == created["slug"]
        assert [e["id"] for e in feed] == sorted(e["id"] for e in feed)
        restored.extensions["db_engine"].dispose()


def test_import_refuses_a_database_that_is_not_empty(populated):
    document = {"format": "treatment-policy-export", "version": 1, "tables": export_from(populated)}
    with pytest.raises(Exception, match="empty"):
        import_into(populated, document)


def test_import_refuses_another_format(runner, tmp_path):
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"format": "something-else", "version": 7}')
    result = runner.invoke(args=["import", str(wrong)])
    assert result.exit_code == 1
    assert "Import refused" in result.output


def test_migrations_downgrade_and_upgrade_over_the_seed_without_losing_a_row(populated):
    before = export_from(populated)
    with fresh_database() as url:
        import_into(url, {"format": "treatment-policy-export", "version": 1, "tables": before})
        config = alembic_config(url)
        command.downgrade(config, "0001")
        engine = engine_for(url)
        with engine.connect() as conn:
            kept = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                    for t in TABLES if t not in {"treatment_reviews", "import_batches"}}  # fmt: skip
        engine.dispose()
        assert kept == {t: len(before[t]) for t in kept}
        command.upgrade(config, "head")
        after = export_from(url)
    # 0005's study columns go with the downgrade and come back with their defaults (a review
    # `unknown`); every row, and every other value, is kept.
    assert normalised(without_0005_columns(after)) == normalised(without_0005_columns(before))
    reviews = {"systematic_review", "meta_analysis"}
    assert [(s["risk_of_bias"], s["risk_of_bias_note"], s["pooled_designs"], s["pooled_studies"])
            for s in after["studies"]] == [
        ("not_assessed", None, "unknown" if s["design"] in reviews else None, None) for s in before["studies"]
    ]  # fmt: skip
    assert any(s["pooled_designs"] not in {None, "unknown"} for s in before["studies"])


def without_0005_columns(tables):
    """Without what a downgrade to 0001 drops: 0005's study columns, and 0009's (with the batches)."""
    added = {"risk_of_bias", "risk_of_bias_note", "pooled_designs", "pooled_studies",
             "import_batch_id", "exclusion_reason", "exclusion_note"}  # fmt: skip
    studies = [{k: v for k, v in s.items() if k not in added} for s in tables["studies"]]
    return tables | {"studies": studies, "import_batches": []}
