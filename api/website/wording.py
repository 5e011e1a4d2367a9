"""The public pages' plain language: positions, evidence and regulatory facts in words. Pure.

Nothing here decides anything: a treatment's position comes from the booking rule
(`api.booking.rules.bookability`, so a suspended approval reads as temporarily not offered exactly
when booking checks refuse it), and the evidence words describe the derived summary
(`api.treatments.evidence`) without judging it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from api.booking.rules import SUSPENDED, bookability
from api.treatments.evidence import EvidenceThresholds
from api.treatments.vocabulary import Concern, EvidenceLevel, StudyDesign


@dataclass(frozen=True)
class Position:
    """How the public pages and the widget name a treatment's position."""

    key: str  # the booking answer's reason: a status, or `suspended_pending_review`
    group: str  # the index's group: offered, under_review, not_offered
    label: str  # short, for a badge
    headline: str  # one sentence, for the treatment's page and the widget


GROUPS = {
    "offered": "We offer",
    "under_review": "Under review",
    "not_offered": "We do not offer",
}
POSITIONS = {
    "approved": Position("approved", "offered", "Offered", "We offer this treatment."),
    SUSPENDED: Position(
        SUSPENDED,
        "under_review",
        "Temporarily not offered",
        "Temporarily not offered: bookings are paused while we review a new safety warning.",
    ),
    "under_review": Position(
        "under_review",
        "under_review",
        "Under review",
        "Under review: we do not offer it while we evaluate it.",
    ),
    "not_approved": Position("not_approved", "not_offered", "Not offered", "We do not offer this treatment."),
    "withdrawn": Position(
        "withdrawn", "not_offered", "No longer offered", "We have stopped offering this treatment."
    ),
}
# Any status the pages do not know: said neutrally, never as offered.
UNKNOWN_POSITION = Position(
    "unknown", "under_review", "Position unavailable", "See below for the clinic's position."
)
# The widget's words when it cannot reach the API in time: neutral, never "offered" or "bookable".
WIDGET_FALLBACK = "We could not load the clinic's current position on this treatment just now."
WIDGET_FALLBACK_LINK = "Read about it on our website"
WIDGET_LINK = "Why? Read the full position"
WIDGET_LOADING = "Loading the clinic's position…"


def position(status: str | None, suspended: bool = False) -> Position:
    """The position the public sees, from the one booking rule."""
    return POSITIONS.get(bookability(status, suspended).reason, UNKNOWN_POSITION)


def widget_positions() -> dict[str, dict[str, str]]:
    """The positions as the widget script carries them (label and headline by key)."""
    return {key: {"label": p.label, "headline": p.headline} for key, p in POSITIONS.items()}


LEVELS = {
    EvidenceLevel.HIGH: (
        "High",
        "We are confident in the evidence: more research is unlikely to change what we know.",
    ),
    EvidenceLevel.MODERATE: (
        "Moderate",
        "The evidence is fairly good, but more research could change what we know.",
    ),
    EvidenceLevel.LOW: ("Low", "The evidence is limited: more research is likely to change what we know."),
    EvidenceLevel.VERY_LOW: (
        "Very low",
        "The evidence is very uncertain: we cannot say with confidence what the treatment does.",
    ),
    EvidenceLevel.INSUFFICIENT: ("Insufficient", "There are no studies in people to judge it by."),
}

DESIGNS = {
    StudyDesign.SYSTEMATIC_REVIEW: ("systematic review", "systematic reviews"),
    StudyDesign.META_ANALYSIS: ("meta-analysis", "meta-analyses"),
    StudyDesign.RCT: ("randomised controlled trial", "randomised controlled trials"),
    StudyDesign.CONTROLLED_NON_RANDOMISED: (
        "controlled study, not randomised",
        "controlled studies, not randomised",
    ),
    StudyDesign.COHORT: ("cohort study", "cohort studies"),
    StudyDesign.CASE_CONTROL: ("case-control study", "case-control studies"),
    StudyDesign.CASE_SERIES: ("case series", "case series"),
    StudyDesign.CASE_REPORT: ("case report", "case reports"),
    StudyDesign.PILOT_UNCONTROLLED: ("uncontrolled pilot study", "uncontrolled pilot studies"),
    StudyDesign.IN_VITRO: ("laboratory study", "laboratory studies"),
    StudyDesign.ANIMAL: ("animal study", "animal studies"),
    StudyDesign.EXPERT_OPINION: ("expert opinion", "expert opinions"),
}

