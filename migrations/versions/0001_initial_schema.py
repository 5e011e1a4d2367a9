"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25

Migrations must not break the previous release: add before you remove.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import api.db


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.Enum('editor', 'reviewer', 'admin', name='api_key_role', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('display_prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', api.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', api.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash')),
    sa.UniqueConstraint('name', name=op.f('uq_api_keys_name'))
    )
    op.create_table('change_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_type', sa.String(length=60), nullable=False),
    sa.Column('treatment_slug', sa.String(length=80), nullable=False),
    sa.Column('occurred_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_events'))
    )
    with op.batch_alter_table('change_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_events_treatment_slug'), ['treatment_slug'], unique=False)

    op.create_table('treatments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('aliases', sa.JSON(), nullable=False),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('summary', sa.String(length=1000), nullable=False),
    sa.Column('explanation', sa.Text(), nullable=False),
    sa.Column('explanation_html', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('approved', 'under_review', 'not_approved', 'withdrawn', name='treatment_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('status_reason', sa.String(length=500), nullable=False),
    sa.Column('booking_requirements', sa.JSON(), nullable=False),
    sa.Column('safety', sa.JSON(), nullable=False),
    sa.Column('last_reviewed_on', sa.Date(), nullable=True),
    sa.Column('next_review_due', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('version >= 1', name=op.f('ck_treatments_version_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_treatments')),
    sa.UniqueConstraint('slug', name=op.f('uq_treatments_slug'))
    )
    with op.batch_alter_table('treatments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_treatments_category'), ['category'], unique=False)
        batch_op.create_index(batch_op.f('ix_treatments_name'), ['name'], unique=False)
        batch_op.create_index('ix_treatments_status_name', ['status', 'name'], unique=False)
        batch_op.create_index('ix_treatments_updated_at', ['updated_at'], unique=False)

    op.create_table('audit_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('treatment_id', sa.Integer(), nullable=False),
    sa.Column('entity', sa.String(length=20), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('actor_name', sa.String(length=100), nullable=False),
    sa.Column('actor_role', sa.String(length=20), nullable=False),
    sa.Column('occurred_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['treatment_id'], ['treatments.id'], name=op.f('fk_audit_records_treatment_id_treatments'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_records'))
    )
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_records_treatment_id'), ['treatment_id'], unique=False)

    op.create_table('decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('treatment_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('approved', 'under_review', 'not_approved', 'withdrawn', name='decision_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('previous_status', sa.Enum('approved', 'under_review', 'not_approved', 'withdrawn', name='decision_previous_status', native_enum=False, create_constraint=True, length=32), nullable=True),
    sa.Column('reason', sa.String(length=2000), nullable=False),
    sa.Column('reason_codes', sa.JSON(), nullable=False),
    sa.Column('decided_by', sa.String(length=100), nullable=False),
    sa.Column('decided_by_role', sa.String(length=20), nullable=False),
    sa.Column('decided_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('evidence_level', sa.Enum('insufficient', 'very_low', 'low', 'moderate', 'high', name='decision_evidence_level', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('evidence_snapshot', sa.JSON(), nullable=False),
    sa.Column('regulatory_snapshot', sa.JSON(), nullable=False),
    sa.Column('override_justification', sa.String(length=4000), nullable=True),
    sa.ForeignKeyConstraint(['treatment_id'], ['treatments.id'], name=op.f('fk_decisions_treatment_id_treatments'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions'))
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decisions_treatment_id'), ['treatment_id'], unique=False)

    op.create_table('regulatory_statuses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('treatment_id', sa.Integer(), nullable=False),
    sa.Column('regulator', sa.String(length=20), nullable=False),
    sa.Column('status', sa.Enum('approved', 'cleared', 'ce_marked', 'not_approved', 'no_application', 'under_review', 'warning_issued', name='regulatory_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('pathway', sa.String(length=100), nullable=True),
    sa.Column('product', sa.String(length=300), nullable=True),
    sa.Column('indication', sa.String(length=1000), nullable=True),
    sa.Column('reference', sa.String(length=300), nullable=True),
    sa.Column('decided_on', sa.Date(), nullable=True),
    sa.Column('source_url', sa.String(length=2000), nullable=False),
    sa.Column('verified_on', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['treatment_id'], ['treatments.id'], name=op.f('fk_regulatory_statuses_treatment_id_treatments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regulatory_statuses'))
    )
    with op.batch_alter_table('regulatory_statuses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_regulatory_statuses_treatment_id'), ['treatment_id'], unique=False)

    op.create_table('studies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('treatment_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('authors', sa.String(length=1000), nullable=True),
    sa.Column('journal', sa.String(length=300), nullable=True),
    sa.Column('year', sa.Integer(), nullable=True),
    sa.Column('doi', sa.String(length=200), nullable=True),
    sa.Column('pmid', sa.String(length=20), nullable=True),
    sa.Column('url', sa.String(length=2000), nullable=True),
    sa.Column('design', sa.Enum('systematic_review', 'meta_analysis', 'rct', 'controlled_non_randomised', 'cohort', 'case_control', 'case_series', 'case_report', 'pilot_uncontrolled', 'in_vitro', 'animal', 'expert_opinion', name='study_design', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('participants', sa.Integer(), nullable=True),
    sa.Column('randomised', sa.Boolean(), nullable=False),
    sa.Column('controlled', sa.Boolean(), nullable=False),
    sa.Column('blinded', sa.Boolean(), nullable=False),
    sa.Column('follow_up_months', sa.Numeric(precision=6, scale=2), nullable=True),
    sa.Column('sponsorship', sa.Enum('independent', 'industry', 'mixed', 'unknown', name='study_sponsorship', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('peer_reviewed', sa.Boolean(), nullable=False),
    sa.Column('outcome_summary', sa.String(length=2000), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', api.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('follow_up_months IS NULL OR follow_up_months >= 0', name=op.f('ck_studies_follow_up_non_negative')),
    sa.CheckConstraint('participants IS NULL OR participants >= 0', name=op.f('ck_studies_participants_non_negative')),
    sa.CheckConstraint('year IS NULL OR (year >= 1800 AND year <= 2200)', name=op.f('ck_studies_year_range')),
    sa.ForeignKeyConstraint(['treatment_id'], ['treatments.id'], name=op.f('fk_studies_treatment_id_treatments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studies'))
    )
    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_studies_treatment_id'), ['treatment_id'], unique=False)

    op.create_table('treatment_external_ids',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('treatment_id', sa.Integer(), nullable=False),
    sa.Column('system', sa.String(length=40), nullable=False),
    sa.Column('external_id', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['treatment_id'], ['treatments.id'], name=op.f('fk_treatment_external_ids_treatment_id_treatments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_treatment_external_ids')),
    sa.UniqueConstraint('system', 'external_id', name='uq_external_ids_system_id')
    )
    with op.batch_alter_table('treatment_external_ids', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_treatment_external_ids_treatment_id'), ['treatment_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('treatment_external_ids', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_treatment_external_ids_treatment_id'))

    op.drop_table('treatment_external_ids')
    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_studies_treatment_id'))

    op.drop_table('studies')
    with op.batch_alter_table('regulatory_statuses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_regulatory_statuses_treatment_id'))

    op.drop_table('regulatory_statuses')
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decisions_treatment_id'))

    op.drop_table('decisions')
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_records_treatment_id'))

    op.drop_table('audit_records')
    with op.batch_alter_table('treatments', schema=None) as batch_op:
        batch_op.drop_index('ix_treatments_updated_at')
        batch_op.drop_index('ix_treatments_status_name')
        batch_op.drop_index(batch_op.f('ix_treatments_name'))
        batch_op.drop_index(batch_op.f('ix_treatments_category'))

    op.drop_table('treatments')
    with op.batch_alter_table('change_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_change_events_treatment_slug'))

    op.drop_table('change_events')
    op.drop_table('api_keys')
