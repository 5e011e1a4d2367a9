"""schema.org JSON-LD for a treatment page (pure: takes the detail view, returns a dict).

Evidence levels map to schema.org's MedicalEvidenceLevel: `high` → EvidenceLevelA (several
randomised trials or meta-analyses), `moderate` → EvidenceLevelB (a single trial or
non-randomised studies), `low`, `very_low` and `insufficient` → EvidenceLevelC (expert opinion,
case studies or standard of care only).
"""

from __future__ import annotations

from typing import Any

SCHEMA = "https://schema.org/"
EVIDENCE_LEVELS = {
    "high": "EvidenceLevelA",
    "moderate": "EvidenceLevelB",
    "low": "EvidenceLevelC",
    "very_low": "EvidenceLevelC",
    "insufficient": "EvidenceLevelC",
}
REGULATOR_LOCATIONS = {
    "FDA": "United States",
    "EMA": "European Union",
    "EU_MDR": "European Union",
    "HPRA": "Ireland",
    "MHRA": "United Kingdom",
    "TGA": "Australia",
    "HC": "Canada",
}
PROCEDURE_CATEGORIES = {"skin_procedure", "energy_based_device", "thread_lift"}
STATUS_WORDS = {
    "approved": "offered by the clinic",
    "under_review": "under review by the clinic, not offered",
    "not_approved": "not offered by the clinic",
    "withdrawn": "withdrawn by the clinic",
}


def treatment_jsonld(view: dict[str, Any], clinic_name: str, page_url: str) -> dict[str, Any]:
    """A MedicalWebPage whose main entity is the treatment, with the clinic's decision."""
    clinic = {"@type": "MedicalClinic", "name": clinic_name}
    decision = view.get("latest_decision")
    entity: dict[str, Any] = {
        "@type": "MedicalProcedure" if view["category"] in PROCEDURE_CATEGORIES else "MedicalTherapy",
        "name": view["name"],
        "alternateName": list(view["aliases"]),
        "description": view["summary"],
        "legalStatus": [_legal_status(entry) for entry in view["regulatory"]],
        "adverseOutcome": [
            {"@type": "MedicalEntity", "name": e["event"], "description": e.get("description", "")}
            for e in view["safety"]
        ],
        "study": [_study(study) for study in view.get("studies", [])],
        "guideline": {
            "@type": "MedicalGuideline",
            "name": f"{clinic_name}: {STATUS_WORDS[str(view['status'])]}",
            "description": view["status_reason"],
            "evidenceLevel": SCHEMA + EVIDENCE_LEVELS[view["evidence"]["level"]],
            "evidenceOrigin": "Evidence summary derived from the clinic's study records "
            f"(level: {view['evidence']['level']}).",
            "guidelineDate": _date(_get(decision, "decided_at")) if decision else None,
        },
        "recognizingAuthority": clinic,
    }
    page: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "MedicalWebPage",
        "url": page_url,
        "name": view["name"],
        "about": {"@type": "Thing", "name": view["name"]},
        "mainEntity": entity,
        # Only a review a person recorded: an unreviewed (seeded) treatment claims neither.
        "lastReviewed": _date(view.get("last_reviewed_on")),
        "reviewedBy": clinic if view.get("last_reviewed_on") else None,
        "publisher": clinic,
    }
    return _without_empty(page)


def _legal_status(entry: Any) -> dict[str, Any]:
    regulator, status = _get(entry, "regulator"), str(_get(entry, "status"))
    reference = _get(entry, "reference")
    return {
        "@type": "DrugLegalStatus",
        "name": f"{regulator}: {status.replace('_', ' ')}" + (f" ({reference})" if reference else ""),
        "applicableLocation": {
            "@type": "AdministrativeArea",
            "name": REGULATOR_LOCATIONS.get(regulator, regulator),
        },
        "url": _get(entry, "source_url"),
    }


def _study(study: Any) -> dict[str, Any]:
    doi = _get(study, "doi")
    return {
        "@type": "MedicalStudy",
        "name": _get(study, "title"),
        "description": _get(study, "outcome_summary"),
        "sameAs": f"https://doi.org/{doi}" if doi else _get(study, "url"),
    }


def _get(obj: Any, name: str) -> Any:
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name)
    return getattr(value, "value", value)


def _date(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat()[:10] if hasattr(value, "isoformat") else str(value)[:10]


def _without_empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_empty(v) for k, v in value.items() if v not in (None, "", [])}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value
