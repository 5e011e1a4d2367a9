"""What needs attention: the dashboard's read model (queries only, no rules of its own)"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api.reviews.service import reviews_due
from api.treatments.models import Treatment
from api.treatments.settings import RuleSettings
from api.webhooks.models import WebhookSubscription

DUE_SOON_DAYS = 30


def attention(session: Session, rules: RuleSettings) -> dict[str, Any]:
    """Reviews overdue and due soon, approved treatments whose gate is no longer met (the
    due-review report's own rows), suspended treatments and failing webhook subscriptions."""
    due = reviews_due(session, DUE_SOON_DAYS, rules)
    items = due["items"]
    suspended = session.execute(
        select(Treatment.slug, Treatment.name, Treatment.suspended_at, Treatment.suspension_reason)
        .where(Treatment.suspended_at.is_not(None))
        .order_by(Treatment.suspended_at)
    ).all()
    webhooks = session.scalars(
        select(WebhookSubscription)
        .where(
            or_(
                WebhookSubscription.consecutive_failures > 0, WebhookSubscription.disabled_reason.is_not(None)
            )
        )
        .order_by(WebhookSubscription.id)
    ).all()
    return {
        "as_of": due["as_of"],
        "due_soon_days": DUE_SOON_DAYS,
        "gate_not_met": [i for i in items if i["gate_not_met"]],
        "overdue": [i for i in items if i["overdue"] and not i["gate_not_met"]],
        "due_soon": [i for i in items if not i["overdue"] and not i["gate_not_met"]],
        "suspended": suspended,
        "failing_webhooks": webhooks,
    }
