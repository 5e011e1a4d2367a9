"""The controlled vocabularies of the domain, shared by models, rules and schemas"""

from enum import StrEnum


class Status(StrEnum):
    APPROVED = "approved"
    UNDER_REVIEW = "under_review"
    NOT_APPROVED = "not_approved"
    WITHDRAWN = "withdrawn"


class StudyDesign(StrEnum):
    SYSTEMATIC_REVIEW = "systematic_review"
    META_ANALYSIS = "meta_analysis"
    RCT = "rct"
    CONTROLLED_NON_RANDOMISED = "controlled_non_randomised"
    COHORT = "cohort"
    CASE_CONTROL = "case_control"
    CASE_SERIES = "case_series"
    CASE_REPORT = "case_report"
    PILOT_UNCONTROLLED = "pilot_uncontrolled"
    IN_VITRO = "in_vitro"
    ANIMAL = "animal"
    EXPERT_OPINION = "expert_opinion"


# The designs that pool other studies, and the study fields only they carry.
REVIEW_DESIGNS = frozenset({StudyDesign.SYSTEMATIC_REVIEW, StudyDesign.META_ANALYSIS})
POOLED_FIELDS = ("pooled_designs", "pooled_studies")


class PooledDesigns(StrEnum):
    """What a review pools, which sets where it starts (README, "Evidence rules")."""

    RCT_ONLY = "rct_only"
    INCLUDES_NON_RANDOMISED = "includes_non_randomised"
    UNCONTROLLED_ONLY = "uncontrolled_only"
    UNKNOWN = "unknown"


class RiskOfBias(StrEnum):
    """The overall judgement of RoB 2 (randomised trials) or ROBINS-I (other designs)."""

    LOW = "low"
    SOME_CONCERNS = "some_concerns"
    HIGH = "high"
    NOT_ASSESSED = "not_assessed"


class Sponsorship(StrEnum):
    INDEPENDENT = "independent"
    INDUSTRY = "industry"
    MIXED = "mixed"
    UNKNOWN = "unknown"


class RegulatoryStatusCode(StrEnum):
    APPROVED = "approved"
    CLEARED = "cleared"
    CE_MARKED = "ce_marked"
    NOT_APPROVED = "not_approved"
    NO_APPLICATION = "no_application"
    UNDER_REVIEW = "under_review"
    WARNING_ISSUED = "warning_issued"


class EvidenceLevel(StrEnum):
    """GRADE-style certainty, declared from lowest to highest."""

    INSUFFICIENT = "insufficient"
    VERY_LOW = "very_low"
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return list(EvidenceLevel).index(self)


class Concern(StrEnum):
    NO_HUMAN_STUDIES = "no_human_studies"
    SMALL_SAMPLES = "small_samples"
    NOT_RANDOMISED = "not_randomised"
    NOT_CONTROLLED = "not_controlled"
    NO_LONG_TERM_FOLLOW_UP = "no_long_term_follow_up"
    INDUSTRY_SPONSORED = "industry_sponsored"
    HIGH_RISK_OF_BIAS = "high_risk_of_bias"
    RISK_OF_BIAS_NOT_ASSESSED = "risk_of_bias_not_assessed"
    NOT_PEER_REVIEWED = "not_peer_reviewed"
    ADVERSE_EVENTS_REPORTED = "adverse_events_reported"


class Screening(StrEnum):
    """Where a study stands: only accepted studies count towards the evidence summary."""

    ACCEPTED = "accepted"
    SCREENING = "screening"
    EXCLUDED = "excluded"


class ExclusionReason(StrEnum):
    """Why a record was excluded at screening (PICO, design, species, a duplicate, or other with a
    note): the reasons a PRISMA 2020 flow diagram counts."""

    WRONG_POPULATION = "wrong_population"
    WRONG_INTERVENTION = "wrong_intervention"
    WRONG_COMPARATOR = "wrong_comparator"
    WRONG_OUTCOME = "wrong_outcome"
    WRONG_DESIGN = "wrong_design"
    NOT_HUMAN = "not_human"
    DUPLICATE = "duplicate"
    OTHER = "other"
