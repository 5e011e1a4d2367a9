"""Command-line tasks: `flask --app api db|seed|keys ...`"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson
from alembic import command
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from api.api_keys import service as keys_service
from api.api_keys.models import Role
from api.context import current_rules
from api.db import alembic_config, get_engine, get_session
from api.errors import DomainError
from api.idempotency.service import purge_expired
from api.seed import SeedError, load_catalogue
from api.transfer import export_registry, import_registry
from api.treatments.models import Treatment

db_cli = AppGroup("db", help="Database schema (Alembic migrations).")
keys_cli = AppGroup("keys", help="API keys: create, list, revoke.")


def _alembic():  # type: ignore[no-untyped-def]
    return alembic_config(current_app.config["DATABASE_URL"])


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    command.upgrade(_alembic(), revision)


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` for an empty database)."""
    command.downgrade(_alembic(), revision)


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Write a new migration from the difference between the models and the database."""
    command.revision(_alembic(), message=message, autogenerate=True)


@db_cli.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree."""
    command.check(_alembic())


@click.command("seed")
@with_appcontext
@click.option("--if-empty", is_flag=True, help="Only seed a database that holds no treatment.")
@click.option(
    "--demo", is_flag=True,
    help="Record the illustrative positions (some approved) instead of every treatment under review.",
)  # fmt: skip
def seed_command(if_empty: bool, demo: bool) -> None:
    """Load the seed catalogue (idempotent: upsert by slug), unreviewed: every new treatment under
    review unless --demo. Treatments already present keep their decisions."""
    session = get_session()
    if if_empty and session.scalar(select(func.count(Treatment.id))):
        click.echo("Catalogue already present; not seeding.")
        return
    try:
        counts = load_catalogue(session, current_rules(), demo=demo)
    except (SeedError, DomainError) as error:
        click.echo(f"Seed refused: {error}", err=True)
        sys.exit(1)
    click.echo(", ".join(f"{n} {what}" for what, n in counts.items()))


@keys_cli.command("create")
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
def keys_create(name: str, role: str) -> None:
    """Create a key; it is printed once, alone on the last line, and never again."""
    try:
        key = keys_service.create_key(get_session(), name, Role(role))
    except DomainError as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    click.echo(f"Created {role} key '{name}'. Store it now; it cannot be shown again:")
    click.echo(key)


@keys_cli.command("list")
def keys_list() -> None:
    """List keys: name, role, created, last used, revoked (never the key)."""
    click.echo(f"{'name':<24} {'role':<9} {'created':<20} {'last used':<20} revoked")
    for key in keys_service.list_keys(get_session()):
        click.echo(
            f"{key.name:<24} {key.role.value:<9} {_when(key.created_at):<20} "
            f"{_when(key.last_used_at):<20} {_when(key.revoked_at)}"
        )


@keys_cli.command("revoke")
@click.argument("name")
def keys_revoke(name: str) -> None:
    """Revoke a key by name; it stops working at once."""
    try:
        keys_service.revoke_key(get_session(), name)
    except DomainError as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    click.echo(f"Revoked '{name}'.")


@click.command("export")
@with_appcontext
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
def export_command(file: str) -> None:
    """Write the whole registry as one versioned JSON document (no key hashes or secrets)."""
    with get_engine().connect() as conn:
        document = export_registry(conn)
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    if file == "-":
        click.echo(data.decode())
    else:
        Path(file).write_bytes(data)
        counts = ", ".join(f"{len(rows)} {name}" for name, rows in document["tables"].items())
        click.echo(f"Exported {counts} to {file}.")


@click.command("import")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_command(file: str) -> None:
    """Restore an export into an empty, migrated database (one transaction).

    Running workers hear of it as of any write: PostgreSQL's triggers send NOTIFY at the commit,
    and SQLite's data_version moves on."""
    try:
        with get_engine().begin() as conn:
            counts = import_registry(conn, orjson.loads(Path(file).read_bytes()))
    except (DomainError, orjson.JSONDecodeError) as error:
        click.echo(f"Import refused: {error}", err=True)
        sys.exit(1)
    click.echo("Imported " + ", ".join(f"{n} {name}" for name, n in counts.items()) + ".")


@click.command("purge-idempotency-keys")
@with_appcontext
def purge_idempotency_keys() -> None:
    """Delete idempotency keys older than IDEMPOTENCY_TTL_HOURS (run it daily from cron)."""
    click.echo(f"Purged {purge_expired(get_session())} expired idempotency keys.")


def _when(value) -> str:  # type: ignore[no-untyped-def]
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def init_app(app: Flask) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(seed_command)
    app.cli.add_command(export_command)
    app.cli.add_command(import_command)
    app.cli.add_command(purge_idempotency_keys)
