"""Evidence derivation (api.treatments.evidence): the evidence rules, pinned case by case."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from decimal import Decimal

import pytest

from api.treatments.evidence import (
    EvidenceSummary,
    EvidenceThresholds,
    derive_evidence,
    starting_level,
    step_down,
)
from api.treatments.vocabulary import REVIEW_DESIGNS, Concern, EvidenceLevel, PooledDesigns, StudyDesign

INSUFFICIENT = EvidenceLevel.INSUFFICIENT
VERY_LOW = EvidenceLevel.VERY_LOW
LOW = EvidenceLevel.LOW
MODERATE = EvidenceLevel.MODERATE
HIGH = EvidenceLevel.HIGH

NO_HUMAN = Concern.NO_HUMAN_STUDIES
SMALL = Concern.SMALL_SAMPLES
NOT_RANDOMISED = Concern.NOT_RANDOMISED
NOT_CONTROLLED = Concern.NOT_CONTROLLED
NO_LONG_TERM = Concern.NO_LONG_TERM_FOLLOW_UP
INDUSTRY = Concern.INDUSTRY_SPONSORED
NOT_PEER_REVIEWED = Concern.NOT_PEER_REVIEWED
ADVERSE = Concern.ADVERSE_EVENTS_REPORTED
HIGH_ROB = Concern.HIGH_RISK_OF_BIAS
ROB_NOT_ASSESSED = Concern.RISK_OF_BIAS_NOT_ASSESSED

DEFAULT = EvidenceThresholds()


@dataclass(frozen=True)
class Study:
    """A study stand-in. The defaults describe a study with no weakness at all (a review among
    them pools RCTs only: pass `pooled_designs` to say otherwise)."""

    design: str = "rct"
    participants: int | None = 500
    randomised: bool = False
    controlled: bool = False
    follow_up_months: Decimal | float | int | None = 24
    sponsorship: str = "independent"
    peer_reviewed: bool = True
    risk_of_bias: str = "low"
    pooled_designs: str | None = None

    def __post_init__(self) -> None:
        if self.design in REVIEW_DESIGNS and self.pooled_designs is None:
            object.__setattr__(self, "pooled_designs", "rct_only")


def review(pooled_designs: str | None, design: str = "systematic_review", **overrides: object) -> Study:
    """A review pooling `pooled_designs` (None: a row that never said, as from a rollout)."""
    study = replace(Study(design), **overrides)
    object.__setattr__(study, "pooled_designs", pooled_designs)
    return study


# A peer-reviewed study that trips all three step-down weaknesses at once.
def weak(design: str = "rct", **overrides: object) -> Study:
    return replace(Study(design, participants=10, follow_up_months=3, sponsorship="industry"), **overrides)


# (id, studies, adverse_events_reported, thresholds, expected level, expected concerns in order)
LEVEL_CASES = [
    # Rule 1: no human study at all.
    ("no-studies", [], False, DEFAULT, INSUFFICIENT, [NO_HUMAN]),
    ("no-studies-with-adverse-events", [], True, DEFAULT, INSUFFICIENT, [NO_HUMAN, ADVERSE]),
    ("only-in-vitro", [Study("in_vitro")], False, DEFAULT, INSUFFICIENT, [NO_HUMAN]),
    ("only-in-vitro-twice", [Study("in_vitro"), Study("in_vitro")], False, DEFAULT, INSUFFICIENT, [NO_HUMAN]),
    (
        "only-animal-and-expert-opinion",
        [Study("animal", participants=10_000, follow_up_months=120), Study("expert_opinion")],
        True,
        DEFAULT,
        INSUFFICIENT,
        [NO_HUMAN, ADVERSE],
    ),
    # Rule 3: the best peer-reviewed human design sets the start; no weakness means no step down.
    ("strong-rct-is-high", [Study("rct")], False, DEFAULT, HIGH, []),
    ("strong-systematic-review-is-high", [Study("systematic_review")], False, DEFAULT, HIGH, []),
    ("strong-meta-analysis-is-high", [Study("meta_analysis")], False, DEFAULT, HIGH, []),
    ("strong-cohort-is-low", [Study("cohort")], False, DEFAULT, LOW, [NOT_RANDOMISED]),
    (
        "strong-case-series-is-very-low",
        [Study("case_series")],
        False,
        DEFAULT,
        VERY_LOW,
        [NOT_RANDOMISED, NOT_CONTROLLED],
    ),
    (
        "best-design-wins",
        [Study("case_report"), Study("cohort"), Study("meta_analysis")],
        False,
        DEFAULT,
        HIGH,
        [],
    ),
    (
        "non-human-studies-alongside-rct-do-not-matter",
        [Study("animal"), Study("rct")],
        False,
        DEFAULT,
        HIGH,
        [],
    ),
    # Rule 3: a non-peer-reviewed study never lifts the starting level.
    (
        "non-peer-reviewed-rct-alone-starts-very-low",
        [Study("rct", peer_reviewed=False)],
        False,
        DEFAULT,
        VERY_LOW,
        [NOT_PEER_REVIEWED],
    ),
    (
        "non-peer-reviewed-rct-does-not-lift-peer-reviewed-case-series",
        [Study("case_series"), Study("rct", peer_reviewed=False)],
        False,
        DEFAULT,
        VERY_LOW,
        [],
    ),
    (
        "non-peer-reviewed-rct-does-not-lift-peer-reviewed-cohort",
        [Study("cohort"), Study("rct", peer_reviewed=False)],
        False,
        DEFAULT,
        LOW,
        [],
    ),
    # Rule 4: small samples (largest in the basis < 100), edges at 99 / 100, None counts as 0.
    ("99-participants-is-small", [Study(participants=99)], False, DEFAULT, MODERATE, [SMALL]),
    ("exactly-100-participants-is-not-small", [Study(participants=100)], False, DEFAULT, HIGH, []),
    ("unknown-participants-count-as-zero", [Study(participants=None)], False, DEFAULT, MODERATE, [SMALL]),
    ("zero-participants-is-small", [Study(participants=0)], False, DEFAULT, MODERATE, [SMALL]),
    (
        "largest-sample-decides-not-each-study",
        [Study(participants=50), Study(participants=150)],
        False,
        DEFAULT,
        HIGH,
        [],
    ),
    # Rule 4: no long-term follow-up (longest in the basis < 12 months), edges at 11.9 / 12, None is 0.
    (
        "11.9-months-is-not-long-term",
        [Study(follow_up_months=11.9)],
        False,
        DEFAULT,
        MODERATE,
        [NO_LONG_TERM],
    ),
    ("exactly-12-months-is-long-term", [Study(follow_up_months=12)], False, DEFAULT, HIGH, []),
    (
        "decimal-11.9-months-is-not-long-term",
        [Study(follow_up_months=Decimal("11.9"))],
        False,
        DEFAULT,
        MODERATE,
        [NO_LONG_TERM],
    ),
    ("decimal-12.0-months-is-long-term", [Study(follow_up_months=Decimal("12.0"))], False, DEFAULT, HIGH, []),
    (
        "unknown-follow-up-counts-as-zero",
        [Study(follow_up_months=None)],
        False,
        DEFAULT,
        MODERATE,
        [NO_LONG_TERM],
    ),
    (
        "longest-follow-up-decides-not-each-study",
        [Study(follow_up_months=1), Study(follow_up_months=36)],
        False,
        DEFAULT,
        HIGH,
        [],
    ),
    # Rule 4: no independent study in the basis.
    ("industry-sponsored", [Study(sponsorship="industry")], False, DEFAULT, MODERATE, [INDUSTRY]),
    (
        "mixed-sponsorship-is-not-independent",
        [Study(sponsorship="mixed")],
        False,
        DEFAULT,
        MODERATE,
        [INDUSTRY],
    ),
    (
        "unknown-sponsorship-is-not-independent",
        [Study(sponsorship="unknown")],
        False,
        DEFAULT,
        MODERATE,
        [INDUSTRY],
    ),
    (
        "one-independent-study-is-enough",
        [Study(sponsorship="industry"), Study(sponsorship="independent")],
        False,
        DEFAULT,
        HIGH,
        [],
    ),
    # Rule 4: one step per weakness, and the floor at very low.
    (
        "two-weaknesses-step-high-down-to-low",
        [Study(participants=20, sponsorship="industry")],
        False,
        DEFAULT,
        LOW,
        [SMALL, INDUSTRY],
    ),
    (
        "three-weaknesses-step-high-down-to-very-low",
        [weak("rct")],
        False,
        DEFAULT,
        VERY_LOW,
        [SMALL, NO_LONG_TERM, INDUSTRY],
    ),
    (
        "one-weakness-steps-cohort-down-to-very-low",
        [Study("cohort", follow_up_months=6)],
        False,
        DEFAULT,
        VERY_LOW,
        [NOT_RANDOMISED, NO_LONG_TERM],
    ),
    (
        "floor-cohort-with-three-weaknesses-stays-very-low",
        [weak("cohort")],
        False,
        DEFAULT,
        VERY_LOW,
        [SMALL, NOT_RANDOMISED, NO_LONG_TERM, INDUSTRY],
    ),
    (
        "floor-case-report-with-three-weaknesses-stays-very-low",
        [weak("case_report")],
        False,
        DEFAULT,
        VERY_LOW,
        [SMALL, NOT_RANDOMISED, NOT_CONTROLLED, NO_LONG_TERM, INDUSTRY],
    ),
    # Rule 2: the basis is the peer-reviewed human studies...
    (
        "basis-ignores-large-non-peer-reviewed-study",
        [Study(participants=50), Study(participants=1_000, peer_reviewed=False)],
        False,
        DEFAULT,
        MODERATE,
        [SMALL],
    ),
    (
        "basis-ignores-long-non-peer-reviewed-study",
        [Study(follow_up_months=6), Study(follow_up_months=60, peer_reviewed=False)],
        False,
        DEFAULT,
        MODERATE,
        [NO_LONG_TERM],
    ),
    (
        "basis-ignores-independent-non-peer-reviewed-study",
        [Study(sponsorship="industry"), Study(sponsorship="independent", peer_reviewed=False)],
        False,
        DEFAULT,
        MODERATE,
        [INDUSTRY],
    ),
    (
        "basis-ignores-large-animal-study",
        [Study(participants=50), Study("animal", participants=5_000, peer_reviewed=True)],
        False,
        DEFAULT,
        MODERATE,
        [SMALL],
    ),
    # ...or every human study when none is peer-reviewed.
    (
        "basis-falls-back-to-all-human-studies-strong",
        [Study("rct", peer_reviewed=False), Study("rct", participants=5, peer_reviewed=False)],
        False,
        DEFAULT,
        VERY_LOW,
        [NOT_PEER_REVIEWED],
    ),
    (
        "basis-falls-back-to-all-human-studies-weak",
        [weak("rct", peer_reviewed=False)],
        False,
        DEFAULT,
        VERY_LOW,
        [SMALL, NO_LONG_TERM, INDUSTRY, NOT_PEER_REVIEWED],
    ),
    # Rule 5: design concerns, which never step down.
    ("randomised-flag-clears-not-randomised", [Study("cohort", randomised=True)], False, DEFAULT, LOW, []),
    (
        "controlled-flag-clears-not-controlled",
        [Study("case_series", controlled=True)],
        False,
        DEFAULT,
        VERY_LOW,
        [NOT_RANDOMISED],
    ),
    (
        "non-peer-reviewed-rct-still-counts-as-randomised",
        [Study("cohort"), Study("rct", peer_reviewed=False)],
        False,
        DEFAULT,
        LOW,
        [],
    ),
    (
        "randomised-animal-study-does-not-count-as-randomised",
        [Study("cohort"), Study("animal", randomised=True, controlled=True)],
        False,
        DEFAULT,
        LOW,
        [NOT_RANDOMISED],
    ),
    (
        "controlled-in-vitro-study-does-not-count-as-controlled",
        [Study("case_series"), Study("in_vitro", randomised=True, controlled=True)],
        False,
        DEFAULT,
        VERY_LOW,
        [NOT_RANDOMISED, NOT_CONTROLLED],
    ),
    (
        "design-concerns-do-not-step-down-a-cohort",
        [Study("controlled_non_randomised")],
        False,
        DEFAULT,
        LOW,
        [NOT_RANDOMISED],
    ),
    ("adverse-events-do-not-step-down", [Study("rct")], True, DEFAULT, HIGH, [ADVERSE]),
    # Rule 6: every concern at once, in the order of the Concern enum.
    (
        "every-human-concern-in-enum-order",
        [weak("case_report", peer_reviewed=False), weak("pilot_uncontrolled", peer_reviewed=False)],
        True,
        DEFAULT,
        VERY_LOW,
        [SMALL, NOT_RANDOMISED, NOT_CONTROLLED, NO_LONG_TERM, INDUSTRY, NOT_PEER_REVIEWED, ADVERSE],
    ),
    # Configurable thresholds change the answer.
    ("60-participants-small-by-default", [Study(participants=60)], False, DEFAULT, MODERATE, [SMALL]),
    (
        "60-participants-not-small-with-threshold-50",
        [Study(participants=60)],
        False,
        EvidenceThresholds(small_study_participants=50),
        HIGH,
        [],
    ),
    (
        "exactly-50-participants-not-small-with-threshold-50",
        [Study(participants=50)],
        False,
        EvidenceThresholds(small_study_participants=50),
        HIGH,
        [],
    ),
    (
        "200-participants-small-with-threshold-500",
        [Study(participants=200)],
        False,
        EvidenceThresholds(small_study_participants=500),
        MODERATE,
        [SMALL],
    ),
    ("8-months-short-by-default", [Study(follow_up_months=8)], False, DEFAULT, MODERATE, [NO_LONG_TERM]),
    (
        "8-months-long-term-with-threshold-6",
        [Study(follow_up_months=8)],
        False,
        EvidenceThresholds(long_term_months=6),
        HIGH,
        [],
    ),
    (
        "12-months-short-with-threshold-24",
        [Study(follow_up_months=12)],
        False,
        EvidenceThresholds(long_term_months=24),
        MODERATE,
        [NO_LONG_TERM],
    ),
    # Rule 3, reviews: a review starts where the studies it pools do.
    (
        "review-of-uncontrolled-studies-is-very-low-whatever-its-size",
        [review("uncontrolled_only", participants=2_000, follow_up_months=24, sponsorship="independent")],
        False,
        DEFAULT,
        VERY_LOW,
        [SMALL, NOT_RANDOMISED, NOT_CONTROLLED],
    ),
    (
        "the-same-review-pooling-rcts-only-is-high",
        [review("rct_only", participants=2_000, follow_up_months=24, sponsorship="independent")],
        False,
        DEFAULT,
        HIGH,
        [],
    ),
    (
        "meta-analysis-of-uncontrolled-studies-is-very-low",
        [review("uncontrolled_only", "meta_analysis", participants=13_078)],
        False,
        DEFAULT,
        VERY_LOW,
        [SMALL, NOT_RANDOMISED, NOT_CONTROLLED],
    ),
    # ...a review that includes non-randomised studies, or does not say, starts low, and its pooled
    # total is not one trial's sample: small samples applies.
    (
        "review-including-non-randomised-studies-starts-low-and-is-small",
        [review("includes_non_randomised", participants=1_845)],
        False,
        DEFAULT,
        VERY_LOW,
        [SMALL, NOT_RANDOMISED, NOT_CONTROLLED],
    ),
    (
        "review-of-unknown-designs-starts-low-and-is-small",
        [review("unknown", participants=3_172)],
        False,
        DEFAULT,
        VERY_LOW,
        [SMALL, NOT_RANDOMISED, NOT_CONTROLLED],
    ),
    (
        "review-that-never-said-reads-as-unknown",
        [review(None, participants=3_172)],
        False,
        DEFAULT,
        VERY_LOW,
        [SMALL, NOT_RANDOMISED, NOT_CONTROLLED],
    ),
    (
        "unknown-review-beside-a-large-cohort-is-low",
        [review("unknown", participants=3_172), Study("cohort", participants=2_114)],
        False,
        DEFAULT,
        LOW,
        [NOT_RANDOMISED],
    ),
    (
        "randomised-flags-on-a-review-of-unknown-designs-clear-the-design-concerns",
        [review("unknown", randomised=True, controlled=True)],
        False,
        DEFAULT,
        VERY_LOW,
        [SMALL],
    ),
    # ...a review pooling RCTs only: its pooled total counts, at the same edges as a trial.
    (
        "rct-only-review-of-99-is-small",
        [review("rct_only", participants=99)],
        False,
        DEFAULT,
        MODERATE,
        [SMALL],
    ),
    ("rct-only-review-of-100-is-not-small", [review("rct_only", participants=100)], False, DEFAULT, HIGH, []),
    (
        "rct-only-review-of-unknown-size-is-small",
        [review("rct_only", participants=None)],
        False,
        DEFAULT,
        MODERATE,
        [SMALL],
    ),
    (
        "pooled-designs-on-a-non-review-are-ignored",
        [replace(Study("case_series"), pooled_designs="rct_only")],
        False,
        DEFAULT,
        VERY_LOW,
        [NOT_RANDOMISED, NOT_CONTROLLED],
    ),
    # Rule 4: every step judges only the studies that set the starting level.
    (
        "20-person-rct-beside-500-person-case-series-is-small",
        [Study("rct", participants=20), Study("case_series", participants=500)],
        False,
        DEFAULT,
        MODERATE,
        [SMALL],
    ),
    (
        "short-rcts-beside-a-long-cohort-have-no-long-term-follow-up",
        [Study("rct", follow_up_months=10), Study("cohort", follow_up_months=36)],
        False,
        DEFAULT,
        MODERATE,
        [NO_LONG_TERM],
    ),
    (
        "industry-rct-beside-an-independent-case-series-is-industry-sponsored",
        [Study("rct", sponsorship="industry"), Study("case_series", sponsorship="independent")],
        False,
        DEFAULT,
        MODERATE,
        [INDUSTRY],
    ),
    (
        "independent-uncontrolled-review-does-not-cancel-the-sponsorship-step",
        [Study("cohort", sponsorship="unknown"), review("uncontrolled_only", sponsorship="independent")],
        False,
        DEFAULT,
        VERY_LOW,
        [NOT_RANDOMISED, INDUSTRY],
    ),
    (
        "rct-and-rct-only-review-both-set-the-start-and-are-judged-together",
        [Study("rct", participants=20, follow_up_months=6), review("rct_only")],
        False,
        DEFAULT,
        HIGH,
        [],
    ),
    (
        "studies-of-a-lower-start-are-not-judged",
        [
            Study("cohort", participants=10, follow_up_months=1, sponsorship="industry", risk_of_bias="high"),
            Study("rct"),
        ],
        False,
        DEFAULT,
        HIGH,
        [],
    ),  # fmt: skip
    # Rule 4: risk of bias, judged on the group: one step down only when every study in it is high.
    (
        "rct-at-high-risk-of-bias-steps-down-once",
        [Study(risk_of_bias="high")],
        False,
        DEFAULT,
        MODERATE,
        [HIGH_ROB],
    ),  # fmt: skip
    (
        "every-study-at-high-risk-steps-down-once",
        [Study(risk_of_bias="high"), Study(risk_of_bias="high")],
        False,
        DEFAULT,
        MODERATE,
        [HIGH_ROB],
    ),
    (
        "one-study-not-at-high-risk-is-enough",
        [Study(risk_of_bias="high"), Study(risk_of_bias="some_concerns")],
        False,
        DEFAULT,
        HIGH,
        [],
    ),
    (
        "high-beside-not-assessed-is-neither-a-step-nor-not-assessed",
        [Study(risk_of_bias="high"), Study(risk_of_bias="not_assessed")],
        False,
        DEFAULT,
        HIGH,
        [],
    ),
    ("some-concerns-does-not-step-down", [Study(risk_of_bias="some_concerns")], False, DEFAULT, HIGH, []),
    (
        "none-assessed-is-a-concern-without-a-step",
        [Study(risk_of_bias="not_assessed"), Study(risk_of_bias="not_assessed")],
        False,
        DEFAULT,
        HIGH,
        [ROB_NOT_ASSESSED],
    ),
    (
        "one-assessed-study-in-the-group-clears-not-assessed",
        [Study(risk_of_bias="not_assessed"), Study(risk_of_bias="low")],
        False,
        DEFAULT,
        HIGH,
        [],
    ),
    (
        "risk-outside-the-group-is-not-judged",
        [Study("rct", risk_of_bias="low"), Study("case_series", risk_of_bias="high")],
        False,
        DEFAULT,
        HIGH,
        [],
    ),
    (
        "not-assessed-outside-the-group-is-not-a-concern",
        [Study("rct", risk_of_bias="low"), Study("cohort", risk_of_bias="not_assessed")],
        False,
        DEFAULT,
        HIGH,
        [],
    ),
    (
        "high-risk-is-a-fourth-step",
        [weak("rct", risk_of_bias="high")],
        False,
        DEFAULT,
        VERY_LOW,
        [SMALL, NO_LONG_TERM, INDUSTRY, HIGH_ROB],
    ),
    (
        "high-risk-on-a-case-series-stays-at-the-floor",
        [Study("case_series", risk_of_bias="high")],
        False,
        DEFAULT,
        VERY_LOW,
        [NOT_RANDOMISED, NOT_CONTROLLED, HIGH_ROB],
    ),
    (
        "high-risk-review-of-rcts-steps-down",
        [review("rct_only", risk_of_bias="high")],
        False,
        DEFAULT,
        MODERATE,
        [HIGH_ROB],
    ),
    (
        "without-peer-review-every-human-study-is-judged-for-risk",
        [
            Study("rct", peer_reviewed=False, risk_of_bias="not_assessed"),
            Study("case_series", peer_reviewed=False, risk_of_bias="not_assessed"),
        ],
        False,
        DEFAULT,
        VERY_LOW,
        [ROB_NOT_ASSESSED, NOT_PEER_REVIEWED],
    ),  # fmt: skip
]


@pytest.mark.parametrize(
    ("studies", "adverse", "thresholds", "level", "concerns"),
    [pytest.param(*case[1:], id=case[0]) for case in LEVEL_CASES],
)
def test_level_and_concerns(studies, adverse, thresholds, level, concerns):
    summary = derive_evidence(studies, adverse, thresholds)
    assert summary.level == level
    assert summary.concerns == concerns


def test_the_table_covers_every_level_and_every_concern():
    assert {case[4] for case in LEVEL_CASES} == set(EvidenceLevel)
    assert {concern for case in LEVEL_CASES for concern in case[5]} == set(Concern)


# Rule 3, design by design: a strong peer-reviewed study of each human design.
STARTING_LEVEL_CASES = [
    ("systematic_review", HIGH, []),
    ("meta_analysis", HIGH, []),
    ("rct", HIGH, []),
    ("controlled_non_randomised", LOW, [NOT_RANDOMISED]),
    ("cohort", LOW, [NOT_RANDOMISED]),
    ("case_control", LOW, [NOT_RANDOMISED]),
    ("case_series", VERY_LOW, [NOT_RANDOMISED, NOT_CONTROLLED]),
    ("case_report", VERY_LOW, [NOT_RANDOMISED, NOT_CONTROLLED]),
    ("pilot_uncontrolled", VERY_LOW, [NOT_RANDOMISED, NOT_CONTROLLED]),
    ("in_vitro", INSUFFICIENT, [NO_HUMAN]),
    ("animal", INSUFFICIENT, [NO_HUMAN]),
    ("expert_opinion", INSUFFICIENT, [NO_HUMAN]),
]


@pytest.mark.parametrize(
    ("design", "level", "concerns"),
    [pytest.param(*case, id=case[0]) for case in STARTING_LEVEL_CASES],
)
def test_starting_level_by_design(design, level, concerns):
    summary = derive_evidence([Study(design)], False, DEFAULT)
    assert summary.level == level
    assert summary.concerns == concerns


def test_starting_level_table_covers_every_design():
    assert {case[0] for case in STARTING_LEVEL_CASES} == {d.value for d in StudyDesign}


# Rule 3, reviews: each review design by what it pools (None: a row that never said).
REVIEW_START_CASES = [
    (design, pooled, level)
    for design in ("systematic_review", "meta_analysis")
    for pooled, level in (
        ("rct_only", HIGH),
        ("includes_non_randomised", LOW),
        ("uncontrolled_only", VERY_LOW),
        ("unknown", LOW),
        (None, LOW),
    )
]


@pytest.mark.parametrize(
    ("design", "pooled", "level"),
    [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in REVIEW_START_CASES],
)
def test_a_review_starts_where_the_studies_it_pools_do(design, pooled, level):
    assert starting_level(review(pooled, design)) == level
    assert derive_evidence([review(pooled, design)], False, DEFAULT).starting_level == level


def test_review_start_table_covers_every_pooled_design():
    assert {case[1] for case in REVIEW_START_CASES} - {None} == {p.value for p in PooledDesigns}


# The summary names where the rating started and which designs every step judged.
@pytest.mark.parametrize(
    ("studies", "start", "judged"),
    [
        pytest.param([], INSUFFICIENT, [], id="no-studies"),
        pytest.param([Study("animal")], INSUFFICIENT, [], id="no-human-studies"),
        pytest.param(
            [Study("rct", participants=20), Study("case_series")], HIGH, ["rct"], id="rct-over-series"
        ),
        pytest.param(
            [Study("rct"), review("rct_only", "meta_analysis"), review("unknown")],
            HIGH,
            ["meta_analysis", "rct"],
            id="rct-and-rct-only-review-in-enum-order",
        ),
        pytest.param(
            [
                review("includes_non_randomised"),
                Study("cohort"),
                Study("case_control"),
                Study("pilot_uncontrolled"),
            ],
            LOW,
            ["systematic_review", "cohort", "case_control"],
            id="every-design-starting-low",
        ),
        pytest.param(
            [review("uncontrolled_only"), Study("case_series"), Study("rct", peer_reviewed=False)],
            VERY_LOW,
            ["systematic_review", "case_series"],
            id="non-peer-reviewed-rct-is-not-judged",
        ),
        pytest.param(
            [Study("rct", peer_reviewed=False), Study("cohort", peer_reviewed=False)],
            VERY_LOW,
            ["rct", "cohort"],
            id="nothing-peer-reviewed-judges-every-human-study",
        ),
    ],
)
def test_starting_level_and_judged_designs(studies, start, judged):
    summary = derive_evidence(studies, False, DEFAULT)
    assert (summary.starting_level, [d.value for d in summary.judged_designs]) == (start, judged)


@pytest.mark.parametrize(
    ("level", "steps", "expected"),
    [
        pytest.param(HIGH, 0, HIGH, id="high-0"),
        pytest.param(HIGH, 1, MODERATE, id="high-1"),
        pytest.param(HIGH, 2, LOW, id="high-2"),
        pytest.param(HIGH, 3, VERY_LOW, id="high-3"),
        pytest.param(HIGH, 4, VERY_LOW, id="high-4-floor"),
        pytest.param(MODERATE, 1, LOW, id="moderate-1"),
        pytest.param(LOW, 1, VERY_LOW, id="low-1"),
        pytest.param(LOW, 3, VERY_LOW, id="low-3-floor"),
        pytest.param(VERY_LOW, 0, VERY_LOW, id="very-low-0"),
        pytest.param(VERY_LOW, 1, VERY_LOW, id="very-low-1-floor"),
        pytest.param(VERY_LOW, 10, VERY_LOW, id="very-low-10-floor"),
    ],
)
def test_step_down(level, steps, expected):
    assert step_down(level, steps) == expected


COUNT_FIELDS = (
    "studies",
    "human_studies",
    "rcts",
    "largest_sample",
    "longest_follow_up_months",
    "independent_peer_reviewed",
)


@pytest.mark.parametrize(
    ("studies", "expected"),
    [
        pytest.param([], (0, 0, 0, None, None, 0), id="no-studies"),
        pytest.param(
            [Study("in_vitro", participants=40, follow_up_months=2), Study("animal", participants=30)],
            (2, 0, 0, None, None, 0),
            id="only-non-human-counts-no-samples",
        ),
        pytest.param(
            [Study("rct")],
            (1, 1, 1, 500, 24.0, 1),
            id="one-strong-rct",
        ),
        pytest.param(
            [
                Study("rct", participants=200, follow_up_months=6),
                Study("rct", participants=300, follow_up_months=None, peer_reviewed=False),
                Study("cohort", participants=None, follow_up_months=36, sponsorship="industry"),
                Study("animal", participants=10_000, follow_up_months=120),
                Study("expert_opinion", participants=20_000, follow_up_months=240),
            ],
            (5, 3, 2, 300, 36.0, 1),
            id="mixed-counts-over-human-studies-including-non-peer-reviewed",
        ),
        pytest.param(
            [Study("systematic_review"), Study("meta_analysis"), Study("case_series", randomised=True)],
            (3, 3, 0, 500, 24.0, 3),
            id="only-design-rct-counts-as-rct",
        ),
        pytest.param(
            [Study("rct", participants=None, follow_up_months=None)],
            (1, 1, 1, None, None, 1),
            id="unknown-sample-and-follow-up-are-none",
        ),
        pytest.param(
            [Study("rct", participants=0, follow_up_months=0)],
            (1, 1, 1, 0, 0.0, 1),
            id="zero-is-known-not-none",
        ),
        pytest.param(
            [Study("cohort", follow_up_months=Decimal("18.5")), Study("cohort", follow_up_months=None)],
            (2, 2, 0, 500, 18.5, 2),
            id="decimal-follow-up",
        ),
        pytest.param(
            [
                Study("rct", sponsorship="independent"),
                Study("rct", sponsorship="independent", peer_reviewed=False),
                Study("rct", sponsorship="mixed"),
                Study("animal", sponsorship="independent"),
            ],
            (4, 3, 3, 500, 24.0, 1),
            id="independent-peer-reviewed-needs-both-and-human",
        ),
    ],
)
def test_counts(studies, expected):
    summary = derive_evidence(studies, False, DEFAULT)
    assert tuple(getattr(summary, name) for name in COUNT_FIELDS) == expected


def test_longest_follow_up_is_a_float():
    summary = derive_evidence([Study(follow_up_months=Decimal("18.5"))], False, DEFAULT)
    assert type(summary.longest_follow_up_months) is float


def test_accepts_a_one_shot_iterable():
    summary = derive_evidence(iter([Study(participants=50), Study(participants=150)]), False, DEFAULT)
    assert (summary.level, summary.studies, summary.largest_sample) == (HIGH, 2, 150)


@pytest.mark.parametrize(
    ("studies", "adverse", "expected"),
    [
        pytest.param(
            [],
            True,
            {
                "level": "insufficient",
                "studies": 0,
                "human_studies": 0,
                "rcts": 0,
                "largest_sample": None,
                "longest_follow_up_months": None,
                "independent_peer_reviewed": 0,
                "concerns": ["no_human_studies", "adverse_events_reported"],
                "starting_level": "insufficient",
                "judged_designs": [],
            },
            id="insufficient",
        ),
        pytest.param(
            [Study("rct", participants=80, follow_up_months=Decimal("9.5")), Study("animal")],
            False,
            {
                "level": "low",
                "studies": 2,
                "human_studies": 1,
                "rcts": 1,
                "largest_sample": 80,
                "longest_follow_up_months": 9.5,
                "independent_peer_reviewed": 1,
                "concerns": ["small_samples", "no_long_term_follow_up"],
                "starting_level": "high",
                "judged_designs": ["rct"],
            },
            id="low-with-concerns",
        ),
        pytest.param(
            [Study("meta_analysis")],
            False,
            {
                "level": "high",
                "studies": 1,
                "human_studies": 1,
                "rcts": 0,
                "largest_sample": 500,
                "longest_follow_up_months": 24.0,
                "independent_peer_reviewed": 1,
                "concerns": [],
                "starting_level": "high",
                "judged_designs": ["meta_analysis"],
            },
            id="high-no-concerns",
        ),
    ],
)
def test_as_dict(studies, adverse, expected):
    data = derive_evidence(studies, adverse, DEFAULT).as_dict()
    assert data == expected
    # Plain JSON types only: enum members are rendered as their string values.
    assert type(data["level"]) is str
    assert all(type(c) is str for c in data["concerns"])
    assert json.loads(json.dumps(data)) == expected


def test_summary_defaults_are_empty():
    summary = EvidenceSummary(level=INSUFFICIENT)
    assert summary.as_dict() == {
        "level": "insufficient",
        "studies": 0,
        "human_studies": 0,
        "rcts": 0,
        "largest_sample": None,
        "longest_follow_up_months": None,
        "independent_peer_reviewed": 0,
        "concerns": [],
        "starting_level": "insufficient",
        "judged_designs": [],
    }
