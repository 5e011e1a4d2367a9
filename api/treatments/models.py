"""Treatment aggregate: the treatment, its evidence, regulatory entries and decisions"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from api.db import Base, checked_enum, utcnow
from api.treatments.vocabulary import (
    REVIEW_DESIGNS,
    EvidenceLevel,
    ExclusionReason,
    PooledDesigns,
    RegulatoryStatusCode,
    RiskOfBias,
    Screening,
    Sponsorship,
    Status,
    StudyDesign,
)

_REVIEWS_SQL = ", ".join(f"'{d.value}'" for d in sorted(REVIEW_DESIGNS))


class Timestamped:
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Treatment(Timestamped, Base):
    __tablename__ = "treatments"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        # The list's order (name, id), alone and after a status filter: pages come off the index.
        Index("ix_treatments_name_id", "name", "id"),
        Index("ix_treatments_status_name_id", "status", "name", "id"),
        Index("ix_treatments_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    aliases: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Lower-cased name and aliases, so `q` is one indexed-friendly LIKE on both databases.
    search_text: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(64), index=True)
    summary: Mapped[str] = mapped_column(String(1000))
    explanation: Mapped[str] = mapped_column(Text, default="")
    # Rendered and sanitised once, when the explanation is written, never on a read.
    explanation_html: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[Status] = mapped_column(checked_enum(Status, "treatment_status"))
    status_reason: Mapped[str] = mapped_column(String(500), default="")
    booking_requirements: Mapped[list[Any]] = mapped_column(JSON, default=list)
    safety: Mapped[list[Any]] = mapped_column(JSON, default=list)
    last_reviewed_on: Mapped[dt.date | None]
    next_review_due: Mapped[dt.date | None]
    # Set when a regulatory warning suspends an approved treatment's bookings; only a decision
    # clears it. A column of this public table, so every worker's read cache hears the change.
    suspended_at: Mapped[dt.datetime | None]
    suspension_reason: Mapped[str | None] = mapped_column(String(500))
    version: Mapped[int] = mapped_column(default=1)

    studies: Mapped[list[Study]] = relationship(
        back_populates="treatment", order_by="Study.id", cascade="all, delete-orphan"
    )
    regulatory: Mapped[list[RegulatoryStatus]] = relationship(
        back_populates="treatment", order_by="RegulatoryStatus.id", cascade="all, delete-orphan"
    )
    external_ids: Mapped[list[ExternalId]] = relationship(
        back_populates="treatment", order_by="ExternalId.system", cascade="all, delete-orphan"
    )
    decisions: Mapped[list[Decision]] = relationship(back_populates="treatment", order_by="Decision.id")

    __mapper_args__ = {"version_id_col": version}

    def external_id_map(self) -> dict[str, str]:
        """The same service's id in each booking system: `{"square": "...", "cliniko": "..."}`."""
        return {e.system: e.external_id for e in self.external_ids}


