"""Loading the seed catalogue (`seed/*.yaml`): an idempotent upsert by slug.

Every file goes through the same schemas as the API, and every initial decision through the
policy gate, so the seed cannot hold what the API would refuse. A second run changes nothing.

The catalogue is illustrative, not the clinic's review. By default every new treatment is recorded
`under_review` (nothing bookable until the clinic decides); `demo=True` records the illustrative
positions in the files. Either way the decisions are the illustrative seed's (`SEED_ACTOR`), no
review is recorded (`last_reviewed_on` stays empty) and every review is due on the day of seeding.
A treatment already in the database keeps its decisions: a re-run refreshes content and facts only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.audit.service import SEED_ACTOR
from api.errors import DomainError
from api.treatments import service
from api.treatments.models import Treatment
from api.treatments.schemas import (
    DecisionCreateSchema,
    RegulatoryStatusCreateSchema,
    StudyCreateSchema,
    TreatmentCreateSchema,
)
from api.treatments.settings import RuleSettings

SEED_DIR = Path(__file__).resolve().parent.parent / "seed"


class SeedError(Exception):
    """A seed file that does not load; the message names the file and the fields."""


def read_catalogue(seed_dir: Path = SEED_DIR) -> list[dict[str, Any]]:
    """Every treatment file named by `catalogue.yaml`, validated, in catalogue order."""
    index = yaml.safe_load((seed_dir / "catalogue.yaml").read_text(encoding="utf-8"))
    return [_read_treatment(seed_dir / "treatments" / f"{slug}.yaml") for slug in index["treatments"]]


UNREVIEWED = {
    "status": "under_review",
    "reason": "Part of the illustrative seed catalogue: the clinic has not reviewed this treatment yet.",
    "reason_codes": ["awaiting_clinic_review"],
}


def load_catalogue(
    session: Session, rules: RuleSettings, seed_dir: Path = SEED_DIR, *, demo: bool = False
) -> dict[str, int]:
    """Create missing treatments and refresh changed ones; counts what happened."""
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for item in read_catalogue(seed_dir):
        existing = session.scalars(select(Treatment).where(Treatment.slug == item["data"]["slug"])).first()
        if existing is None:
            try:
                service.create_treatment(
                    session, item["data"], SEED_ACTOR, rules,
                    studies=item["studies"], regulatory=item["regulatory"],
                    decision=item["decision"] if demo else UNREVIEWED, reviewed=False,
                )  # fmt: skip
            except DomainError as error:
                session.rollback()
                unmet = "; ".join(u["message"] for u in error.extra.get("unmet", []))
                raise SeedError(f"{item['data']['slug']}.yaml: {error.detail} {unmet}".strip()) from error
            counts["created"] += 1
        elif service.refresh_treatment(
            session, existing, item["data"], item["studies"], item["regulatory"], SEED_ACTOR, rules
        ):
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    return counts


def _read_treatment(path: Path) -> dict[str, Any]:
    raw = _plain(yaml.safe_load(path.read_text(encoding="utf-8")))
    try:
        data = TreatmentCreateSchema().load({k: raw[k] for k in TreatmentCreateSchema().fields if k in raw})
        studies = StudyCreateSchema(many=True).load(raw.get("studies") or [])
        regulatory = RegulatoryStatusCreateSchema(many=True).load(raw.get("regulatory") or [])
        decision = DecisionCreateSchema().load(raw["decision"])
    except Exception as error:  # marshmallow.ValidationError or a missing key
        raise SeedError(f"{path.name}: {error}") from error
    if decision["status"] != raw.get("status"):
        raise SeedError(f"{path.name}: decision.status must equal status")
    return {"data": data, "studies": studies, "regulatory": regulatory, "decision": decision}


def _plain(value: Any) -> Any:
    """YAML gives dates as date objects; the schemas read ISO strings, as from JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
