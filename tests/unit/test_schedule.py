"""The review schedule (api.treatments.schedule): when the next review falls due."""

from __future__ import annotations

import datetime as dt

import pytest

from api.config import Config
from api.treatments.schedule import add_months, next_review_due
from api.treatments.settings import RuleSettings

RULES = RuleSettings.from_config({k: getattr(Config, k) for k in dir(Config) if k.isupper()})
DAY = dt.date(2026, 12, 1)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        pytest.param(dt.date(2026, 1, 15), 1, dt.date(2026, 2, 15), id="same-day"),
        pytest.param(dt.date(2026, 1, 31), 1, dt.date(2026, 2, 28), id="to-a-shorter-month"),
        pytest.param(dt.date(2028, 1, 31), 1, dt.date(2028, 2, 29), id="to-a-leap-february"),
        pytest.param(dt.date(2026, 11, 30), 3, dt.date(2027, 2, 28), id="across-a-year"),
        pytest.param(dt.date(2026, 12, 1), 12, dt.date(2027, 12, 1), id="a-year"),
        pytest.param(dt.date(2026, 5, 31), 0, dt.date(2026, 5, 31), id="no-months"),
    ],
)
def test_add_months(day, months, expected):
    assert add_months(day, months) == expected


@pytest.mark.parametrize("status", ["approved", "not_approved", "under_review", "withdrawn"])
def test_the_next_review_is_the_interval_for_the_status(status):
    assert next_review_due(DAY, status, RULES) == add_months(DAY, RULES.review_interval_months(status))


def test_a_decision_no_one_reviewed_is_due_at_once():
    assert next_review_due(DAY, "approved", RULES, reviewed=False) == DAY
