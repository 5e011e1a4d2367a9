"""The evidence level in plain words: the steps agree with the derived rating (pure, no app)"""

from types import SimpleNamespace

import pytest

from api.console.explain import evidence_notes, evidence_steps
from api.treatments.evidence import EvidenceThresholds, derive_evidence

THRESHOLDS = EvidenceThresholds()


def study(**fields):
    base = {
        "design": "rct",
        "participants": 250,
        "randomised": True,
        "controlled": True,
        "follow_up_months": 12,
        "sponsorship": "independent",
        "peer_reviewed": True,
        "risk_of_bias": "low",
        "pooled_designs": None,
    }
    return SimpleNamespace(**(base | fields))


@pytest.mark.parametrize(
    "studies",
    [
        [study()],
        [study(participants=20, follow_up_months=6, sponsorship="industry")],
        [study(design="case_series", participants=10, risk_of_bias="high", sponsorship="industry")],
        [study(design="meta_analysis", pooled_designs="uncontrolled_only", participants=2000)],
        [study(peer_reviewed=False)],
        [study(design="cohort"), study(design="case_series", participants=5000)],
    ],
)
def test_the_last_step_is_the_derived_level(studies):
    summary = derive_evidence(studies, False, THRESHOLDS)
    steps = evidence_steps(summary, THRESHOLDS)
    assert steps[0].level == summary.starting_level
    assert steps[-1].level == summary.level


def test_the_worked_example_reads_step_by_step():
    summary = derive_evidence(
        [
            study(participants=20, follow_up_months=6, sponsorship="industry", risk_of_bias="not_assessed"),
            study(design="case_series", participants=500, follow_up_months=24),
        ],
        False,
        THRESHOLDS,
    )
    titles = [s.title for s in evidence_steps(summary, THRESHOLDS)]
    assert titles == [
        "Start: high",
        "Step down: small samples",
        "Step down: no long-term follow-up",
        "Step down: no independent sponsorship",
    ]
    assert "randomised controlled trial" in evidence_steps(summary, THRESHOLDS)[0].detail
    assert any("risk-of-bias" in note for note in evidence_notes(summary))


def test_a_step_at_the_floor_says_so():
    summary = derive_evidence(
        [study(design="case_series", participants=10, sponsorship="industry")], False, THRESHOLDS
    )
    steps = evidence_steps(summary, THRESHOLDS)
    assert steps[0].title == "Start: very low"
    assert "already at the floor" in steps[1].detail


def test_no_human_studies_is_one_step():
    summary = derive_evidence([study(design="in_vitro")], False, THRESHOLDS)
    steps = evidence_steps(summary, THRESHOLDS)
    assert [s.title for s in steps] == ["No human studies"]