REGULATORY_STATUSES = {
    "approved": "Approved",
    "cleared": "Cleared",
    "ce_marked": "CE marked",
    "not_approved": "Not approved",
    "no_application": "No application made",
    "under_review": "Under review",
    "warning_issued": "Warning issued",
}
REGULATORS = {
    "FDA": "US Food and Drug Administration (FDA)",
    "EMA": "European Medicines Agency (EMA)",
    "EU_MDR": "EU Medical Device Regulation (notified body)",
    "HPRA": "Health Products Regulatory Authority, Ireland (HPRA)",
    "MHRA": "Medicines and Healthcare products Regulatory Agency, UK (MHRA)",
    "TGA": "Therapeutic Goods Administration, Australia (TGA)",
    "HC": "Health Canada",
}


def level_words(level: str) -> tuple[str, str]:
    """The evidence level's name and what it means for a reader."""
    return LEVELS[EvidenceLevel(level)]


def design_words(design: str | None, count: int = 1) -> str:
    if design is None:
        return "study of unrecorded design"
    singular, plural = DESIGNS[StudyDesign(design)]
    return singular if count == 1 else plural


def concern_words(concern: str, thresholds: EvidenceThresholds) -> str:
    """What the evidence lacks, one sentence per concern of the summary."""
    return {
        Concern.NO_HUMAN_STUDIES: "There are no studies in people.",
        Concern.SMALL_SAMPLES: f"The studies the rating rests on are small (fewer than "
        f"{thresholds.small_study_participants} participants each).",
        Concern.NOT_RANDOMISED: "No randomised trial: no study compared the treatment fairly "
        "with an alternative.",
        Concern.NOT_CONTROLLED: "No study compared treated people with an untreated or "
        "differently treated group.",
        Concern.NO_LONG_TERM_FOLLOW_UP: "No study followed people up for "
        f"{thresholds.long_term_months} months or more, so long-term effects are unknown.",
        Concern.INDUSTRY_SPONSORED: "No independently funded study: they were paid for by the industry, "
        "or their funding is unclear.",
        Concern.HIGH_RISK_OF_BIAS: "Every study the rating rests on was judged at high risk of bias.",
        Concern.RISK_OF_BIAS_NOT_ASSESSED: "The studies' risk of bias has not been judged yet.",
        Concern.NOT_PEER_REVIEWED: "None of the studies in people was published in a peer-reviewed journal.",
        Concern.ADVERSE_EVENTS_REPORTED: "Harmful side effects have been reported (see below).",
    }[Concern(concern)]


def plural(count: int, singular: str, many: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


def months(value: float | int) -> str:
    number = f"{value:g}"
    return f"{number} month" if number == "1" else f"{number} months"


def studies_words(evidence: Mapping[str, Any]) -> list[str]:
    """What the studies were, from the derived summary's counts, in sentences."""
    if not evidence["studies"]:
        return ["The clinic has no studies of this treatment on record."]
    rcts = f", of which {plural(evidence['rcts'], 'randomised controlled trial')}"
    sentences = [
        f"The clinic counts {plural(evidence['studies'], 'study', 'studies')}, "
        f"{plural(evidence['human_studies'], 'study', 'studies')} in people"
        + (rcts if evidence["human_studies"] else "")
        + "."
    ]
    if evidence.get("largest_sample"):
        largest = plural(evidence["largest_sample"], "participant")
        sentences.append(f"The largest study in people had {largest}.")
    if evidence.get("longest_follow_up_months"):
        sentences.append(f"The longest follow-up was {months(evidence['longest_follow_up_months'])}.")
    independent = evidence.get("independent_peer_reviewed", 0)
    kind = "independently funded, peer-reviewed"
    sentences.append(
        f"{plural(independent, kind + ' study', kind + ' studies')}."
        if independent
        else "None was both independently funded and peer-reviewed."
    )
    judged = [d for d in evidence.get("judged_designs") or [] if d]
    if judged:
        sentences.append("The rating rests on the " + _and(design_words(d, 2) for d in judged) + ".")
    return sentences


def _and(words: Iterable[str]) -> str:
    items = list(words)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def regulator_words(regulator: str) -> str:
    return REGULATORS.get(regulator, regulator)


def regulatory_status_words(status: str) -> str:
    return REGULATORY_STATUSES.get(status, status.replace("_", " ").capitalize())


def date_words(value: dt.date | dt.datetime | None) -> str:
    """`1 December 2026` (no leading zero, no locale)."""
    if value is None:
        return ""
    return f"{value.day} {value.strftime('%B')} {value.year}"
