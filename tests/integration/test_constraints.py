"""The database itself refuses what it can: duplicates, unknown enum values, negatives, orphans"""

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from api.db import get_engine, get_session
from api.treatments.models import Treatment

NOW = "2026-01-01 00:00:00+00:00"


def insert_treatment(conn, slug="t-1", status="under_review"):
    conn.execute(
        text(
            "INSERT INTO treatments (slug, name, aliases, search_text, category, summary, explanation,"
            " explanation_html, status, status_reason, booking_requirements, safety, version,"
            " created_at, updated_at) VALUES (:slug, 'n', '[]', '', 'c', 's', '', '', :status, '',"
            " '[]', '[]', 1, :now, :now)"
        ),
        {"slug": slug, "status": status, "now": NOW},
    )
    return conn.execute(text("SELECT id FROM treatments WHERE slug = :slug"), {"slug": slug}).scalar()


def insert_study(conn, treatment_id, **overrides):
    values = {"tid": treatment_id, "design": "rct", "participants": 10, "follow": 1, "now": NOW} | overrides
    conn.execute(
        text(
            "INSERT INTO studies (treatment_id, title, design, participants, randomised, controlled,"
            " blinded, follow_up_months, sponsorship, peer_reviewed, outcome_summary, version,"
            " created_at, updated_at) VALUES (:tid, 't', :design, :participants, false, false, false,"
            " :follow, 'unknown', false, '', 1, :now, :now)"
        ),
        values,
    )


@pytest.mark.parametrize(
    "violation",
    [
        lambda conn: (insert_treatment(conn, "dup"), insert_treatment(conn, "dup")),
        lambda conn: insert_treatment(conn, "bad-status", status="maybe"),
        lambda conn: insert_study(conn, insert_treatment(conn), participants=-1),
        lambda conn: insert_study(conn, insert_treatment(conn), follow=-0.5),
        lambda conn: insert_study(conn, insert_treatment(conn), design="horoscope"),
        lambda conn: insert_study(conn, 987654),
    ],
    ids=["duplicate slug", "unknown status", "negative participants", "negative follow-up",
         "unknown design", "orphan study"],
)  # fmt: skip
def test_database_refuses_invalid_rows(app, violation):
    with app.app_context(), pytest.raises(IntegrityError), get_engine().begin() as conn:
        violation(conn)


def test_timestamps_come_back_in_utc_with_an_offset(app):
    with app.app_context():
        session = get_session()
        session.add(Treatment(slug="tz", name="n", category="c", summary="s", status="under_review",
                              aliases=[], explanation="", explanation_html="", booking_requirements=[],
                              safety=[]))  # fmt: skip
        session.commit()
        session.expunge_all()
        stored = session.query(Treatment).filter_by(slug="tz").one()
        assert stored.created_at.utcoffset() == dt.timedelta(0)
