"""The evidence level in plain words: where the rating started and each step down, and why.

Read off the derived summary (`api.treatments.evidence.derive_evidence`): the start, the rated
group's designs and the concerns it found. Nothing is judged here; the levels between steps come
from the rules' own `step_down`, so the words cannot disagree with the rating.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.treatments.evidence import EvidenceSummary, EvidenceThresholds, step_down
from api.treatments.vocabulary import Concern, EvidenceLevel

LEVEL_WORDS = {
    EvidenceLevel.HIGH: "high",
    EvidenceLevel.MODERATE: "moderate",
    EvidenceLevel.LOW: "low",
    EvidenceLevel.VERY_LOW: "very low",
    EvidenceLevel.INSUFFICIENT: "insufficient",
}
DESIGN_WORDS = {
    "systematic_review": "systematic review",
    "meta_analysis": "meta-analysis",
    "rct": "randomised controlled trial",
    "controlled_non_randomised": "controlled non-randomised study",
    "cohort": "cohort study",
    "case_control": "case-control study",
    "case_series": "case series",
    "case_report": "case report",
    "pilot_uncontrolled": "uncontrolled pilot",
    "in_vitro": "in-vitro study",
    "animal": "animal study",
    "expert_opinion": "expert opinion",
}
# The README's rule 4, in the order the rules take the steps.
STEP_CONCERNS = (
    Concern.SMALL_SAMPLES,
    Concern.NO_LONG_TERM_FOLLOW_UP,
    Concern.INDUSTRY_SPONSORED,
    Concern.HIGH_RISK_OF_BIAS,
)
NOTES = {
    Concern.NOT_RANDOMISED: "No human study is randomised.",
    Concern.NOT_CONTROLLED: "No human study has a control group.",
    Concern.RISK_OF_BIAS_NOT_ASSESSED: "No rated study has a risk-of-bias judgement yet (RoB 2 or ROBINS-I).",
    Concern.NOT_PEER_REVIEWED: "No human study is peer-reviewed, so the rating starts at very low.",
    Concern.ADVERSE_EVENTS_REPORTED: "Adverse events have been reported (see safety).",
}


@dataclass(frozen=True)
class Step:
    title: str
    detail: str
    level: EvidenceLevel  # the level after this step


def level_words(level: EvidenceLevel | str) -> str:
    return LEVEL_WORDS[EvidenceLevel(level)]


def design_words(design: str | None) -> str:
    return DESIGN_WORDS.get(design or "", "no design yet")


def evidence_steps(summary: EvidenceSummary, thresholds: EvidenceThresholds) -> list[Step]:
    """The rating as steps: the start, then one step down per weakness of the rated group."""
    if summary.level == EvidenceLevel.INSUFFICIENT:
        return [
            Step(
                "No human studies",
                "Only in-vitro, animal or expert-opinion evidence (or none) is "
                "recorded, so the level is insufficient.",
                EvidenceLevel.INSUFFICIENT,
            )
        ]
    designs = ", ".join(design_words(d) for d in summary.judged_designs) or "the human studies"
    start = summary.starting_level
    if Concern.NOT_PEER_REVIEWED in summary.concerns:
        reason = "No human study is peer-reviewed, so every human study is rated, starting at very low."
    else:
        reason = (
            f"The best peer-reviewed human evidence is: {designs}. That design starts at "
            f"{level_words(start)}; every step below judges only these studies (the rated group)."
        )
    steps = [Step(f"Start: {level_words(start)}", reason, start)]
    why = {
        Concern.SMALL_SAMPLES: (
            "Small samples",
            f"The largest study in the rated group has fewer than {thresholds.small_study_participants} "
            "participants (an unknown size counts as small; a review's pooled total counts only when it "
            "pools randomised trials alone).",
        ),
        Concern.NO_LONG_TERM_FOLLOW_UP: (
            "No long-term follow-up",
            f"No study in the rated group followed patients for {thresholds.long_term_months} months or "
            "more (an unknown follow-up counts as none).",
        ),
        Concern.INDUSTRY_SPONSORED: (
            "No independent sponsorship",
            "No study in the rated group is independently funded.",
        ),
        Concern.HIGH_RISK_OF_BIAS: (
            "High risk of bias",
            "Every study in the rated group is judged at high risk of bias.",
        ),
    }
    level, taken = start, 0
    for concern in STEP_CONCERNS:
        if concern in summary.concerns:
            taken += 1
            after = step_down(start, taken)
            title, detail = why[concern]
            floor = " (already at the floor: very low is the lowest level)" if after == level else ""
            steps.append(Step(f"Step down: {title.lower()}", detail + floor, after))
            level = after
    return steps


def evidence_notes(summary: EvidenceSummary) -> list[str]:
    """Concerns that name a gap without changing the level."""
    return [NOTES[c] for c in summary.concerns if c in NOTES and c is not Concern.NOT_PEER_REVIEWED]
