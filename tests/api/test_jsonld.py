"""schema.org JSON-LD for the website, expanded with a JSON-LD processor and no network"""

import json
from pathlib import Path

import pytest
from pyld import jsonld

from tests.helpers import add_treatment, approval, study

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schemaorg"
CONTEXT = json.loads((FIXTURES / "context.jsonld").read_text())
VOCABULARY = json.loads((FIXTURES / "vocabulary.json").read_text())
SCHEMA = "https://schema.org/"
LD = {"Accept": "application/ld+json"}


def local_loader(url, options=None):
    if url.rstrip("/") in {"https://schema.org", "http://schema.org"}:
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
                "document": CONTEXT}  # fmt: skip
    raise AssertionError(f"JSON-LD processing tried to fetch {url}")


@pytest.fixture
def exosomes(app):
    add_treatment(
        app, "exosomes", "not_approved", name="Exosome therapy", category="regenerative",
        studies=[study(design="rct", participants=28, follow_up_months=3, doi="10.1111/jocd.0000")],
        regulatory=[approval(status="warning_issued", reference="FDA notification 2019-12-06"),
                    approval(regulator="HPRA", status="not_approved", reference="none")],
        safety=[{"event": "granuloma", "description": "Granulomas reported.", "source_url": None}],
    )  # fmt: skip


def expand(client, slug):
    response = client.get(f"/v1/treatments/{slug}", headers=LD)
    assert response.status_code == 200
    assert response.mimetype == "application/ld+json"
    document = response.get_json()
    return document, jsonld.expand(document, {"documentLoader": local_loader})


def walk(node, types, properties):
    if isinstance(node, list):
        for item in node:
            walk(item, types, properties)
    elif isinstance(node, dict):
        types.update(node.get("@type", []) if isinstance(node.get("@type"), list) else [])
        for key, value in node.items():
            if not key.startswith("@"):
                properties.add(key)
            walk(value, types, properties)


def test_every_type_and_property_is_schema_orgs(client, exosomes):
    _, expanded = expand(client, "exosomes")
    types, properties = set(), set()
    walk(expanded, types, properties)
    assert {t.removeprefix(SCHEMA) for t in types if t.startswith(SCHEMA)} == {
        t.removeprefix(SCHEMA) for t in types
    }, "a type outside schema.org"
    assert {t.removeprefix(SCHEMA) for t in types} <= set(VOCABULARY["classes"])
    assert all(p.startswith(SCHEMA) for p in properties), properties
    assert {p.removeprefix(SCHEMA) for p in properties} <= set(VOCABULARY["properties"])


def test_page_describes_the_treatment_and_the_clinics_decision(client, app, exosomes):
    document, expanded = expand(client, "exosomes")
    page = expanded[0]
    assert page["@type"] == [SCHEMA + "MedicalWebPage"]
    entity = page[SCHEMA + "mainEntity"][0]
    assert entity["@type"][0] in {SCHEMA + "MedicalTherapy", SCHEMA + "MedicalProcedure"}
    assert entity[SCHEMA + "name"][0]["@value"] == "Exosome therapy"
    locations = {s[SCHEMA + "applicableLocation"][0][SCHEMA + "name"][0]["@value"]
                 for s in entity[SCHEMA + "legalStatus"]}  # fmt: skip
    assert locations == {"United States", "Ireland"}
    assert entity[SCHEMA + "adverseOutcome"][0][SCHEMA + "name"][0]["@value"] == "granuloma"
    assert entity[SCHEMA + "study"][0][SCHEMA + "sameAs"][0]["@id"] == "https://doi.org/10.1111/jocd.0000"
    guideline = entity[SCHEMA + "guideline"][0]
    assert guideline[SCHEMA + "evidenceLevel"][0]["@id"] == SCHEMA + "EvidenceLevelC"
    assert "not offered" in guideline[SCHEMA + "name"][0]["@value"]
    clinic = app.config["CLINIC_NAME"]
    assert entity[SCHEMA + "recognizingAuthority"][0][SCHEMA + "name"][0]["@value"] == clinic
    assert page[SCHEMA + "lastReviewed"][0]["@value"] == document["lastReviewed"]


@pytest.mark.parametrize(
    ("studies", "level"),
    [
        ([study(sponsorship="independent")], "EvidenceLevelA"),
        ([study()], "EvidenceLevelB"),
        ([], "EvidenceLevelC"),
    ],
)
def test_evidence_level_maps_to_schema_org_levels(client, app, studies, level):
    add_treatment(app, "mapped", studies=studies, regulatory=[approval()])
    document, _ = expand(client, "mapped")
    assert document["mainEntity"]["guideline"]["evidenceLevel"] == SCHEMA + level
    assert level in VOCABULARY["evidence_levels"]


def test_json_and_json_ld_are_cached_apart_and_vary_on_accept(client, exosomes):
    as_ld = client.get("/v1/treatments/exosomes", headers=LD)
    as_json = client.get("/v1/treatments/exosomes")
    again_ld = client.get("/v1/treatments/exosomes", headers=LD)
    assert as_json.mimetype == "application/json"
    assert again_ld.mimetype == "application/ld+json"
    assert as_ld.headers["ETag"] != as_json.headers["ETag"]
    assert "Accept" in as_ld.headers["Vary"]
