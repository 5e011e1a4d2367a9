"""Booking checks: can these treatments be booked? Read-only, failing closed.

Answers come from the facts remembered at the current version (`api.booking.facts`), never older
than the last write the worker heard of; a worker that cannot vouch for its version asks the
database (`api.readcache`), and one that cannot reach it answers 503, never a guess.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from sqlalchemy.orm import Session

from api.booking import facts as booking_facts
from api.booking.facts import UNKNOWN, Facts, Ref
from api.booking.rules import bookability
from api.readcache.store import VersionedStore


def check_booking(
    session: Session, store: VersionedStore, version: Hashable, refs: list[Ref]
) -> dict[str, Any]:
    """Answer each reference in request order; unknown ones are answered not bookable."""
    return _answer(refs, booking_facts.recall(session, store, version, refs))


def check_booking_now(session: Session, refs: list[Ref]) -> dict[str, Any]:
    """The same answer from the database itself, remembering nothing (outside a request: the
    connectors' guard)."""
    found = booking_facts.look_up(session, [booking_facts.key(ref) for ref in refs])
    return _answer(refs, [found.get(booking_facts.key(ref), UNKNOWN) for ref in refs])


def remembered_answer(store: VersionedStore, version: Hashable, refs: list[Ref]) -> dict[str, Any] | None:
    """The answer from remembered facts alone, or None if any reference must be looked up."""
    found = booking_facts.remembered(store, version, refs)
    return None if found is None else _answer(refs, found)


def _answer(refs: list[Ref], found: list[Facts]) -> dict[str, Any]:
    results = [_result(ref, facts) for ref, facts in zip(refs, found, strict=True)]
    return {"bookable": all(r["bookable"] for r in results), "results": results}


def _result(ref: Ref, facts: Facts) -> dict[str, Any]:
    known = facts is not UNKNOWN
    answer = bookability(facts.status if known else None, facts.suspended)
    return {
        "treatment": ref,
        "slug": facts.slug if known else None,
        "bookable": answer.bookable,
        "status": facts.status if known else None,
        "reason": answer.reason,
        "message": answer.message,
        "requirements": facts.requirements,
    }
