"""The review schedule: when a treatment's next review falls due. Pure."""

from __future__ import annotations

import calendar
import datetime as dt

from api.treatments.settings import RuleSettings


def next_review_due(today: dt.date, status: str, rules: RuleSettings, *, reviewed: bool = True) -> dt.date:
    """When the next review falls due after a decision or a review made `today`: the interval for
    the treatment's (new) status. A decision no one reviewed (the illustrative seed) is due today."""
    return add_months(today, rules.review_interval_months(status)) if reviewed else today


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, or the month's last day if it is shorter (31 Jan → 28 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))
