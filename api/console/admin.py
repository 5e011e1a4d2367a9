"""Administration in the console (admins only): API keys, webhook subscriptions and their
deliveries, and the booking-system connectors. People are in `api.console.users`.

Each page calls the service the API's admin routes call (`api.api_keys.service`,
`api.webhooks.service`, `api.connectors.service`), with the API's own schemas for what is typed.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app, flash, redirect, render_template, request, url_for

from api.api_keys import service as keys
from api.api_keys.models import ApiKey, Role
from api.changes.service import EVENT_TYPES
from api.connectors import service as connectors_service
from api.console import forms
from api.console.blueprint import STAFF_ONLY, blp, staff
from api.db import get_session, utcnow
from api.errors import DomainError, NotFound, PreconditionFailed
from api.readcache import uncacheable
from api.webhooks import service as webhooks_service
from api.webhooks.schemas import WebhookCreateSchema

RECENT = 50


@blp.route("/admin")
@uncacheable(STAFF_ONLY)
@staff("admin")
def admin() -> Any:
    """What an admin looks after, with the state of each at a glance."""
    db = get_session()
    return render_template(
        "console/admin.html",
        keys=[k for k in keys.list_keys(db) if k.revoked_at is None],
        webhooks=webhooks_service.list_subscriptions(db),
        connectors=connectors_service.list_connectors(db),
    )


# --- API keys ---------------------------------------------------------------------------------


@blp.route("/admin/keys", methods=["GET", "POST"])
@uncacheable(STAFF_ONLY)
@staff("admin")
def api_keys() -> Any:
    """The keys (with their last use) and a form for a new one, shown once."""
    db, form, errors, created, status = get_session(), {}, {}, None, 200
    if request.method == "POST":
        form = {"name": request.form.get("name", "").strip(), "role": request.form.get("role", "")}
        if not form["name"] or len(form["name"]) > 100:
            errors, status = {"name": ["Name the key (at most 100 characters): who or what uses it."]}, 422
        elif form["role"] not in set(Role):
            errors, status = {"role": ["Choose a role."]}, 422
        else:
            try:
                created = {"name": form["name"], "key": keys.create_key(db, form["name"], Role(form["role"]))}
                form = {}
            except DomainError as error:
                db.rollback()
                errors, status = forms.errors_by_field(error), error.status
    return render_template(
        "console/api_keys.html", items=keys.list_keys(db), form=form, errors=errors, created=created,
        roles=list(Role),
    ), status  # fmt: skip


@blp.route("/admin/keys/<int(max=2147483647):key_id>/revoke", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("admin")
def revoke_api_key(key_id: int) -> Any:
    key = get_session().get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key has the id {key_id}.")
    keys.revoke_key(get_session(), key.name)
    flash(f"Key {key.name} revoked: it no longer works.")
    return redirect(url_for("console.api_keys"))


# --- webhooks ---------------------------------------------------------------------------------


def _loopback() -> bool:
    return bool(current_app.config["WEBHOOKS_ALLOW_LOOPBACK_HTTP"])


@blp.route("/admin/webhooks", methods=["GET", "POST"])
@uncacheable(STAFF_ONLY)
@staff("admin")
def webhooks() -> Any:
    """Subscriptions, and a form for a new one (its signing secret shown once)."""
    db, form, errors, created, status = get_session(), {}, {}, None, 200
    if request.method == "POST":
        form = {"url": request.form.get("url", ""), "description": request.form.get("description", "")}
        chosen = request.form.getlist("event_types")
        try:
            data = forms.load(
                WebhookCreateSchema(),
                {"url": forms.text(request.form, "url"), "description": form["description"].strip(),
                 "event_types": chosen},
            )  # fmt: skip
            subscription = webhooks_service.create_subscription(db, data, _loopback())
            created, form = {"url": subscription.url, "secret": subscription.secret}, {}
        except (ma.ValidationError, DomainError) as error:
            db.rollback()
            status = error.status if isinstance(error, DomainError) else 422
            errors = forms.errors_by_field(error)
            form["event_types"] = chosen  # type: ignore[assignment]
    return render_template(
        "console/webhooks.html", items=webhooks_service.list_subscriptions(db), form=form, errors=errors,
        created=created, event_types=EVENT_TYPES, etag=webhooks_service.subscription_etag,
    ), status  # fmt: skip


@blp.route("/admin/webhooks/<int(max=2147483647):webhook_id>")
@uncacheable(STAFF_ONLY)
@staff("admin")
def webhook(webhook_id: int) -> Any:
    """A subscription and its recent deliveries, each with its attempts."""
    db = get_session()
    subscription = webhooks_service.find_subscription(db, webhook_id)
    deliveries = webhooks_service.list_deliveries(db, webhook_id, None, None, RECENT)
    return render_template(
        "console/webhook.html", w=subscription, deliveries=deliveries,
        etag=webhooks_service.subscription_etag(subscription),
    )  # fmt: skip


@blp.route("/admin/webhooks/<int(max=2147483647):webhook_id>/active", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("admin")
def switch_webhook(webhook_id: int) -> Any:
    """Switch a subscription off (its pending deliveries are given up) or on again."""
    db = get_session()
    active = request.form.get("active") == "true"
    try:
        webhooks_service.update_subscription(
            db, webhook_id, {"active": active}, request.form.get("etag", ""), _loopback()
        )
    except PreconditionFailed:
        db.rollback()
        flash("Not changed: the subscription changed after you opened the page. It is shown as it is now.")
        return redirect(url_for("console.webhook", webhook_id=webhook_id))
    off = "Subscription switched off; pending deliveries given up."
    flash("Subscription switched on." if active else off)
    return redirect(url_for("console.webhook", webhook_id=webhook_id))


@blp.route(
    "/admin/webhooks/<int(max=2147483647):webhook_id>/deliveries/<int(max=2147483647):delivery_id>/redeliver",
    methods=["POST"],
)
@uncacheable(STAFF_ONLY)
@staff("admin")
def redeliver(webhook_id: int, delivery_id: int) -> Any:
    webhooks_service.redeliver(get_session(), webhook_id, delivery_id, utcnow())
    flash(f"Delivery {delivery_id} queued again.")
    return redirect(url_for("console.webhook", webhook_id=webhook_id))


# --- booking-system connectors ----------------------------------------------------------------


@blp.route("/admin/connectors")
@uncacheable(STAFF_ONLY)
@staff("admin")
def connectors() -> Any:
    """Each connector's status: last pass, last success, last error, counts, sync requested."""
    items = connectors_service.list_connectors(get_session())
    return render_template("console/connectors.html", items=items)


@blp.route("/admin/connectors/<int(max=2147483647):connector_id>")
@uncacheable(STAFF_ONLY)
@staff("admin")
def connector(connector_id: int) -> Any:
    """A connector's status and its recent calls to the booking system."""
    db = get_session()
    found = connectors_service.find_connector(db, connector_id)
    return render_template(
        "console/connector.html", c=found, state=connectors_service.state_of(db, connector_id),
        calls=connectors_service.list_calls(db, connector_id, RECENT),
        hidden=connectors_service.hidden_services(db, connector_id),
    )  # fmt: skip


@blp.route("/admin/connectors/<int(max=2147483647):connector_id>/sync", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("admin")
def sync_connector(connector_id: int) -> Any:
    connectors_service.request_sync(get_session(), connector_id)
    flash("Sync requested: a worker runs it within moments.")
    return redirect(url_for("console.connector", connector_id=connector_id))
