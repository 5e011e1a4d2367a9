"""treatment suspension

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Migrations must not break the previous release: add before you remove.

A regulatory warning suspends an approved treatment's bookings at once (`suspended_at`, with a
`suspension_reason`), until a decision lifts it. Both columns are nullable and unset for every row
already there: nothing is suspended by the upgrade, and the downgrade drops only these columns.
The previous release never writes them, so it ignores a suspension (it would answer bookable).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import api.db


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE on both databases (SQLite 3.35+ drops columns): a batch copy of `treatments`
# would drop the table that other tables' foreign keys point at.
def upgrade() -> None:
    op.add_column('treatments', sa.Column('suspended_at', api.db.UTCDateTime(timezone=True), nullable=True))
    op.add_column('treatments', sa.Column('suspension_reason', sa.String(length=500), nullable=True))


def downgrade() -> None:
    op.drop_column('treatments', 'suspension_reason')
    op.drop_column('treatments', 'suspended_at')
