"""The policy gate: what a treatment must show before the clinic may approve it. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from api.treatments.vocabulary import EvidenceLevel, RegulatoryStatusCode

APPROVING_STATUSES = frozenset(
    {RegulatoryStatusCode.APPROVED, RegulatoryStatusCode.CLEARED, RegulatoryStatusCode.CE_MARKED}
)


class RegulatoryFacts(Protocol):
    @property
    def regulator(self) -> str: ...
    @property
    def status(self) -> str: ...


@dataclass(frozen=True)
class GatePolicy:
    minimum_level: EvidenceLevel = EvidenceLevel.MODERATE
    recognised_regulators: frozenset[str] = frozenset({"FDA", "EMA", "HPRA", "MHRA"})


@dataclass(frozen=True)
class UnmetCriterion:
    code: str
    message: str


def approval_blockers(
    level: EvidenceLevel, regulatory: Iterable[RegulatoryFacts], policy: GatePolicy
) -> list[UnmetCriterion]:
    """Every criterion for approval that the treatment does not meet; empty when it may be approved."""
    entries = list(regulatory)
    blockers = []
    if level.rank < policy.minimum_level.rank:
        blockers.append(
            UnmetCriterion(
                "evidence_below_minimum",
                f"The evidence level is {level.value}; approval needs at least {policy.minimum_level.value}.",
            )
        )
    if not any(
        e.regulator in policy.recognised_regulators and RegulatoryStatusCode(e.status) in APPROVING_STATUSES
        for e in entries
    ):
        blockers.append(
            UnmetCriterion(
                "no_regulatory_approval",
                "No recognised regulator has approved, cleared or CE-marked it.",
            )
        )
    warned = sorted({e.regulator for e in entries if e.status == RegulatoryStatusCode.WARNING_ISSUED})
    if warned:
        blockers.append(
            UnmetCriterion(
                "regulatory_warning",
                f"A regulator has issued a warning about it ({', '.join(warned)}).",
            )
        )
    return blockers