class ExternalId(Base):
    """The same service's id in one booking system; unique, so a booking check is never ambiguous."""

    __tablename__ = "treatment_external_ids"
    __table_args__ = (UniqueConstraint("system", "external_id", name="uq_external_ids_system_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    treatment_id: Mapped[int] = mapped_column(ForeignKey("treatments.id", ondelete="CASCADE"), index=True)
    system: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(120))

    treatment: Mapped[Treatment] = relationship(back_populates="external_ids")


class Study(Timestamped, Base):
    __tablename__ = "studies"
    __table_args__ = (
        CheckConstraint("participants IS NULL OR participants >= 0", name="participants_non_negative"),
        CheckConstraint("follow_up_months IS NULL OR follow_up_months >= 0", name="follow_up_non_negative"),
        CheckConstraint("year IS NULL OR (year >= 1800 AND year <= 2200)", name="year_range"),
        CheckConstraint("design IS NOT NULL OR screening <> 'accepted'", name="accepted_has_design"),
        CheckConstraint("pooled_studies IS NULL OR pooled_studies >= 1", name="pooled_studies_positive"),
        CheckConstraint(
            "(pooled_designs IS NULL AND pooled_studies IS NULL) "
            f"OR (design IS NOT NULL AND design IN ({_REVIEWS_SQL}))",
            name="pooled_only_for_reviews",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    treatment_id: Mapped[int] = mapped_column(ForeignKey("treatments.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    authors: Mapped[str | None] = mapped_column(String(1000))
    journal: Mapped[str | None] = mapped_column(String(300))
    year: Mapped[int | None]
    doi: Mapped[str | None] = mapped_column(String(200))
    pmid: Mapped[str | None] = mapped_column(String(20))
    url: Mapped[str | None] = mapped_column(String(2000))
    # Imported references may not have a design yet; they stay in screening until they do.
    design: Mapped[StudyDesign | None] = mapped_column(checked_enum(StudyDesign, "study_design"))
    participants: Mapped[int | None]
    randomised: Mapped[bool] = mapped_column(default=False)
    controlled: Mapped[bool] = mapped_column(default=False)
    blinded: Mapped[bool] = mapped_column(default=False)
    follow_up_months: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    sponsorship: Mapped[Sponsorship] = mapped_column(
        checked_enum(Sponsorship, "study_sponsorship"), default=Sponsorship.UNKNOWN
    )
    peer_reviewed: Mapped[bool] = mapped_column(default=False)
    outcome_summary: Mapped[str] = mapped_column(String(2000), default="")
    risk_of_bias: Mapped[RiskOfBias] = mapped_column(
        checked_enum(RiskOfBias, "study_risk_of_bias"),
        default=RiskOfBias.NOT_ASSESSED,
        server_default=RiskOfBias.NOT_ASSESSED.value,
    )
    risk_of_bias_note: Mapped[str | None] = mapped_column(String(500))
    # Reviews only (a CHECK keeps them off every other design): what the review pools, and how many.
    pooled_designs: Mapped[PooledDesigns | None] = mapped_column(
        checked_enum(PooledDesigns, "study_pooled_designs")
    )
    pooled_studies: Mapped[int | None]
    screening: Mapped[Screening] = mapped_column(
        checked_enum(Screening, "study_screening"), default=Screening.ACCEPTED, server_default="accepted"
    )
    # Set when the study came from a literature import (kept when the batch goes, as a null).
    import_batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("import_batches.id", ondelete="SET NULL"), index=True
    )
    # Why it was excluded at screening; a note is required for `other` (the screening service).
    exclusion_reason: Mapped[ExclusionReason | None] = mapped_column(
        checked_enum(ExclusionReason, "study_exclusion_reason")
    )
    exclusion_note: Mapped[str | None] = mapped_column(String(500))
    version: Mapped[int] = mapped_column(default=1)

    treatment: Mapped[Treatment] = relationship(back_populates="studies")

    __mapper_args__ = {"version_id_col": version}

    # What a review pools sets where it starts, so a review always says: `unknown` until someone
    # reads it. Kept on the attributes, so every writer (API, seed, literature import) obeys it
    # and the audit of a change sees it; not a CHECK, which would refuse every review the
    # previous release adds during a rollout (the rules read its null as unknown). Leaving the
    # review designs clears both pooled fields: `service.update_study`.
    @validates("design")
    def _review_says_what_it_pools(self, _key: str, design: Any) -> Any:
        if design in REVIEW_DESIGNS and self.pooled_designs is None:
            self.pooled_designs = PooledDesigns.UNKNOWN
        return design

    @validates("pooled_designs")
    def _unknown_unless_said(self, _key: str, pooled: Any) -> Any:
        return PooledDesigns.UNKNOWN if pooled is None and self.design in REVIEW_DESIGNS else pooled


class RegulatoryStatus(Timestamped, Base):
    """One regulator's position on the product class for an aesthetic indication."""

    __tablename__ = "regulatory_statuses"

    id: Mapped[int] = mapped_column(primary_key=True)
    treatment_id: Mapped[int] = mapped_column(ForeignKey("treatments.id", ondelete="CASCADE"), index=True)
    regulator: Mapped[str] = mapped_column(String(20))
    status: Mapped[RegulatoryStatusCode] = mapped_column(
        checked_enum(RegulatoryStatusCode, "regulatory_status")
    )
    pathway: Mapped[str | None] = mapped_column(String(100))
    product: Mapped[str | None] = mapped_column(String(300))
    indication: Mapped[str | None] = mapped_column(String(1000))
    reference: Mapped[str | None] = mapped_column(String(300))
    decided_on: Mapped[dt.date | None]
    source_url: Mapped[str] = mapped_column(String(2000))
    verified_on: Mapped[dt.date | None]
    version: Mapped[int] = mapped_column(default=1)

    treatment: Mapped[Treatment] = relationship(back_populates="regulatory")

    __mapper_args__ = {"version_id_col": version}


class Decision(Base):
    """The clinic's ruling that set a status. Append-only: never updated, never deleted."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    treatment_id: Mapped[int] = mapped_column(ForeignKey("treatments.id", ondelete="RESTRICT"), index=True)
    status: Mapped[Status] = mapped_column(checked_enum(Status, "decision_status"))
    previous_status: Mapped[Status | None] = mapped_column(checked_enum(Status, "decision_previous_status"))
    reason: Mapped[str] = mapped_column(String(2000))
    reason_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    decided_by: Mapped[str] = mapped_column(String(100))
    decided_by_role: Mapped[str] = mapped_column(String(20))
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    evidence_level: Mapped[EvidenceLevel] = mapped_column(
        checked_enum(EvidenceLevel, "decision_evidence_level")
    )
    evidence_snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    regulatory_snapshot: Mapped[list[Any]] = mapped_column(JSON)
    override_justification: Mapped[str | None] = mapped_column(String(4000))

    treatment: Mapped[Treatment] = relationship(back_populates="decisions")
