"""Export and restore of the whole registry as one versioned JSON document.

Exported: treatments, their external ids, literature import batches, studies, regulatory entries,
decisions, reviews, the audit trail and the change feed, with their ids, so history and cursors
survive a move between databases. Not exported: API key hashes, webhook subscriptions (their
signing secrets), the webhook outbox and idempotency keys.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, DateTime, Numeric, Table, TypeDecorator, func, select, text
from sqlalchemy.engine import Connection

from api.db import Base, utcnow
from api.errors import Conflict, InvalidInput

FORMAT = "treatment-policy-export"
VERSION = 1
TABLES = (
    "treatments",
    "treatment_external_ids",
    "import_batches",
    "studies",
    "regulatory_statuses",
    "decisions",
    "treatment_reviews",
    "audit_records",
    "change_events",
)


def _tables() -> list[Table]:
    import api.models  # noqa: F401  (every table registered on the metadata)

    return [Base.metadata.tables[name] for name in TABLES]


def export_registry(conn: Connection) -> dict[str, Any]:
    """Every exported row, ordered by primary key, as JSON-ready values."""
    document: dict[str, Any] = {"format": FORMAT, "version": VERSION, "exported_at": utcnow().isoformat()}
    document["tables"] = {
        str(table.name): [
            {str(column): _to_json(value) for column, value in row._asdict().items()}
            for row in conn.execute(select(table).order_by(*table.primary_key.columns))
        ]
        for table in _tables()
    }
    return document


def import_registry(conn: Connection, document: dict[str, Any]) -> dict[str, int]:
    """Restore an export into an empty database, ids included, in the caller's transaction."""
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise InvalidInput(
            "Not a registry export this version can read.",
            [{"location": "file", "field": "version", "message": f"Expected {FORMAT} version {VERSION}."}],
        )
    if conn.execute(select(func.count()).select_from(Base.metadata.tables["treatments"])).scalar():
        raise Conflict("The database already holds treatments; import only restores into an empty one.")
    counts = {}
    for table in _tables():
        rows = [_from_json(table, row) for row in document["tables"].get(table.name, [])]
        if rows:
            conn.execute(table.insert(), rows)
        counts[table.name] = len(rows)
    if conn.dialect.name == "postgresql":
        for table in _tables():
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"COALESCE((SELECT max(id) FROM {table.name}), 0) + 1, false)"
                )
            )
    return counts


def _to_json(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return getattr(value, "value", value)


def _from_json(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in row.items():
        kind = table.columns[name].type
        if isinstance(kind, TypeDecorator):
            kind = kind.impl_instance
        if value is not None and isinstance(kind, DateTime):
            value = dt.datetime.fromisoformat(value)
        elif value is not None and isinstance(kind, Date):
            value = dt.date.fromisoformat(value)
        elif value is not None and isinstance(kind, Numeric):
            value = Decimal(value)
        out[name] = value
    return out
