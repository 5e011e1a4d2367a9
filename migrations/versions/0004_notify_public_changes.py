"""notify public changes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Migrations must not break the previous release: add before you remove.

PostgreSQL only: every statement that changes a public table sends NOTIFY on the read cache's
channel (api.readcache.version.CHANNEL), delivered when its transaction commits, whoever wrote:
the API, psql, `flask import`, a restore that fires triggers. NOTIFY collapses repeats of one
payload within a transaction, so a write costs one notification however many rows it touches.
SQLite needs nothing: its workers read `PRAGMA data_version`.
"""
from collections.abc import Sequence

from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = 'tpa_public_changes'
PUBLIC_TABLES = ('treatments', 'treatment_external_ids', 'studies', 'regulatory_statuses',
                 'decisions', 'treatment_reviews', 'change_events')


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(f"""
        CREATE FUNCTION tpa_notify_public_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END $$""")
    for table in PUBLIC_TABLES:
        op.execute(f"""
            CREATE TRIGGER tpa_notify_public_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
            ON {table} FOR EACH STATEMENT EXECUTE FUNCTION tpa_notify_public_change()""")


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table in PUBLIC_TABLES:
        op.execute(f'DROP TRIGGER tpa_notify_public_change ON {table}')
    op.execute('DROP FUNCTION tpa_notify_public_change()')
