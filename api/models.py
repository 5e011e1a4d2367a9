"""Every model, imported once so the metadata is complete (for Alembic and tests)"""

from api.api_keys.models import ApiKey
from api.audit.models import AuditRecord
from api.changes.models import ChangeEvent
from api.db import Base
from api.treatments.models import Decision, ExternalId, RegulatoryStatus, Study, Treatment

__all__ = [
    "ApiKey",
    "AuditRecord",
    "Base",
    "ChangeEvent",
    "Decision",
    "ExternalId",
    "RegulatoryStatus",
    "Study",
    "Treatment",
]
