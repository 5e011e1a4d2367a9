"""study risk of bias and pooled designs

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Migrations must not break the previous release: add before you remove.

Every study gets `risk_of_bias` (`not_assessed` for the rows already there) and an optional note;
reviews (systematic reviews and meta-analyses) get `pooled_designs` (`unknown` for the rows already
there, until someone reads what each one pools) and `pooled_studies`. No row is lost either way:
the downgrade drops only the new columns.

The previous release never writes the new columns, so what it inserts passes the new checks. A
review it adds during a rollout keeps a null `pooled_designs`, which the evidence rules read as
`unknown`; that is why "a review says what it pools" is kept by the model, not by a CHECK here.
The one write of the previous release the checks refuse (409, nothing written) is changing a
review's design to another, which would leave the review's pooled fields behind.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REVIEWS = "'meta_analysis', 'systematic_review'"


def upgrade() -> None:
    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('risk_of_bias', sa.Enum('low', 'some_concerns', 'high', 'not_assessed', name='study_risk_of_bias', native_enum=False, create_constraint=True, length=32), server_default='not_assessed', nullable=False))
        batch_op.add_column(sa.Column('risk_of_bias_note', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('pooled_designs', sa.Enum('rct_only', 'includes_non_randomised', 'uncontrolled_only', 'unknown', name='study_pooled_designs', native_enum=False, create_constraint=True, length=32), nullable=True))
        batch_op.add_column(sa.Column('pooled_studies', sa.Integer(), nullable=True))

    op.execute(f"UPDATE studies SET pooled_designs = 'unknown' WHERE design IN ({REVIEWS})")

    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.create_check_constraint(
            op.f('ck_studies_pooled_studies_positive'), 'pooled_studies IS NULL OR pooled_studies >= 1'
        )
        batch_op.create_check_constraint(
            op.f('ck_studies_pooled_only_for_reviews'),
            '(pooled_designs IS NULL AND pooled_studies IS NULL) '
            f'OR (design IS NOT NULL AND design IN ({REVIEWS}))',
        )


def downgrade() -> None:
    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_studies_pooled_only_for_reviews'), type_='check')
        batch_op.drop_constraint(op.f('ck_studies_pooled_studies_positive'), type_='check')
        batch_op.drop_constraint(op.f('ck_studies_study_pooled_designs'), type_='check')
        batch_op.drop_constraint(op.f('ck_studies_study_risk_of_bias'), type_='check')
        batch_op.drop_column('pooled_studies')
        batch_op.drop_column('pooled_designs')
        batch_op.drop_column('risk_of_bias_note')
        batch_op.drop_column('risk_of_bias')
