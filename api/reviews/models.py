"""A review that found no reason to change the treatment's decision"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, utcnow


class Review(Base):
    __tablename__ = "treatment_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    treatment_id: Mapped[int] = mapped_column(ForeignKey("treatments.id", ondelete="RESTRICT"), index=True)
    note: Mapped[str] = mapped_column(String(2000))
    reviewed_by: Mapped[str] = mapped_column(String(100))
    reviewed_by_role: Mapped[str] = mapped_column(String(20))
    reviewed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    next_review_due: Mapped[dt.date]
