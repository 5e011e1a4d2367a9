"""The public pages' plain language, alone: positions from the booking rule, evidence in words"""

import datetime as dt

import pytest

from api.booking.rules import SUSPENDED
from api.treatments.evidence import EvidenceThresholds
from api.treatments.vocabulary import Concern, EvidenceLevel, StudyDesign
from api.website import wording


@pytest.mark.parametrize(
    ("status", "suspended", "group", "label"),
    [
        ("approved", False, "offered", "Offered"),
        ("approved", True, "under_review", "Temporarily not offered"),
        ("under_review", False, "under_review", "Under review"),
        ("not_approved", False, "not_offered", "Not offered"),
        ("withdrawn", False, "not_offered", "No longer offered"),
        ("withdrawn", True, "not_offered", "No longer offered"),
    ],
)
def test_the_position_follows_the_booking_rule(status, suspended, group, label):
    position = wording.position(status, suspended)
    assert (position.group, position.label) == (group, label)


@pytest.mark.parametrize("status", [None, "something_new"])
def test_an_unknown_status_is_never_said_to_be_offered(status):
    position = wording.position(status)
    assert position.group != "offered"
    assert "offer" not in position.headline.lower()


def test_only_an_approved_unsuspended_treatment_reads_as_offered():
    offered = [key for key, p in wording.POSITIONS.items() if p.group == "offered"]
    assert offered == ["approved"]
    assert wording.POSITIONS[SUSPENDED].headline.startswith("Temporarily not offered")


def test_the_widgets_fallback_never_says_offered_or_bookable():
    for text in (wording.WIDGET_FALLBACK, wording.WIDGET_FALLBACK_LINK, wording.WIDGET_LOADING):
        assert "offer" not in text.lower() and "book" not in text.lower()


def test_the_widget_carries_every_position_the_pages_use():
    assert set(wording.widget_positions()) == set(wording.POSITIONS)


@pytest.mark.parametrize("level", list(EvidenceLevel))
def test_every_evidence_level_has_a_name_and_a_meaning(level):
    name, meaning = wording.level_words(level.value)
    assert name and meaning.endswith(".")


@pytest.mark.parametrize("concern", list(Concern))
def test_every_concern_is_said_in_a_sentence(concern):
    assert wording.concern_words(concern.value, EvidenceThresholds()).endswith(".")


def test_concerns_name_the_configured_thresholds():
    thresholds = EvidenceThresholds(small_study_participants=50, long_term_months=24)
    assert "fewer than 50 participants" in wording.concern_words("small_samples", thresholds)
    assert "24 months" in wording.concern_words("no_long_term_follow_up", thresholds)


@pytest.mark.parametrize("design", list(StudyDesign))
def test_every_design_has_words(design):
    assert wording.design_words(design.value) and wording.design_words(design.value, 2)


def test_the_studies_are_described_from_the_summarys_counts():
    evidence = {"studies": 3, "human_studies": 2, "rcts": 1, "largest_sample": 28,
                "longest_follow_up_months": 3.0, "independent_peer_reviewed": 0,
                "judged_designs": ["rct"]}  # fmt: skip
    assert wording.studies_words(evidence) == [
        "The clinic counts 3 studies, 2 studies in people, of which 1 randomised controlled trial.",
        "The largest study in people had 28 participants.",
        "The longest follow-up was 3 months.",
        "None was both independently funded and peer-reviewed.",
        "The rating rests on the randomised controlled trials.",
    ]


def test_no_studies_is_said_plainly():
    evidence = {"studies": 0, "human_studies": 0, "rcts": 0, "judged_designs": []}
    assert wording.studies_words(evidence) == ["The clinic has no studies of this treatment on record."]


def test_one_participant_and_one_month_are_singular():
    assert wording.plural(1, "participant") == "1 participant"
    assert wording.months(1) == "1 month"
    assert wording.months(1.5) == "1.5 months"


def test_regulators_and_their_decisions_in_words():
    assert wording.regulator_words("HPRA").startswith("Health Products Regulatory Authority")
    assert wording.regulator_words("XYZ") == "XYZ"
    assert wording.regulatory_status_words("ce_marked") == "CE marked"
    assert wording.regulatory_status_words("something_else") == "Something else"


def test_dates_are_written_out():
    assert wording.date_words(dt.date(2026, 12, 1)) == "1 December 2026"
    assert wording.date_words(None) == ""
