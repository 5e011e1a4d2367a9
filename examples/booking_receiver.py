"""An example webhook receiver: a booking system's own integration with the Treatment Policy API.

For a booking system with no connector of its own, this is the whole job: subscribe to
`treatment.bookability_changed`, verify each delivery's signature with the `standardwebhooks`
library, and switch the service off (or back on) in the booking system. The event carries the
treatment's `external_ids`, so the receiver needs no call back to the API.

`StandInBookingSystem` stands in for the real booking system's API. Run it:

    TPA_WEBHOOK_SECRET=whsec_... .venv/bin/python examples/booking_receiver.py --port 9000

and subscribe `http://127.0.0.1:9000/hooks/tpa` (README "Connecting the booking system: custom
integrations"). `tests/integration/test_example_receiver.py` runs it against real deliveries.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from flask import Flask, abort, request
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

SYSTEM = "mybooking"  # this booking system's key in a treatment's external_ids


@dataclass
class StandInBookingSystem:
    """The booking system's services: id → offered for online booking."""

    online: dict[str, bool] = field(default_factory=dict)

    def set_online(self, service_id: str, on: bool) -> None:
        self.online[service_id] = on


def create_receiver(secret: str, booking: StandInBookingSystem) -> Flask:
    app = Flask(__name__)
    webhook = Webhook(secret)
    seen: set[str] = set()  # webhook-id of deliveries handled (deliveries are at least once)
    hidden: set[str] = set()  # services this receiver switched off: the only ones it switches on
    lock = threading.Lock()

    @app.post("/hooks/tpa")
    def receive() -> tuple[str, int]:
        try:
            event = webhook.verify(request.get_data(), dict(request.headers))
        except WebhookVerificationError:
            abort(401)
        with lock:
            if request.headers["webhook-id"] in seen:
                return "", 204
            seen.add(request.headers["webhook-id"])
            if event["type"] == "treatment.bookability_changed":
                service_id = event["data"].get("external_ids", {}).get(SYSTEM)
                if service_id is not None and not event["data"]["new_bookable"]:
                    if booking.online.get(service_id, False):
                        booking.set_online(service_id, False)
                        hidden.add(service_id)
                elif service_id in hidden:
                    booking.set_online(service_id, True)
                    hidden.discard(service_id)
        return "", 204

    return app


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    stand_in = StandInBookingSystem({"MB-100": True, "MB-200": True})
    create_receiver(os.environ["TPA_WEBHOOK_SECRET"], stand_in).run("127.0.0.1", args.port)
