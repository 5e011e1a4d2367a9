"""Evidence derivation: the README's "Evidence rules", as pure functions.

Nothing here knows Flask or the database: studies are anything with the attributes of
`StudyFacts`, thresholds come from configuration through `EvidenceThresholds`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from api.treatments.vocabulary import Concern, EvidenceLevel, Sponsorship, StudyDesign

NON_HUMAN_DESIGNS = frozenset({StudyDesign.IN_VITRO, StudyDesign.ANIMAL, StudyDesign.EXPERT_OPINION})

# Rule 2: the starting level is set by the best peer-reviewed human design.
STARTING_LEVEL = {
    StudyDesign.SYSTEMATIC_REVIEW: EvidenceLevel.HIGH,
    StudyDesign.META_ANALYSIS: EvidenceLevel.HIGH,
    StudyDesign.RCT: EvidenceLevel.HIGH,
    StudyDesign.CONTROLLED_NON_RANDOMISED: EvidenceLevel.LOW,
    StudyDesign.COHORT: EvidenceLevel.LOW,
    StudyDesign.CASE_CONTROL: EvidenceLevel.LOW,
    StudyDesign.CASE_SERIES: EvidenceLevel.VERY_LOW,
    StudyDesign.CASE_REPORT: EvidenceLevel.VERY_LOW,
    StudyDesign.PILOT_UNCONTROLLED: EvidenceLevel.VERY_LOW,
}
RANDOMISED_DESIGNS = frozenset({StudyDesign.SYSTEMATIC_REVIEW, StudyDesign.META_ANALYSIS, StudyDesign.RCT})
CONTROLLED_DESIGNS = RANDOMISED_DESIGNS | {
    StudyDesign.CONTROLLED_NON_RANDOMISED,
    StudyDesign.COHORT,
    StudyDesign.CASE_CONTROL,
}


class StudyFacts(Protocol):
    @property
    def design(self) -> str: ...
    @property
    def participants(self) -> int | None: ...
    @property
    def randomised(self) -> bool: ...
    @property
    def controlled(self) -> bool: ...
    @property
    def follow_up_months(self) -> Decimal | float | int | None: ...
    @property
    def sponsorship(self) -> str: ...
    @property
    def peer_reviewed(self) -> bool: ...


@dataclass(frozen=True)
class EvidenceThresholds:
    small_study_participants: int = 100
    long_term_months: int = 12


@dataclass(frozen=True)
class EvidenceSummary:
    level: EvidenceLevel
    studies: int = 0
    human_studies: int = 0
    rcts: int = 0
    largest_sample: int | None = None
    longest_follow_up_months: float | None = None
    independent_peer_reviewed: int = 0
    concerns: list[Concern] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "level": self.level.value,
            "studies": self.studies,
            "human_studies": self.human_studies,
            "rcts": self.rcts,
            "largest_sample": self.largest_sample,
            "longest_follow_up_months": self.longest_follow_up_months,
            "independent_peer_reviewed": self.independent_peer_reviewed,
            "concerns": [c.value for c in self.concerns],
        }


def step_down(level: EvidenceLevel, steps: int) -> EvidenceLevel:
    """Lower a level by `steps`, never below very low (insufficient is only for no human data)."""
    return list(EvidenceLevel)[max(EvidenceLevel.VERY_LOW.rank, level.rank - steps)]


def derive_evidence(
    studies: Iterable[StudyFacts],
    adverse_events_reported: bool,
    thresholds: EvidenceThresholds,
) -> EvidenceSummary:
    """Derive the evidence level, counts and concerns from a treatment's studies."""
    studies = list(studies)
    human = [s for s in studies if StudyDesign(s.design) not in NON_HUMAN_DESIGNS]
    safety = [Concern.ADVERSE_EVENTS_REPORTED] if adverse_events_reported else []
    if not human:
        return EvidenceSummary(
            level=EvidenceLevel.INSUFFICIENT,
            studies=len(studies),
            concerns=[Concern.NO_HUMAN_STUDIES, *safety],
        )

    # Rule 1: judge the peer-reviewed human studies; if none is peer-reviewed, all of them.
    peer_reviewed = [s for s in human if s.peer_reviewed]
    basis = peer_reviewed or human
    largest = max((s.participants or 0) for s in basis)
    longest = max(float(s.follow_up_months or 0) for s in basis)

    weaknesses = {
        Concern.SMALL_SAMPLES: largest < thresholds.small_study_participants,
        Concern.NO_LONG_TERM_FOLLOW_UP: longest < thresholds.long_term_months,
        Concern.INDUSTRY_SPONSORED: not any(_independent(s) for s in basis),
    }
    start = _starting_level(peer_reviewed)
    level = step_down(start, sum(weaknesses.values()))

    design_gaps = {
        Concern.NOT_RANDOMISED: not any(_randomised(s) for s in human),
        Concern.NOT_CONTROLLED: not any(_controlled(s) for s in human),
        Concern.NOT_PEER_REVIEWED: not peer_reviewed,
    }
    concerns = [c for c in Concern if weaknesses.get(c) or design_gaps.get(c)] + safety
    return EvidenceSummary(
        level=level,
        studies=len(studies),
        human_studies=len(human),
        rcts=sum(1 for s in human if StudyDesign(s.design) == StudyDesign.RCT),
        largest_sample=max((s.participants for s in human if s.participants is not None), default=None),
        longest_follow_up_months=max(
            (float(s.follow_up_months) for s in human if s.follow_up_months is not None),
            default=None,
        ),
        independent_peer_reviewed=sum(1 for s in peer_reviewed if _independent(s)),
        concerns=concerns,
    )


def _starting_level(peer_reviewed: Sequence[StudyFacts]) -> EvidenceLevel:
    if not peer_reviewed:
        return EvidenceLevel.VERY_LOW
    return max((STARTING_LEVEL[StudyDesign(s.design)] for s in peer_reviewed), key=lambda lv: lv.rank)


def _independent(study: StudyFacts) -> bool:
    return Sponsorship(study.sponsorship) == Sponsorship.INDEPENDENT


def _randomised(study: StudyFacts) -> bool:
    return study.randomised or StudyDesign(study.design) in RANDOMISED_DESIGNS


def _controlled(study: StudyFacts) -> bool:
    return study.controlled or StudyDesign(study.design) in CONTROLLED_DESIGNS
