"""booking-system connectors

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Migrations must not break the previous release: add before you remove.

New tables only (the previous release never reads them): a connector's configuration with its
encrypted credentials, the worker's bookkeeping, the services a connector switched off (the only
ones it may switch back on), its recent calls, and the booking notifications it received (guard
mode). None is public, so none notifies the read caches.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import api.db


revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = api.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "connectors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("base_url", sa.String(length=2000), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("guard", sa.JSON(), nullable=True),
        sa.Column("guard_secret", sa.Text(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connectors")),
    )
    op.create_table(
        "connector_states",
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", UTC, nullable=True),
        sa.Column("sync_requested_at", UTC, nullable=True),
        sa.Column("last_pass_at", UTC, nullable=True),
        sa.Column("last_success_at", UTC, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", UTC, nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connector_id"],
            ["connectors.id"],
            name=op.f("fk_connector_states_connector_id_connectors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connector_id", name=op.f("pk_connector_states")),
    )
    op.create_table(
        "connector_hidden_services",
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=120), nullable=False),
        sa.Column("treatment_slug", sa.String(length=80), nullable=False),
        sa.Column("hidden_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["connector_id"],
            ["connectors.id"],
            name=op.f("fk_connector_hidden_services_connector_id_connectors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connector_id", "external_id", name=op.f("pk_connector_hidden_services")),
    )
    op.create_table(
        "connector_calls",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(
            ["connector_id"],
            ["connectors.id"],
            name=op.f("fk_connector_calls_connector_id_connectors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_calls")),
    )
    op.create_index("ix_connector_calls_connector", "connector_calls", ["connector_id", "id"], unique=False)
    op.create_table(
        "connector_notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("booking_id", sa.String(length=200), nullable=True),
        sa.Column("received_at", UTC, nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("blocked", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connector_id"], ["connectors.id"],
            name=op.f("fk_connector_notifications_connector_id_connectors"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_notifications")),
        sa.UniqueConstraint("connector_id", "event_id", name="uq_connector_notifications_event"),
    )
    op.create_index(
        op.f("ix_connector_notifications_connector_id"), "connector_notifications", ["connector_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_connector_notifications_connector_id"), table_name="connector_notifications")
    op.drop_table("connector_notifications")
    op.drop_index("ix_connector_calls_connector", table_name="connector_calls")
    op.drop_table("connector_calls")
    op.drop_table("connector_hidden_services")
    op.drop_table("connector_states")
    op.drop_table("connectors")
