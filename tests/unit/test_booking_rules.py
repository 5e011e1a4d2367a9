"""Bookability (api.booking.rules): only an approved treatment may be booked; everything else fails closed."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from api.booking.rules import (
    SUSPENDED,
    SUSPENDED_MESSAGE,
    Bookability,
    bookability,
    bookable_clause,
    is_bookable,
)
from api.treatments.vocabulary import Status

# (id, status, bookable, reason)
KNOWN_CASES = [
    ("approved", "approved", True, "approved"),
    ("approved-enum-member", Status.APPROVED, True, "approved"),
    ("under-review", "under_review", False, "under_review"),
    ("not-approved", "not_approved", False, "not_approved"),
    ("withdrawn", "withdrawn", False, "withdrawn"),
    ("withdrawn-enum-member", Status.WITHDRAWN, False, "withdrawn"),
    ("unknown-treatment", None, False, "unknown_treatment"),
]


@pytest.mark.parametrize(
    ("status", "bookable", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in KNOWN_CASES],
)
def test_bookability(status, bookable, reason):
    """Not suspended: the status alone decides."""
    answer = bookability(status)
    assert isinstance(answer, Bookability)
    assert answer.bookable is bookable
    assert answer.reason == reason
    assert is_bookable(status) is bookable


def test_the_table_covers_every_status():
    assert {case[1] for case in KNOWN_CASES if case[1] is not None} == {s.value for s in Status}


def test_only_approved_is_bookable():
    assert [s for s in Status if bookability(s).bookable] == [Status.APPROVED]


@pytest.mark.parametrize(
    "status",
    [
        pytest.param("APPROVED", id="upper-case"),
        pytest.param("Approved", id="title-case"),
        pytest.param(" approved", id="leading-space"),
        pytest.param("approved ", id="trailing-space"),
        pytest.param("approved\n", id="trailing-newline"),
        pytest.param("", id="empty"),
        pytest.param("yes", id="yes"),
        pytest.param("true", id="true"),
        pytest.param("pending", id="pending"),
        pytest.param("deleted", id="deleted"),
    ],
)
def test_an_unrecognised_status_is_not_bookable(status):
    answer = bookability(status)
    assert answer.bookable is False
    assert is_bookable(status) is False
    assert answer.reason not in {s.value for s in Status}
    assert answer.message.endswith(".")


@pytest.mark.parametrize(
    "status",
    [pytest.param(s.value, id=s.value) for s in Status] + [pytest.param(None, id="unknown-treatment")],
)
def test_every_answer_carries_a_human_message(status):
    message = bookability(status).message
    assert message[0].isupper()
    assert message.endswith(".")


def test_messages_differ_between_bookable_and_not():
    approved = bookability("approved").message
    assert all(bookability(s).message != approved for s in Status if s != Status.APPROVED)
    assert bookability(None).message != approved


# --- suspension: a regulatory warning pauses an approved treatment's bookings --------------------


@pytest.mark.parametrize("status", list(Status))
def test_a_suspension_makes_nothing_bookable(status):
    assert is_bookable(status, suspended=True) is False
    assert bookability(status, suspended=True).bookable is False


def test_a_suspended_approved_treatment_answers_suspended_pending_review_with_a_public_message():
    answer = bookability("approved", suspended=True)
    assert (answer.bookable, answer.reason) == (False, SUSPENDED)
    assert answer.reason == "suspended_pending_review"
    assert answer.message == SUSPENDED_MESSAGE


@pytest.mark.parametrize("status", [s for s in Status if s != Status.APPROVED])
def test_a_suspension_does_not_hide_a_status_that_is_not_bookable_anyway(status):
    assert bookability(status, suspended=True).reason == status.value


def test_an_unknown_treatment_stays_unknown_whatever_the_suspension():
    assert bookability(None, suspended=True).reason == "unknown_treatment"


def test_the_sql_rule_selects_exactly_what_is_bookable():
    """`bookable_clause` is `is_bookable` in SQL: the list filter cannot drift from the rule."""
    table = sa.Table("t", sa.MetaData(), sa.Column("status", sa.String), sa.Column("suspended_at", sa.String))
    rows = [{"status": s.value, "suspended_at": at} for s in Status for at in (None, "2026-12-01")]
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), rows)
        chosen = conn.execute(
            sa.select(table.c.status, table.c.suspended_at).where(
                bookable_clause(table.c.status, table.c.suspended_at)
            )
        ).all()
    engine.dispose()
    expected = [
        (r["status"], r["suspended_at"])
        for r in rows
        if is_bookable(r["status"], r["suspended_at"] is not None)
    ]
    assert [tuple(row) for row in chosen] == expected == [("approved", None)]
