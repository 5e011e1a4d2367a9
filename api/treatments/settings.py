"""The clinic's settings for its rules (evidence thresholds, the policy gate, review intervals,
suspension on a warning), built from configuration once at start-up. Pure: no Flask, no database;
`api.context.current_rules()` hands them to requests and commands."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from api.treatments.evidence import EvidenceThresholds
from api.treatments.policy import GatePolicy
from api.treatments.vocabulary import EvidenceLevel

# Bump when a public representation changes shape, so every ETag changes with it.
REPRESENTATION_REVISION = "2"  # 2: evidence summaries say where the rating started, and what it judged


@dataclass(frozen=True)
class RuleSettings:
    thresholds: EvidenceThresholds
    gate: GatePolicy
    fingerprint: str
    review_intervals: Mapping[str, int]
    suspend_on_warning: bool = True

    def review_interval_months(self, status: str) -> int:
        """Months until the next scheduled review after a decision to `status`."""
        return self.review_intervals.get(status, self.review_intervals["default"])

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RuleSettings:
        thresholds = EvidenceThresholds(
            small_study_participants=int(config["EVIDENCE_SMALL_STUDY_PARTICIPANTS"]),
            long_term_months=int(config["EVIDENCE_LONG_TERM_MONTHS"]),
        )
        gate = GatePolicy(
            minimum_level=EvidenceLevel(config["POLICY_MINIMUM_EVIDENCE_LEVEL"]),
            recognised_regulators=frozenset(config["POLICY_RECOGNISED_REGULATORS"]),
        )
        # Anything that changes a representation without changing a row goes in here.
        seed = repr((REPRESENTATION_REVISION, thresholds, sorted(gate.recognised_regulators),
                     gate.minimum_level.value))  # fmt: skip
        fingerprint = hashlib.sha256(seed.encode()).hexdigest()[:12]
        intervals = {"default": int(config["REVIEW_INTERVAL_MONTHS"])}
        intervals["under_review"] = int(config["REVIEW_INTERVAL_MONTHS_UNDER_REVIEW"])
        return cls(thresholds, gate, fingerprint, intervals, bool(config["POLICY_SUSPEND_ON_WARNING"]))
