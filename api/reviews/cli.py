"""`flask --app api reviews due`: the due-review report for a cron job"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup

from api.context import current_rules
from api.db import get_session
from api.reviews.schemas import MAX_WITHIN_DAYS
from api.reviews.service import reviews_due

reviews_cli = AppGroup("reviews", help="Review monitoring.")


@reviews_cli.command("due")
@click.option(
    "--within", default=30, show_default=True, type=click.IntRange(0, MAX_WITHIN_DAYS),
    help="Also list reviews due within this many days.",
)  # fmt: skip
def reviews_due_command(within: int) -> None:
    """List approved treatments that no longer meet the gate, then overdue and soon-due reviews;
    exit 1 if any is flagged or overdue, else 0."""
    report = reviews_due(get_session(), within, current_rules())
    for line in format_report(report):
        click.echo(line)
    if report["overdue"] or any(item["gate_not_met"] for item in report["items"]):
        sys.exit(1)


def format_report(report: dict[str, Any]) -> list[str]:
    items = report["items"]
    lines = [
        f"Reviews due by {report['due_by']} (today {report['as_of']} + {report['within_days']} days): "
        f"{len(items)} listed, {report['overdue']} overdue"
    ]
    if not items:
        return lines
    width = max(len("slug"), *(len(item["slug"]) for item in items))
    lines.append(f"{'slug':<{width}}  {'status':<12}  {'last reviewed':<13}  {'next due':<10}  when")
    for item in items:
        lines.append(
            f"{item['slug']:<{width}}  {item['status']:<12}  {_day(item['last_reviewed_on']):<13}  "
            f"{_day(item['next_review_due']):<10}  {_when(item)}"
        )
    return lines


def _when(item: dict[str, Any]) -> str:
    if item["gate_not_met"]:
        return "GATE NOT MET: " + ", ".join(u["code"] for u in item["unmet"])
    if item["next_review_due"] is None:
        return "OVERDUE: never scheduled"
    if item["overdue"]:
        return f"OVERDUE by {_days(item['days_overdue'])}"
    if item["days_until_due"] == 0:
        return "due today"
    return f"due in {_days(item['days_until_due'])}"


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _day(value: dt.date | None) -> str:
    return value.isoformat() if value else "-"


def init_app(app: Flask) -> None:
    app.cli.add_command(reviews_cli)
