"""The seed catalogue: valid, gate-consistent, idempotent, and honest about its sources"""

import pytest
import yaml

from api.db import get_session
from api.rules import current_rules
from api.seed import SEED_DIR, SeedError, load_catalogue, read_catalogue
from api.treatments.policy import approval_blockers
from api.treatments.service import evidence_for, find_treatment
from tests.conftest import execute


def counts(app):
    return {table: execute(app, f"SELECT count(*) FROM {table}")[0][0]
            for table in ("treatments", "studies", "regulatory_statuses", "decisions", "change_events",
                          "audit_records")}  # fmt: skip


def test_the_catalogue_says_it_is_illustrative():
    index = yaml.safe_load((SEED_DIR / "catalogue.yaml").read_text())
    assert "illustrative" in index["notice"].lower()
    assert "review" in index["notice"].lower()


def test_the_catalogue_covers_exosomes_and_at_least_fourteen_more():
    items = read_catalogue()
    statuses = [item["decision"]["status"].value for item in items]
    assert items[0]["data"]["slug"] == "exosomes" or any(i["data"]["slug"] == "exosomes" for i in items)
    assert len(items) >= 15
    assert statuses.count("approved") >= 6
    assert "under_review" in statuses and "not_approved" in statuses


def test_every_regulatory_fact_carries_a_source_and_a_reference():
    for item in read_catalogue():
        for entry in item["regulatory"]:
            assert entry["source_url"].startswith("https://") or entry["source_url"].startswith("http://")
            assert entry["reference"], (item["data"]["slug"], entry)


def test_seeding_loads_everything_with_an_initial_decision_each(app, seeded):
    with app.app_context():
        session = get_session()
        for item in read_catalogue():
            treatment = find_treatment(session, item["data"]["slug"])
            assert treatment.decisions, treatment.slug
            assert treatment.status == item["decision"]["status"]


def test_every_approved_seed_passes_the_policy_gate(app, seeded):
    with app.app_context():
        session, rules = get_session(), current_rules()
        approved = [i for i in read_catalogue() if i["decision"]["status"].value == "approved"]
        for item in approved:
            treatment = find_treatment(session, item["data"]["slug"])
            level = evidence_for(treatment, rules).level
            assert approval_blockers(level, treatment.regulatory, rules.gate) == [], treatment.slug


def test_exosomes_are_not_approved_with_very_low_evidence_and_an_fda_warning(client, seeded):
    body = client.get("/v1/treatments/exosomes").get_json()
    assert body["status"] == "not_approved"
    assert body["evidence"]["level"] == "very_low"
    assert {"small_samples", "no_long_term_follow_up", "adverse_events_reported"} <= set(
        body["evidence"]["concerns"]
    )
    regulators = {(r["regulator"], r["status"]) for r in body["regulatory"]}
    assert ("FDA", "warning_issued") in regulators
    assert {"FDA", "EMA", "HPRA"} <= {r for r, _ in regulators}
    assert not any(s in {"approved", "cleared", "ce_marked"} for _, s in regulators)
    warning = next(r for r in body["regulatory"] if r["status"] == "warning_issued")
    assert warning["decided_on"] == "2019-12-06"
    assert warning["source_url"].startswith("https://www.fda.gov/")
    events = " ".join(e["event"] + " " + e["description"] for e in body["safety"]).lower()
    for reaction in ("inflammat", "granulom", "allerg"):
        assert reaction in events


def test_seeding_twice_changes_nothing_and_adds_no_events(app, seeded):
    before = counts(app)
    with app.app_context():
        result = load_catalogue(get_session(), current_rules())
    assert result["created"] == result["updated"] == 0
    assert counts(app) == before


def test_a_rerun_refreshes_content_but_never_a_status(app, seeded, tmp_path):
    # A copy of the catalogue with one summary edited and one status changed.
    (tmp_path / "treatments").mkdir()
    (tmp_path / "catalogue.yaml").write_text((SEED_DIR / "catalogue.yaml").read_text())
    for path in (SEED_DIR / "treatments").glob("*.yaml"):
        (tmp_path / "treatments" / path.name).write_text(path.read_text())
    edited = tmp_path / "treatments" / "exosomes.yaml"
    data = yaml.safe_load(edited.read_text())
    data["summary"] = "An edited summary."
    edited.write_text(yaml.safe_dump(data))
    with app.app_context():
        result = load_catalogue(get_session(), current_rules(), tmp_path)
        assert result["updated"] == 1
        treatment = find_treatment(get_session(), "exosomes")
        assert treatment.summary == "An edited summary."
        assert treatment.status == "not_approved"


def test_a_seed_that_would_fail_the_gate_is_refused(app, tmp_path):
    (tmp_path / "treatments").mkdir()
    (tmp_path / "catalogue.yaml").write_text("notice: test\ntreatments: [bad]\n")
    (tmp_path / "treatments" / "bad.yaml").write_text(yaml.safe_dump({
        "slug": "bad", "name": "Bad", "category": "regenerative", "summary": "s", "status": "approved",
        "decision": {"status": "approved", "reason": "No evidence at all."}, "studies": [], "regulatory": [],
    }))  # fmt: skip
    with app.app_context(), pytest.raises(SeedError, match=r"bad\.yaml: .*criteria for approval"):
        load_catalogue(get_session(), current_rules(), tmp_path)
    assert counts(app)["treatments"] == 0


def test_an_invalid_seed_file_names_the_file(tmp_path):
    (tmp_path / "treatments").mkdir()
    (tmp_path / "catalogue.yaml").write_text("notice: test\ntreatments: [broken]\n")
    (tmp_path / "treatments" / "broken.yaml").write_text("slug: Broken Slug\nname: x\n")
    with pytest.raises(SeedError, match="broken.yaml"):
        read_catalogue(tmp_path)


def test_seed_command_seeds_only_an_empty_database_with_if_empty(runner, app):
    first = runner.invoke(args=["seed", "--if-empty"])
    assert first.exit_code == 0, first.output
    assert "created" in first.output
    second = runner.invoke(args=["seed", "--if-empty"])
    assert "already present" in second.output
