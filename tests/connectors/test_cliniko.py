"""Cliniko, hide mode: appointment types switched off online booking, restored, drift corrected"""

from __future__ import annotations

import base64

import pytest

from api.connectors.base import ConnectorError, HttpSettings
from api.connectors.cliniko import Cliniko, shard
from api.connectors.registry import open_system
from tests.connectors.conftest import approved
from tests.fakes.cliniko import FakeCliniko, fake_cliniko
from tests.helpers import add_treatment, decide

USER_AGENT = "Clinic treatment policy (it@clinic.example)"


@pytest.fixture
def cliniko(fast) -> FakeCliniko:
    with fake_cliniko() as fake:
        yield fake


def connect_cliniko(client, admin, fake: FakeCliniko) -> dict:
    body = {"system": "cliniko", "name": "Cliniko", "base_url": fake.url,
            "credentials": {"api_key": fake.api_key, "user_agent": USER_AGENT}}  # fmt: skip
    created = client.post("/v1/connectors", json=body, headers=admin)
    assert created.status_code == 201, created.get_json()
    return created.get_json()


def test_the_host_is_the_keys_shard():
    assert shard("MS0xLTEyMzQ1Njc4OTA-uk1") == "uk1"
    assert Cliniko.default_base_url({"api_key": "abc-au2", "user_agent": USER_AGENT}) == (
        "https://api.au2.cliniko.com/v1"
    )
    with pytest.raises(ValueError):
        shard("no-shard-SUFFIX!")


def test_a_key_must_name_its_shard_and_the_host_follows_it(client, admin):
    body = {
        "system": "cliniko",
        "name": "Cliniko",
        "credentials": {"api_key": "nokey", "user_agent": USER_AGENT},
    }
    refused = client.post("/v1/connectors", json=body, headers=admin)
    assert refused.status_code == 422 and refused.get_json()["errors"][0]["field"] == "credentials.api_key"
    body["credentials"]["api_key"] = "MS0xLTE-uk1"
    created = client.post("/v1/connectors", json=body, headers=admin).get_json()
    assert created["base_url"] == "https://api.uk1.cliniko.com/v1"


def test_hide_restore_and_drift(app, client, admin, reviewer, cliniko, passes):
    approved(app, "botox", external_ids={"cliniko": "1001"})
    add_treatment(app, "exosomes", "not_approved", external_ids={"cliniko": "1009"})
    cliniko.add_type("1001", "Anti-wrinkle injections")
    cliniko.add_type("1009", "Exosome facial")
    cliniko.add_type("1010", "Consultation")  # not ours: never touched
    connector = connect_cliniko(client, admin, cliniko)

    report = passes.run(connector["id"], None)
    assert report.error is None and [(s.move, s.slug) for s in report.done] == [("hide", "exosomes")]
    assert not cliniko.online("1009") and cliniko.online("1001") and cliniko.online("1010")

    decide(client, reviewer, "botox", "withdrawn")
    passes.run(connector["id"], ["botox"])
    assert not cliniko.online("1001")
    decide(client, reviewer, "botox", "approved")
    passes.run(connector["id"], ["botox"])
    assert cliniko.online("1001")

    cliniko.staff_set("1009", True)  # no webhooks in Cliniko: the timed full pass finds it
    report = passes.run(connector["id"], None)
    assert [s.move for s in report.done] == ["correct_drift"] and not cliniko.online("1009")
    assert cliniko.types["1001"]["name"] == "Anti-wrinkle injections"  # only the one field was sent
    for _path, headers in cliniko.patches():
        assert headers["User-Agent"] == USER_AGENT
        user, password = base64.b64decode(headers["Authorization"].removeprefix("Basic ")).decode().split(":")
        assert (user, password) == (cliniko.api_key, "")


def test_a_type_staff_took_offline_is_not_switched_on(app, client, admin, reviewer, cliniko, passes):
    approved(app, "botox", external_ids={"cliniko": "1001"})
    cliniko.add_type("1001", "Anti-wrinkle injections", online=False)
    connector = connect_cliniko(client, admin, cliniko)
    decide(client, reviewer, "botox", "withdrawn")
    decide(client, reviewer, "botox", "approved")
    assert passes.run(connector["id"], None).done == [] and not cliniko.online("1001")
    assert cliniko.patches() == []


def test_every_page_of_appointment_types_is_read():
    with fake_cliniko() as fake:
        for n in range(1, 151):
            fake.add_type(str(2000 + n), f"Type {n}")
        client = open_system("cliniko", fake.url, {"api_key": fake.api_key, "user_agent": USER_AGENT},
                             HttpSettings(allow_loopback=True))  # fmt: skip
        assert client.read(["2001", "2150", "9999"]) == {"2001": True, "2150": True}
        assert [c.path for c in client.http.calls] == [
            "/appointment_types?per_page=100&page=1",
            "/appointment_types?per_page=100&page=2",
        ]


def test_429_waits_for_retry_after_and_a_missing_user_agent_is_refused():
    with fake_cliniko() as fake:
        fake.add_type("1001", "Anti-wrinkle injections")
        fake.fail("PATCH", 429, times=1, retry_after="2")
        client = open_system("cliniko", fake.url, {"api_key": fake.api_key, "user_agent": USER_AGENT},
                             HttpSettings(allow_loopback=True))  # fmt: skip
        waits: list[float] = []
        client.http.sleep = waits.append
        assert client.switch("1001", False) and not fake.online("1001")
        assert waits == [2.0]
        anonymous = open_system("cliniko", fake.url, {"api_key": fake.api_key, "user_agent": "curl"},
                                HttpSettings(allow_loopback=True))  # fmt: skip
        with pytest.raises(ConnectorError, match="User-Agent"):
            anonymous.read(["1001"])
