"""Import batches: each reference file imported, kept for the PRISMA counts"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, utcnow


class ImportBatch(Base):
    """One file imported for a treatment: who, when, what it held and what became of it.

    Every import that reads a valid file is kept, even one where every record was a duplicate:
    the records it identified count in the treatment's PRISMA flow."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    treatment_id: Mapped[int] = mapped_column(ForeignKey("treatments.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))
    records: Mapped[int]
    imported: Mapped[int]
    duplicates: Mapped[int]
