"""screening: import batches and exclusion reasons

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Migrations must not break the previous release: add before you remove.

Each literature import is kept as a batch (`import_batches`: when, who, file name, format, records
read, imported, duplicates) and a study links to the batch it came from (`import_batch_id`, null
for every study already there and for studies added by hand). An excluded study says why
(`exclusion_reason`, a coded reason, and `exclusion_note`). New, nullable columns and a new table:
the previous release ignores them; the downgrade drops only them.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import api.db


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASONS = ('wrong_population', 'wrong_intervention', 'wrong_comparator', 'wrong_outcome', 'wrong_design',
           'not_human', 'duplicate', 'other')


def upgrade() -> None:
    op.create_table('import_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('treatment_id', sa.Integer(), nullable=False),
    sa.Column('created_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('imported', sa.Integer(), nullable=False),
    sa.Column('duplicates', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['treatment_id'], ['treatments.id'], name=op.f('fk_import_batches_treatment_id_treatments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_batches'))
    )
    with op.batch_alter_table('import_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_batches_treatment_id'), ['treatment_id'], unique=False)

    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('import_batch_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('exclusion_reason', sa.Enum(*REASONS, name='study_exclusion_reason', native_enum=False, create_constraint=True, length=32), nullable=True))
        batch_op.add_column(sa.Column('exclusion_note', sa.String(length=500), nullable=True))
        batch_op.create_index(batch_op.f('ix_studies_import_batch_id'), ['import_batch_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_studies_import_batch_id_import_batches'), 'import_batches', ['import_batch_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_studies_import_batch_id_import_batches'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_studies_import_batch_id'))
        batch_op.drop_constraint(op.f('ck_studies_study_exclusion_reason'), type_='check')
        batch_op.drop_column('exclusion_note')
        batch_op.drop_column('exclusion_reason')
        batch_op.drop_column('import_batch_id')

    with op.batch_alter_table('import_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_batches_treatment_id'))

    op.drop_table('import_batches')
