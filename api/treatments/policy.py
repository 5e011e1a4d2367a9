"""The policy gate: what a treatment must show before the clinic may approve it, and when an
admin may override it. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from api.treatments.vocabulary import EvidenceLevel, RegulatoryStatusCode, Status

APPROVING_STATUSES = frozenset(
    {RegulatoryStatusCode.APPROVED, RegulatoryStatusCode.CLEARED, RegulatoryStatusCode.CE_MARKED}
)
OVERRIDE_ROLE = "admin"  # the only role that may approve despite the gate
OVERRIDE_MIN_LENGTH = 40  # characters of written justification; it is shown publicly


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


def decision_blockers(
    status: Status, level: EvidenceLevel, regulatory: Iterable[RegulatoryFacts], policy: GatePolicy
) -> list[UnmetCriterion]:
    """What the gate holds against a decision to `status`: only an approval has to pass it."""
    return approval_blockers(level, regulatory, policy) if status == Status.APPROVED else []


def override_refusal(status: Status, role: str, unmet: Sequence[UnmetCriterion]) -> str | None:
    """Why an override of the gate is refused, or None when it stands: only an admin overrides,
    only an approval, and only one the gate refuses (`unmet` from `decision_blockers`)."""
    if role != OVERRIDE_ROLE:
        return "not_admin"
    if status != Status.APPROVED:
        return "not_an_approval"
    if not unmet:
        return "nothing_refused"
    return None
