"""Every model, imported once so the metadata is complete (for Alembic and tests)"""

from api.api_keys.models import ApiKey
from api.audit.models import AuditRecord
from api.changes.models import ChangeEvent
from api.connectors.models import Connector, ConnectorCall, ConnectorState, HiddenService, Notification
from api.db import Base
from api.idempotency.models import IdempotencyRecord
from api.literature.models import ImportBatch
from api.reviews.models import Review
from api.staff.models import SignInLink, StaffSession, StaffUser
from api.treatments.models import Decision, ExternalId, RegulatoryStatus, Study, Treatment
from api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

__all__ = [
    "Connector",
    "ConnectorCall",
    "ConnectorState",
    "HiddenService",
    "Notification",
    "ApiKey",
    "AuditRecord",
    "Base",
    "ChangeEvent",
    "Decision",
    "IdempotencyRecord",
    "ImportBatch",
    "Review",
    "SignInLink",
    "StaffSession",
    "StaffUser",
    "ExternalId",
    "RegulatoryStatus",
    "Study",
    "Treatment",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
]
