"""Bookability: who may be booked, failing closed. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from api.treatments.vocabulary import Status

MESSAGES = {
    Status.APPROVED: "The clinic offers this treatment.",
    Status.UNDER_REVIEW: "The clinic is still evaluating this treatment and does not offer it yet.",
    Status.NOT_APPROVED: "The clinic does not offer this treatment.",
    Status.WITHDRAWN: "The clinic has stopped offering this treatment.",
}
UNKNOWN_MESSAGE = "The clinic has no record of this treatment, so it cannot be booked."
DOUBT_MESSAGE = "The clinic cannot confirm this treatment's status, so it cannot be booked."


@dataclass(frozen=True)
class Bookability:
    bookable: bool
    reason: str
    message: str


def is_bookable(status: str | None) -> bool:
    """Only an approved treatment is bookable; anything else, or anything unknown, is not."""
    return status == Status.APPROVED


def bookability(status: str | None) -> Bookability:
    """The booking answer for a treatment's status; `None` means we do not know the treatment."""
    if status is None:
        return Bookability(False, "unknown_treatment", UNKNOWN_MESSAGE)
    try:
        known = Status(status)
    except ValueError:
        return Bookability(False, "unknown_status", DOUBT_MESSAGE)
    return Bookability(is_bookable(known), known.value, MESSAGES[known])
