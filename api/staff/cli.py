"""`flask --app api users create|list|reset|deactivate`: staff accounts from the command line"""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from api.api_keys.models import Role
from api.db import get_session
from api.errors import DomainError
from api.staff import service
from api.staff.service import StaffSettings

users_cli = AppGroup("users", help="Staff console accounts: create, list, reset, deactivate.")


def _settings() -> StaffSettings:
    from api.console.forms import staff_settings

    return staff_settings()


def link_url(token: str) -> str:
    """The absolute one-time link (no request here, so the base URL comes from configuration)."""
    return f"{current_app.config['CONSOLE_BASE_URL'].rstrip('/')}/console/sign-in/link/{token}"


def _fail(error: DomainError) -> None:
    click.echo(f"Refused: {error.detail}", err=True)
    sys.exit(1)


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
def create(email: str, name: str, role: str) -> None:
    """Add a person; prints their one-time sign-in link (last line)."""
    try:
        user, token = service.create_user(get_session(), email, name, Role(role), _settings())
    except DomainError as error:
        _fail(error)
        return
    hours = current_app.config["CONSOLE_SIGN_IN_LINK_HOURS"]
    click.echo(f"Created {user.email} ({user.role.value}). One-time sign-in link, valid {hours} h:")
    click.echo(link_url(token))


@users_cli.command("list")
def list_users() -> None:
    """List accounts (never a password or link)."""
    for user in service.list_users(get_session()):
        state = "active" if user.active else "deactivated"
        password = "password set" if user.password_hash else "awaiting first sign-in"
        click.echo(f"{user.email:40} {user.role.value:9} {state:11} {password}  {user.name}")


@users_cli.command("reset")
@click.option("--email", required=True)
def reset(email: str) -> None:
    """End a person's sessions, forget their password; prints a new one-time link (last line)."""
    try:
        token = service.reset_user(get_session(), email, _settings())
    except DomainError as error:
        _fail(error)
        return
    click.echo(f"Reset {service.normalise_email(email)}: signed out everywhere. New one-time sign-in link:")
    click.echo(link_url(token))


@users_cli.command("deactivate")
@click.option("--email", required=True)
def deactivate(email: str) -> None:
    """Stop a person signing in (and end their sessions)."""
    try:
        service.set_active(get_session(), email, False)
    except DomainError as error:
        _fail(error)
        return
    click.echo(f"Deactivated {service.normalise_email(email)}.")


def init_app(app: Flask) -> None:
    app.cli.add_command(users_cli)
