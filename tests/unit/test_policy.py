"""The approval gate (api.treatments.policy): every unmet criterion, with its code and message, and
when an admin may override it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from api.treatments.policy import (
    OVERRIDE_MIN_LENGTH,
    GatePolicy,
    UnmetCriterion,
    approval_blockers,
    decision_blockers,
    override_refusal,
)
from api.treatments.vocabulary import EvidenceLevel, RegulatoryStatusCode, Status

INSUFFICIENT = EvidenceLevel.INSUFFICIENT
VERY_LOW = EvidenceLevel.VERY_LOW
LOW = EvidenceLevel.LOW
MODERATE = EvidenceLevel.MODERATE
HIGH = EvidenceLevel.HIGH

EVIDENCE = "evidence_below_minimum"
NO_APPROVAL = "no_regulatory_approval"
WARNING = "regulatory_warning"

DEFAULT = GatePolicy()


@dataclass(frozen=True)
class Reg:
    regulator: str
    status: str


FDA_APPROVED = Reg("FDA", "approved")

# (id, level, regulatory entries, policy, expected blocker codes in order)
GATE_CASES = [
    # All criteria met.
    ("all-met-at-minimum-level", MODERATE, [FDA_APPROVED], DEFAULT, []),
    ("all-met-above-minimum-level", HIGH, [Reg("EMA", "approved")], DEFAULT, []),
    ("cleared-counts-as-approval", MODERATE, [Reg("FDA", "cleared")], DEFAULT, []),
    ("ce-marked-counts-as-approval", MODERATE, [Reg("HPRA", "ce_marked")], DEFAULT, []),
    ("mhra-is-recognised", MODERATE, [Reg("MHRA", "approved")], DEFAULT, []),
    (
        "one-approval-among-refusals-is-enough",
        MODERATE,
        [Reg("EMA", "not_approved"), FDA_APPROVED, Reg("HPRA", "no_application")],
        DEFAULT,
        [],
    ),
    # Evidence below the minimum, alone.
    ("low-evidence-alone", LOW, [FDA_APPROVED], DEFAULT, [EVIDENCE]),
    ("very-low-evidence-alone", VERY_LOW, [FDA_APPROVED], DEFAULT, [EVIDENCE]),
    ("insufficient-evidence-alone", INSUFFICIENT, [FDA_APPROVED], DEFAULT, [EVIDENCE]),
    # No approval by a recognised regulator, alone.
    ("no-regulatory-entries", MODERATE, [], DEFAULT, [NO_APPROVAL]),
    ("not-approved", MODERATE, [Reg("FDA", "not_approved")], DEFAULT, [NO_APPROVAL]),
    ("no-application", MODERATE, [Reg("FDA", "no_application")], DEFAULT, [NO_APPROVAL]),
    ("under-review", MODERATE, [Reg("EMA", "under_review")], DEFAULT, [NO_APPROVAL]),
    ("approval-by-unrecognised-regulator", MODERATE, [Reg("TGA", "approved")], DEFAULT, [NO_APPROVAL]),
    ("clearance-by-unrecognised-regulator", MODERATE, [Reg("ANVISA", "cleared")], DEFAULT, [NO_APPROVAL]),
    (
        "ce-mark-by-unrecognised-regulator",
        MODERATE,
        [Reg("Notified body", "ce_marked")],
        DEFAULT,
        [NO_APPROVAL],
    ),
    ("regulator-names-are-exact", MODERATE, [Reg("fda", "approved")], DEFAULT, [NO_APPROVAL]),
    # A warning, alone.
    ("warning-alone", MODERATE, [FDA_APPROVED, Reg("MHRA", "warning_issued")], DEFAULT, [WARNING]),
    (
        "warning-by-the-approving-regulator",
        HIGH,
        [FDA_APPROVED, Reg("FDA", "warning_issued")],
        DEFAULT,
        [WARNING],
    ),
    # Two and three criteria unmet, always in the same order.
    ("evidence-and-approval", LOW, [], DEFAULT, [EVIDENCE, NO_APPROVAL]),
    (
        "evidence-and-warning",
        VERY_LOW,
        [FDA_APPROVED, Reg("EMA", "warning_issued")],
        DEFAULT,
        [EVIDENCE, WARNING],
    ),
    ("approval-and-warning", HIGH, [Reg("FDA", "warning_issued")], DEFAULT, [NO_APPROVAL, WARNING]),
    (
        "all-three-unmet-in-order",
        LOW,
        [Reg("FDA", "warning_issued"), Reg("TGA", "approved")],
        DEFAULT,
        [EVIDENCE, NO_APPROVAL, WARNING],
    ),
    # The minimum level is configurable.
    ("minimum-high-blocks-moderate", MODERATE, [FDA_APPROVED], GatePolicy(minimum_level=HIGH), [EVIDENCE]),
    ("minimum-high-accepts-high", HIGH, [FDA_APPROVED], GatePolicy(minimum_level=HIGH), []),
    ("minimum-low-accepts-low", LOW, [FDA_APPROVED], GatePolicy(minimum_level=LOW), []),
    ("minimum-low-blocks-very-low", VERY_LOW, [FDA_APPROVED], GatePolicy(minimum_level=LOW), [EVIDENCE]),
    # The recognised regulators are configurable.
    (
        "configured-regulator-is-recognised",
        MODERATE,
        [Reg("TGA", "approved")],
        GatePolicy(recognised_regulators=frozenset({"TGA"})),
        [],
    ),
    (
        "regulator-left-out-of-configuration-is-not-recognised",
        MODERATE,
        [FDA_APPROVED],
        GatePolicy(recognised_regulators=frozenset({"TGA"})),
        [NO_APPROVAL],
    ),
]


@pytest.mark.parametrize(
    ("level", "regulatory", "policy", "codes"),
    [pytest.param(*case[1:], id=case[0]) for case in GATE_CASES],
)
def test_blocker_codes(level, regulatory, policy, codes):
    blockers = approval_blockers(level, regulatory, policy)
    assert [b.code for b in blockers] == codes
    assert all(isinstance(b, UnmetCriterion) for b in blockers)


def test_the_table_covers_every_regulatory_status():
    statuses = {entry.status for case in GATE_CASES for entry in case[2]}
    assert statuses == {s.value for s in RegulatoryStatusCode}


def test_accepts_a_one_shot_iterable():
    # The entries are read for approval and again for warnings: a generator must not be exhausted.
    # The warning comes first so that the search for an approval walks past it.
    entries = iter([Reg("EMA", "warning_issued"), FDA_APPROVED])
    assert [b.code for b in approval_blockers(HIGH, entries, DEFAULT)] == [WARNING]


@pytest.mark.parametrize(
    ("level", "regulatory", "policy"),
    [pytest.param(*case[1:4], id=case[0]) for case in GATE_CASES if case[4]],
)
def test_every_message_is_a_human_sentence(level, regulatory, policy):
    for blocker in approval_blockers(level, regulatory, policy):
        message = blocker.message
        assert message.endswith("."), message
        assert message[0].isupper(), message
        assert " " in message, message
        assert blocker.code not in message, message


@pytest.mark.parametrize(
    ("level", "policy", "mentioned"),
    [
        pytest.param(LOW, DEFAULT, ("low", "moderate"), id="low-below-moderate"),
        pytest.param(INSUFFICIENT, DEFAULT, ("insufficient", "moderate"), id="insufficient-below-moderate"),
        pytest.param(
            MODERATE, GatePolicy(minimum_level=HIGH), ("moderate", "high"), id="moderate-below-high"
        ),
    ],
)
def test_evidence_message_names_the_level_and_the_minimum(level, policy, mentioned):
    (blocker,) = approval_blockers(level, [FDA_APPROVED], policy)
    assert blocker.code == EVIDENCE
    for word in mentioned:
        assert word in blocker.message


@pytest.mark.parametrize(
    ("regulatory", "named", "not_named"),
    [
        pytest.param([FDA_APPROVED, Reg("MHRA", "warning_issued")], ["MHRA"], ["FDA"], id="one-regulator"),
        pytest.param(
            [FDA_APPROVED, Reg("MHRA", "warning_issued"), Reg("EMA", "warning_issued")],
            ["EMA", "MHRA"],
            ["FDA"],
            id="two-regulators",
        ),
    ],
)
def test_warning_message_names_the_warning_regulators(regulatory, named, not_named):
    (blocker,) = approval_blockers(HIGH, regulatory, DEFAULT)
    assert blocker.code == WARNING
    for name in named:
        assert name in blocker.message
    for name in not_named:
        assert name not in blocker.message


@pytest.mark.parametrize("status", [s for s in Status if s != Status.APPROVED])
def test_only_an_approval_has_to_pass_the_gate(status):
    assert decision_blockers(status, INSUFFICIENT, [], DEFAULT) == []
    assert [b.code for b in decision_blockers(Status.APPROVED, INSUFFICIENT, [], DEFAULT)] == [
        EVIDENCE,
        NO_APPROVAL,
    ]


REFUSED = [UnmetCriterion(EVIDENCE, "The evidence level is low; approval needs at least moderate.")]


@pytest.mark.parametrize(
    ("status", "role", "unmet", "refusal"),
    [
        pytest.param(Status.APPROVED, "admin", REFUSED, None, id="admin-overrides-a-refused-approval"),
        pytest.param(Status.APPROVED, "reviewer", REFUSED, "not_admin", id="only-an-admin-overrides"),
        pytest.param(Status.APPROVED, "editor", REFUSED, "not_admin", id="an-editor-may-not-either"),
        pytest.param(Status.NOT_APPROVED, "reviewer", [], "not_admin", id="the-role-is-judged-first"),
        pytest.param(Status.NOT_APPROVED, "admin", [], "not_an_approval", id="only-an-approval"),
        pytest.param(Status.APPROVED, "admin", [], "nothing_refused", id="only-one-the-gate-refuses"),
    ],
)
def test_override_refusal(status, role, unmet, refusal):
    assert override_refusal(status, role, unmet) == refusal


def test_the_decision_docs_state_the_policy_minimum_justification():
    from api.treatments.routes import TreatmentDecisions

    assert f"at least {OVERRIDE_MIN_LENGTH} characters" in (TreatmentDecisions.post.__doc__ or "")
