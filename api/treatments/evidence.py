"""Evidence derivation: the README's "Evidence rules", as pure functions.

Nothing here knows Flask or the database: studies are anything with the attributes of
`StudyFacts`, thresholds come from configuration through `EvidenceThresholds`. Each step below
is named after the README's numbered rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from api.treatments.vocabulary import (
    REVIEW_DESIGNS,
    Concern,
    EvidenceLevel,
    PooledDesigns,
    RiskOfBias,
    Sponsorship,
    StudyDesign,
)

NON_HUMAN_DESIGNS = frozenset({StudyDesign.IN_VITRO, StudyDesign.ANIMAL, StudyDesign.EXPERT_OPINION})

# Rule 3: where each primary human design starts...
STARTING_LEVEL = {
    StudyDesign.RCT: EvidenceLevel.HIGH,
    StudyDesign.CONTROLLED_NON_RANDOMISED: EvidenceLevel.LOW,
    StudyDesign.COHORT: EvidenceLevel.LOW,
    StudyDesign.CASE_CONTROL: EvidenceLevel.LOW,
    StudyDesign.CASE_SERIES: EvidenceLevel.VERY_LOW,
    StudyDesign.CASE_REPORT: EvidenceLevel.VERY_LOW,
    StudyDesign.PILOT_UNCONTROLLED: EvidenceLevel.VERY_LOW,
}
# ...and a review starts where the studies it pools do, whatever the label on the paper.
REVIEW_STARTING_LEVEL = {
    PooledDesigns.RCT_ONLY: EvidenceLevel.HIGH,
    PooledDesigns.INCLUDES_NON_RANDOMISED: EvidenceLevel.LOW,
    PooledDesigns.UNCONTROLLED_ONLY: EvidenceLevel.VERY_LOW,
    PooledDesigns.UNKNOWN: EvidenceLevel.LOW,
}
CONTROLLED_DESIGNS = frozenset(
    {StudyDesign.RCT, StudyDesign.CONTROLLED_NON_RANDOMISED, StudyDesign.COHORT, StudyDesign.CASE_CONTROL}
)


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
    @property
    def risk_of_bias(self) -> str: ...
    @property
    def pooled_designs(self) -> str | None: ...


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
    # Where the rating started, and the designs of the studies that set it: every step down
    # judged only those studies (rule 4).
    starting_level: EvidenceLevel = EvidenceLevel.INSUFFICIENT
    judged_designs: list[StudyDesign] = field(default_factory=list)

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
            "starting_level": self.starting_level.value,
            "judged_designs": [d.value for d in self.judged_designs],
        }


def step_down(level: EvidenceLevel, steps: int) -> EvidenceLevel:
    """Lower a level by `steps`, never below very low (insufficient is only for no human data)."""
    return list(EvidenceLevel)[max(EvidenceLevel.VERY_LOW.rank, level.rank - steps)]


def starting_level(study: StudyFacts) -> EvidenceLevel:
    """Rule 3: where one human study starts; a review by what it pools (unknown when not said)."""
    design = StudyDesign(study.design)
    if design in REVIEW_DESIGNS:
        return REVIEW_STARTING_LEVEL[_pooled(study)]
    return STARTING_LEVEL[design]


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

    # Rules 2 and 3: the best peer-reviewed human design sets the start, and the studies that set
    # it are the group every step down judges. With no peer-reviewed study: very low, all of them.
    peer_reviewed = [s for s in human if s.peer_reviewed]
    start, group = _starting_group(peer_reviewed) if peer_reviewed else (EvidenceLevel.VERY_LOW, human)

    # Rule 4: one level down for each weakness of that group.
    risks = [RiskOfBias(s.risk_of_bias) for s in group]
    weaknesses = {
        Concern.SMALL_SAMPLES: max(_counted_sample(s) for s in group) < thresholds.small_study_participants,
        Concern.NO_LONG_TERM_FOLLOW_UP: max(float(s.follow_up_months or 0) for s in group)
        < thresholds.long_term_months,
        Concern.INDUSTRY_SPONSORED: not any(_independent(s) for s in group),
        Concern.HIGH_RISK_OF_BIAS: all(r == RiskOfBias.HIGH for r in risks),
    }
    level = step_down(start, sum(weaknesses.values()))

    # Rule 5: concerns that name a gap without changing the level.
    gaps = {
        Concern.NOT_RANDOMISED: not any(_randomised(s) for s in human),
        Concern.NOT_CONTROLLED: not any(_controlled(s) for s in human),
        Concern.RISK_OF_BIAS_NOT_ASSESSED: all(r == RiskOfBias.NOT_ASSESSED for r in risks),
        Concern.NOT_PEER_REVIEWED: not peer_reviewed,
    }
    concerns = [c for c in Concern if weaknesses.get(c) or gaps.get(c)] + safety
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
        starting_level=start,
        judged_designs=sorted({StudyDesign(s.design) for s in group}, key=list(StudyDesign).index),
    )


def _starting_group(peer_reviewed: Sequence[StudyFacts]) -> tuple[EvidenceLevel, list[StudyFacts]]:
    start = max((starting_level(s) for s in peer_reviewed), key=lambda lv: lv.rank)
    return start, [s for s in peer_reviewed if starting_level(s) == start]


def _pooled(study: StudyFacts) -> PooledDesigns:
    return PooledDesigns(study.pooled_designs or PooledDesigns.UNKNOWN)


def _counted_sample(study: StudyFacts) -> int:
    """A study's size for the small-samples step: a review's pooled total counts only when it
    pools randomised trials alone (patients in uncontrolled series are not one trial's arms);
    an unknown size counts as none, so as small."""
    if StudyDesign(study.design) in REVIEW_DESIGNS and _pooled(study) != PooledDesigns.RCT_ONLY:
        return 0
    return study.participants or 0


def _independent(study: StudyFacts) -> bool:
    return Sponsorship(study.sponsorship) == Sponsorship.INDEPENDENT


def _randomised(study: StudyFacts) -> bool:
    design = StudyDesign(study.design)
    return study.randomised or design == StudyDesign.RCT or _pools_rcts_only(study)


def _controlled(study: StudyFacts) -> bool:
    return study.controlled or StudyDesign(study.design) in CONTROLLED_DESIGNS or _pools_rcts_only(study)


def _pools_rcts_only(study: StudyFacts) -> bool:
    return StudyDesign(study.design) in REVIEW_DESIGNS and _pooled(study) == PooledDesigns.RCT_ONLY
