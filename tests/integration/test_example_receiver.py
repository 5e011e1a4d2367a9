"""examples/booking_receiver.py, the custom integration the README shows, against real deliveries"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tests.helpers import add_treatment, approval, decide, serving, study

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "booking_receiver.py"


def load_example():
    spec = importlib.util.spec_from_file_location("booking_receiver", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def loopback(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOKS_ALLOW_LOOPBACK_HTTP", True)


def test_the_example_receiver_switches_the_service_off_and_back_on(
    app, client, admin, reviewer, runner, loopback
):
    example = load_example()
    add_treatment(app, "botox", "approved", studies=[study()], regulatory=[approval()],
                  external_ids={"mybooking": "MB-100"})  # fmt: skip
    booking = example.StandInBookingSystem({"MB-100": True, "MB-200": True})
    hook = {"event_types": ["treatment.bookability_changed"], "url": "http://127.0.0.1:1/placeholder"}
    # The API chooses the secret: subscribe first, serve the receiver with it, then point the URL at it.
    subscribed = client.post("/v1/webhooks", json=hook, headers=admin).get_json()
    receiver = example.create_receiver(subscribed["secret"], booking)
    with serving(receiver) as url:
        etag = client.get(f"/v1/webhooks/{subscribed['id']}", headers=admin).headers["ETag"]
        client.patch(f"/v1/webhooks/{subscribed['id']}", json={"url": url + "/hooks/tpa"},
                     headers=admin | {"If-Match": etag})  # fmt: skip
        decide(client, reviewer, "botox", "withdrawn")
        assert runner.invoke(args=["webhooks", "deliver"]).exit_code == 0
        assert booking.online == {"MB-100": False, "MB-200": True}
        decide(client, reviewer, "botox", "approved")
        assert runner.invoke(args=["webhooks", "deliver"]).exit_code == 0
        assert booking.online == {"MB-100": True, "MB-200": True}
        deliveries = client.get(f"/v1/webhooks/{subscribed['id']}/deliveries", headers=admin).get_json()
        assert [d["state"] for d in deliveries] == ["delivered", "delivered"]


def test_the_example_receiver_refuses_a_forged_delivery(app):
    example = load_example()
    booking = example.StandInBookingSystem({"MB-100": True})
    receiver = example.create_receiver("whsec_" + "A" * 43 + "=", booking).test_client()
    body = json.dumps({"type": "treatment.bookability_changed", "timestamp": "2026-12-01T00:00:00+00:00",
                       "data": {"new_bookable": False, "external_ids": {"mybooking": "MB-100"}}})  # fmt: skip
    headers = {"webhook-id": "evt_1", "webhook-timestamp": "1764547200", "webhook-signature": "v1,Zm9yZ2Vk"}
    assert receiver.post("/hooks/tpa", data=body, headers=headers).status_code == 401
    assert booking.online == {"MB-100": True}
