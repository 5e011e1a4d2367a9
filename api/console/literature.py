"""Literature in the console: upload a reference file, the screening queue across treatments
(include by completing a study's facts, exclude with a coded reason) and a treatment's PRISMA flow.

The same functions as the API: `api.literature.service.import_references` (the import endpoint's
multipart upload), `api.literature.screening` (queue, exclusion, counts) and, to include a record,
the study edit page (`api.treatments.service.update_study`).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from api.console import forms
from api.console.blueprint import STAFF_ONLY, blp, current_actor, staff
from api.context import current_rules
from api.db import get_session
from api.errors import DomainError, PreconditionFailed
from api.literature import screening, service
from api.literature.schemas import FORMATS, ExclusionSchema
from api.readcache import uncacheable
from api.treatments import views
from api.treatments.models import Treatment
from api.treatments.vocabulary import ExclusionReason, Screening

QUEUE_LIMIT = 100
STATES = {"screening": Screening.SCREENING, "excluded": Screening.EXCLUDED, "accepted": Screening.ACCEPTED}


@blp.route("/screening")
@uncacheable(STAFF_ONLY)
@staff("editor")
def screening_queue() -> Any:
    """The records waiting (or excluded, or included), across treatments or for one."""
    return _queue()


def _queue(status: int = 200, **state: Any) -> Any:
    session = get_session()
    session.rollback()
    args = request.args
    slug = args.get("treatment", "").strip()[:64] or None
    chosen_state = args.get("state") if args.get("state") in STATES else "screening"
    after = args.get("after", "")
    treatments = session.execute(select(Treatment.slug, Treatment.name).order_by(Treatment.name)).all()
    if slug is not None and slug not in {t.slug for t in treatments}:
        slug = None
    page = screening.screening_queue(
        session, treatment=slug, state=STATES[chosen_state],
        after=int(after) if after.isdigit() and len(after) < 10 else None, limit=QUEUE_LIMIT,
    )  # fmt: skip
    context = {
        "items": page["items"],
        "next_after": page["next_after"],
        "chosen": {"treatment": slug or "", "state": chosen_state},
        "treatments": treatments,
        "reasons": list(ExclusionReason),
        "formats": FORMATS,
        "entry_etag": views.entry_etag,
        "errors": {},
        "failed": None,
        "exclusion": {},
        "upload_slug": slug or "",
    } | state
    return render_template("console/screening.html", **context), status


@blp.route("/treatments/<slug>/studies/<int(max=2147483647):study_id>/exclude", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("editor")
def exclude_study(slug: str, study_id: int) -> Any:
    """Exclude a record with a coded reason (a note for `other`), through the API's schema."""
    form = request.form
    session = get_session()
    try:
        data = forms.load(
            ExclusionSchema(), {"reason": form.get("reason") or None, "note": forms.text(form, "note")}
        )
        study = screening.exclude_study(
            session, slug, study_id, ExclusionReason(data["reason"]), data["note"], form.get("etag", ""),
            current_actor(), current_rules(),
        )  # fmt: skip
    except PreconditionFailed:
        session.rollback()
        flash(
            "Not excluded: someone changed this record after you opened the page. It is shown as it is now."
        )
        return redirect(_back())
    except (ma.ValidationError, DomainError) as error:
        session.rollback()
        status = error.status if isinstance(error, DomainError) else 422
        return _queue(status, errors=forms.errors_by_field(error), failed=study_id, exclusion=dict(form))
    flash(f"Excluded ({ExclusionReason(study.exclusion_reason).value.replace('_', ' ')}): {study.title}")
    return redirect(_back())


def _back() -> str:
    """Back to the queue as it was filtered (only our own query string)."""
    query = {k: request.form[k] for k in ("treatment", "state") if request.form.get(k)}
    return url_for("console.screening_queue", **query)


@blp.route("/screening/import", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("editor")
def import_file() -> Any:
    """Upload a RIS, MEDLINE or CSL-JSON file for a treatment: the import endpoint's multipart
    form, the same service. Shows what was imported and what was a duplicate."""
    slug = request.form.get("treatment", "").strip()
    upload = request.files.get("file")
    fmt = request.form.get("format") or None
    if fmt is not None and fmt not in FORMATS:
        fmt = None
    session = get_session()
    if not slug:
        return _queue(422, errors={"treatment": ["Choose the treatment the file is for."]}, upload_slug=slug)
    if upload is None or not upload.filename:
        return _queue(422, errors={"file": ["Choose a file to upload."]}, upload_slug=slug)
    try:
        result = service.import_references(
            session, slug, upload.read(), fmt, upload.mimetype or None, current_actor(), current_rules(),
            current_app.config["IMPORT_MAX_RECORDS"], filename=upload.filename,
        )  # fmt: skip
    except DomainError as error:
        session.rollback()
        messages = forms.errors_by_field(error)
        details = [
            f"record {e['record']}, line {e['line']}: {e['message']}" if e.get("record") else e["message"]
            for e in error.extra.get("errors") or []
        ]
        return _queue(
            error.status,
            errors={"file": details or [m for ms in messages.values() for m in ms]},
            upload_slug=slug,
        )
    treatment = views.find_treatment(session, slug)
    return render_template("console/import_result.html", t=treatment, result=result)
