"""Bookability (api.booking.rules): only an approved treatment may be booked; everything else fails closed."""

from __future__ import annotations

import pytest

from api.booking.rules import Bookability, bookability, is_bookable
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
