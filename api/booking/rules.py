"""Bookability: who may be booked, failing closed. Pure.

The one rule every caller uses (booking checks, the list filter, views, change events): a
treatment is bookable only when it is `approved` and its bookings are not suspended.
`bookable_clause` states the same rule for SQL, built here so the two cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_
from sqlalchemy.sql.elements import ColumnElement

from api.treatments.vocabulary import Status

MESSAGES = {
    Status.APPROVED: "The clinic offers this treatment.",
    Status.UNDER_REVIEW: "The clinic is still evaluating this treatment and does not offer it yet.",
    Status.NOT_APPROVED: "The clinic does not offer this treatment.",
    Status.WITHDRAWN: "The clinic has stopped offering this treatment.",
}
UNKNOWN_MESSAGE = "The clinic has no record of this treatment, so it cannot be booked."
DOUBT_MESSAGE = "The clinic cannot confirm this treatment's status, so it cannot be booked."
SUSPENDED = "suspended_pending_review"
SUSPENDED_MESSAGE = (
    "Bookings are paused while the clinic reviews a new regulatory safety warning about this treatment."
)


@dataclass(frozen=True)
class Bookability:
    bookable: bool
    reason: str
    message: str


def is_bookable(status: str | None, suspended: bool = False) -> bool:
    """Only an approved treatment whose bookings are not suspended is bookable; anything else,
    or anything unknown, is not."""
    return status == Status.APPROVED and not suspended


def bookability(status: str | None, suspended: bool = False) -> Bookability:
    """The booking answer for a treatment's status; `None` means we do not know the treatment."""
    if status is None:
        return Bookability(False, "unknown_treatment", UNKNOWN_MESSAGE)
    try:
        known = Status(status)
    except ValueError:
        return Bookability(False, "unknown_status", DOUBT_MESSAGE)
    if known == Status.APPROVED and suspended:
        return Bookability(False, SUSPENDED, SUSPENDED_MESSAGE)
    return Bookability(is_bookable(known, suspended), known.value, MESSAGES[known])


def bookable_clause(status: Any, suspended_at: Any) -> ColumnElement[bool]:
    """`is_bookable` as a SQL condition on the given columns (the list filter's `bookable`)."""
    return and_(status == Status.APPROVED, suspended_at.is_(None))
