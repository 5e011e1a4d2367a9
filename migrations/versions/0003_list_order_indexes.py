"""list order indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Migrations must not break the previous release: add before you remove.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import api.db


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('treatments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_treatments_name'))
        batch_op.drop_index(batch_op.f('ix_treatments_status_name'))
        batch_op.create_index('ix_treatments_name_id', ['name', 'id'], unique=False)
        batch_op.create_index('ix_treatments_status_name_id', ['status', 'name', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('treatments', schema=None) as batch_op:
        batch_op.drop_index('ix_treatments_status_name_id')
        batch_op.drop_index('ix_treatments_name_id')
        batch_op.create_index(batch_op.f('ix_treatments_status_name'), ['status', 'name'], unique=False)
        batch_op.create_index(batch_op.f('ix_treatments_name'), ['name'], unique=False)

