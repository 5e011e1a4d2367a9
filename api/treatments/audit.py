"""What every treatment write shares: its audit records, with the snapshots they diff, and its one commit"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from api.audit.service import Actor, record_audit
from api.treatments.models import Treatment


def audit(
    session: Session, treatment: Treatment, entity: str, entity_id: int, action: str,
    actor: Actor, changes: dict[str, Any],
) -> None:  # fmt: skip
    record_audit(
        session, treatment_id=treatment.id, entity=entity, entity_id=entity_id, action=action,
        actor=actor, changes=changes,
    )  # fmt: skip


def snapshot(entry: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for name in fields:
        value = getattr(entry, name)
        if isinstance(value, dt.date):
            value = value.isoformat()
        elif hasattr(value, "value"):
            value = value.value
        elif value is not None and name == "follow_up_months":
            value = float(value)
        out[name] = value
    return out


def commit(session: Session) -> None:
    """Commit the use case's one transaction. (A concurrent write that won first makes a row
    version stale at flush; `api.errors` answers that 412 and the session rolls back.)"""
    session.commit()
