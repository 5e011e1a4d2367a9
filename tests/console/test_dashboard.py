"""The dashboard: what needs attention"""

import datetime as dt

from tests.conftest import execute
from tests.helpers import add_treatment, approval, study


def test_the_dashboard_lists_what_needs_attention(app, client, admin, signed_in):
    add_treatment(app, "overdue-one")
    add_treatment(app, "soon-one")
    add_treatment(app, "flagged", "approved", studies=[study()], regulatory=[approval()])
    add_treatment(app, "suspended", "approved", studies=[study()], regulatory=[approval()])
    execute(app, "UPDATE treatments SET next_review_due = '2000-01-01' WHERE slug = 'overdue-one'")
    soon = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=5)).isoformat()
    execute(app, "UPDATE treatments SET next_review_due = :soon WHERE slug = 'soon-one'", soon=soon)
    execute(
        app, "UPDATE treatments SET next_review_due = '2099-01-01' WHERE slug IN ('flagged', 'suspended')"
    )
    client.post(
        "/v1/treatments/suspended/regulatory",
        headers=admin,
        json=approval(regulator="EMA", status="warning_issued", source_url="https://www.ema.europa.eu/x"),
    )
    study_id = client.get("/v1/treatments/flagged/studies").get_json()[0]["id"]
    etag = client.get(f"/v1/treatments/flagged/studies/{study_id}").headers["ETag"]
    client.delete(f"/v1/treatments/flagged/studies/{study_id}", headers=admin | {"If-Match": etag})
    execute(
        app,
        "INSERT INTO webhook_subscriptions (url, description, event_types, active, secret, "
        "consecutive_failures, disabled_reason, created_at, updated_at, version) VALUES "
        "('https://booking.example/hook', 'Booking', '[]', true, 's', 3, NULL, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)",
    )

    html = signed_in("editor").get("/console/").get_data(as_text=True)
    sections = {
        name: html.split(f'id="{name}-h"')[1].split("</section>")[0]
        for name in ("gate", "suspended", "overdue", "soon", "hooks")
    }
    assert "Flagged" in sections["gate"] and "evidence level" in sections["gate"]
    assert "Suspended" in sections["suspended"] and "EMA issued a warning" in sections["suspended"]
    assert "Overdue One" in sections["overdue"] and "overdue by" in sections["overdue"]
    assert "Soon One" in sections["soon"] and "due in 5 days" in sections["soon"]
    assert (
        "https://booking.example/hook" in sections["hooks"]
        and "3 failed attempts in a row" in sections["hooks"]
    )


def test_a_calm_dashboard_says_so(signed_in):
    html = signed_in("editor").get("/console/").get_data(as_text=True)
    assert html.count("<p>None.</p>") == 5
