"""Writing and reading the audit trail"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.audit.models import AuditRecord


@dataclass(frozen=True)
class Actor:
    """Who makes a change: an API key's name and role, or a command-line task."""

    name: str
    role: str


SEED_ACTOR = Actor(name="illustrative-seed", role="system")  # not a review: see api.seed
SYSTEM_ACTOR = Actor(name="system", role="system")  # the API's own actions (a warning suspends bookings)


def record_audit(
    session: Session,
    *,
    treatment_id: int,
    entity: str,
    entity_id: int,
    action: str,
    actor: Actor,
    changes: dict[str, Any],
) -> AuditRecord:
    """Add an audit record to the caller's transaction; it commits or rolls back with the change."""
    record = AuditRecord(
        treatment_id=treatment_id,
        entity=entity,
        entity_id=entity_id,
        action=action,
        actor_name=actor.name,
        actor_role=actor.role,
        changes=changes,
    )
    session.add(record)
    return record


def list_audit(
    session: Session, treatment_id: int, before: int | None = None, limit: int = 200
) -> list[AuditRecord]:
    """The newest `limit` records of a treatment (older than id `before`, if given), oldest first."""
    query = select(AuditRecord).where(AuditRecord.treatment_id == treatment_id)
    if before is not None:
        query = query.where(AuditRecord.id < before)
    newest = list(session.scalars(query.order_by(AuditRecord.id.desc()).limit(limit)))
    return newest[::-1]


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """`{field: {"from": old, "to": new}}` for every field whose value changed."""
    return {
        key: {"from": before.get(key), "to": after.get(key)}
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }
