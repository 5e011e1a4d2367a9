"""Treatments in the console: the list, a treatment's page, and its forms.

Each form goes through the API's own schema and service (`api.console.forms`); the console adds
only what a browser needs: it sends the ETag it showed as `If-Match` itself, and when someone
else changed the record meanwhile it shows what changed and keeps the person's draft.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from api.booking.rules import bookability
from api.console import forms
from api.console.blueprint import STAFF_ONLY, blp, can, current_actor, staff
from api.console.explain import design_words, evidence_notes, evidence_steps
from api.context import current_rules
from api.db import get_session, utcnow
from api.errors import DomainError, Forbidden, PreconditionFailed
from api.literature import screening
from api.literature.schemas import FORMATS
from api.pagination import decode_cursor
from api.readcache import uncacheable
from api.reviews import service as reviews
from api.reviews.schemas import ReviewCreateSchema
from api.treatments import decisions, service, views
from api.treatments.decisions import PolicyGateRefused
from api.treatments.models import Treatment
from api.treatments.schemas import (
    DecisionCreateSchema,
    RegulatoryStatusPatchSchema,
    RegulatoryStatusSchema,
    StudyPatchSchema,
    StudySchema,
    TreatmentCreateSchema,
    TreatmentPatchSchema,
)
from api.treatments.vocabulary import (
    EvidenceLevel,
    PooledDesigns,
    RegulatoryStatusCode,
    RiskOfBias,
    Screening,
    Sponsorship,
    Status,
    StudyDesign,
)

CONTENT = ("name", "aliases", "category", "summary", "explanation")
PER_PAGE = 200  # a clinic's catalogue is tens of treatments; beyond this, the filters narrow it
SCAN_LIMIT = 2000  # treatments read at most for one list filtered by evidence level
REVIEW_WINDOWS = {"overdue": 0, "30": 30, "90": 90}
CHOICES = {
    "statuses": list(Status),
    "levels": list(EvidenceLevel),
    "designs": list(StudyDesign),
    "sponsorships": list(Sponsorship),
    "risks": list(RiskOfBias),
    "pooled": list(PooledDesigns),
    "regulatory_statuses": list(RegulatoryStatusCode),
    "screenings": list(Screening),
}


# --- the list ---------------------------------------------------------------------------------


@blp.route("/treatments")
@uncacheable(STAFF_ONLY)
@staff("editor")
def treatments() -> Any:
    """Search and filters: status, category, evidence level, review due. Ordered by name."""
    args = request.args
    status = args.get("status") if args.get("status") in set(Status) else None
    level = args.get("level") if args.get("level") in set(EvidenceLevel) else None
    category = args.get("category", "").strip()[:64] or None
    q = args.get("q", "").strip()[:200] or None
    review = args.get("review") if args.get("review") in REVIEW_WINDOWS else None
    due_by = utcnow().date() + dt.timedelta(days=REVIEW_WINDOWS[review]) if review else None
    if review == "overdue":
        due_by = utcnow().date() - dt.timedelta(days=1)
    session, rules = get_session(), current_rules()
    items, cursor, scanned, exhausted = [], None, 0, False
    while len(items) <= PER_PAGE and scanned < SCAN_LIMIT:
        page = views.list_treatments(
            session,
            views.TreatmentFilters(
                status=Status(status) if status else None,
                category=category,
                q=q,
                review_due_by=due_by,
                per_page=100,
                cursor=cursor,
            ),
            rules,
        )
        scanned += len(page["items"])
        items += [i for i in page["items"] if level is None or i["evidence"]["level"] == level]
        if not page["next_cursor"]:
            exhausted = True
            break
        cursor = decode_cursor(page["next_cursor"])
    categories = session.scalars(select(Treatment.category).distinct().order_by(Treatment.category)).all()
    chosen = {
        "status": status or "",
        "level": level or "",
        "category": category or "",
        "q": q or "",
        "review": review or "",
    }
    return render_template(
        "console/treatments.html",
        items=items[:PER_PAGE],
        more=len(items) > PER_PAGE or not exhausted,
        chosen=chosen,
        categories=categories,
        today=utcnow().date(),
        **CHOICES,
    )


# --- a treatment ------------------------------------------------------------------------------


@blp.route("/treatments/new", methods=["GET", "POST"])
@uncacheable(STAFF_ONLY)
@staff("editor")
def new_treatment() -> Any:
    form = forms.pick(request.form, ("slug", "name", "category", "summary"))
    if request.method == "GET":
        return render_template("console/new_treatment.html", form=form, errors={})
    values = {name: forms.text(request.form, name) for name in ("slug", "name", "category", "summary")}
    try:
        data = forms.load(TreatmentCreateSchema(), values)
        treatment = service.create_treatment(get_session(), data, current_actor(), current_rules())
    except (ma.ValidationError, DomainError) as error:
        status = error.status if isinstance(error, DomainError) else 422
        return render_template(
            "console/new_treatment.html", form=form, errors=forms.errors_by_field(error)
        ), status
    flash(f"{treatment.name} added, under review.")
    return redirect(url_for("console.treatment", slug=treatment.slug))


@blp.route("/treatments/<slug>")
@uncacheable(STAFF_ONLY)
@staff("editor")
def treatment(slug: str) -> Any:
    return _page(slug)


def _page(slug: str, status: int = 200, **state: Any) -> Any:
    """The treatment's page; `state` carries a form shown again (its draft, errors, a conflict)."""
    session, rules = get_session(), current_rules()
    session.rollback()  # a refused write leaves nothing behind; read what is stored now
    found = views.find_treatment(session, slug)
    detail = views.detail_view(session, found, rules)
    evidence = views.evidence_for(found, rules)
    booking = bookability(found.status, found.suspended_at is not None)
    content = state.pop("content", None) or _content_form(found)
    context = (
        {
            "t": found,
            "detail": detail,
            "evidence": evidence,
            "rules": rules,
            "steps": evidence_steps(evidence, rules.thresholds),
            "notes": evidence_notes(evidence),
            "gate": views.gate_status(session, slug, rules),
            "booking": booking,
            "studies": sorted(found.studies, key=lambda s: s.id),
            "regulatory": sorted(found.regulatory, key=lambda r: r.id),
            "decisions": list(found.decisions)[::-1],
            "reviews": reviews.list_reviews(session, slug)[::-1],
            "audit": views.treatment_audit(session, slug, limit=100)[::-1],
            "prisma": screening.prisma_counts(session, slug),
            "import_formats": FORMATS,
            "etag": views.treatment_etag(found, rules),
            "entry_etag": views.entry_etag,
            "content": content,
            "current_content": _content_form(found),
            "errors": {},
            "decision_form": {"status": "", "reason": "", "reason_codes": "", "override_justification": ""},
            "study_form": {},
            "regulatory_form": {},
            "review_form": {},
            "check": None,
        }
        | CHOICES
        | state
    )
    return render_template("console/treatment.html", **context), status


def _content_form(treatment: Treatment) -> dict[str, str]:
    return {
        "name": treatment.name,
        "aliases": "\n".join(treatment.aliases),
        "category": treatment.category,
        "summary": treatment.summary,
        "explanation": treatment.explanation,
    }


@blp.route("/treatments/<slug>/content", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("editor")
def edit_content(slug: str) -> Any:
    """Save content with `If-Match`: the ETag the form was shown with. When someone saved in
    between, the page shows their changes beside the person's draft, which it keeps."""
    draft = forms.pick(request.form, CONTENT)
    values = {
        "name": forms.text(request.form, "name"),
        "aliases": forms.lines(request.form, "aliases"),
        "category": forms.text(request.form, "category"),
        "summary": forms.text(request.form, "summary"),
        "explanation": request.form.get("explanation", "").replace("\r\n", "\n"),
    }
    session = get_session()
    try:
        data = forms.load(TreatmentPatchSchema(), values)
        service.update_treatment(
            session, slug, data, request.form.get("etag", ""), current_actor(), current_rules()
        )
    except (PreconditionFailed, StaleDataError):
        session.rollback()
        current = _content_form(views.find_treatment(session, slug))
        changed = _changes(_original(request.form.get("original", "")), current, draft)
        return _page(slug, 409, content=draft, conflict=changed, anchor="content")
    except (ma.ValidationError, DomainError) as error:
        status = error.status if isinstance(error, DomainError) else 422
        return _page(
            slug,
            status,
            content=draft,
            errors={"content": forms.errors_by_field(error)},
            original=request.form.get("original"),
            form_etag=request.form.get("etag"),
        )
    flash("Content saved.")
    return redirect(url_for("console.treatment", slug=slug) + "#content")


def _original(raw: str, fields: Any = CONTENT) -> dict[str, str]:
    """The values a form started from (a hidden field): what the person saw before they edited."""
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return {k: str(v) for k, v in value.items() if k in fields} if isinstance(value, dict) else {}


# --- studies and regulatory entries -----------------------------------------------------------


STUDY_TEXT = ("title", "authors", "journal", "doi", "pmid", "url", "outcome_summary", "risk_of_bias_note")
STUDY_CHOICE = ("design", "sponsorship", "risk_of_bias", "pooled_designs")
STUDY_NUMBERS = ("year", "participants", "follow_up_months", "pooled_studies")
STUDY_FLAGS = ("randomised", "controlled", "blinded", "peer_reviewed")


def _study_values(form: Any, *, blank_design: bool = False) -> dict[str, Any]:
    """A study form as the API's study schema takes it."""
    values: dict[str, Any] = {name: forms.text(form, name, null=True) for name in STUDY_TEXT}
    values |= {name: form.get(name) or None for name in STUDY_CHOICE}
    values |= {name: forms.number(form, name) for name in STUDY_NUMBERS}
    values |= {name: forms.checkbox(form, name) for name in STUDY_FLAGS}
    values["outcome_summary"] = values["outcome_summary"] or ""
    for name in ("sponsorship", "risk_of_bias"):
        if values[name] is None:
            del values[name]  # the schema's default
    if form.get("screening"):
        values["screening"] = form["screening"]
    return values


def _study_form(study: Any) -> dict[str, str]:
    """A stored study as its edit form shows it (text, as a browser sends it back)."""
    out: dict[str, str] = {}
    for name in (*STUDY_TEXT, *STUDY_CHOICE, *STUDY_NUMBERS, "screening"):
        value = getattr(study, name)
        value = getattr(value, "value", value)
        if name == "follow_up_months" and value is not None:
            value = f"{float(value):g}"
        out[name] = "" if value is None else str(value)
    out |= {name: "on" if getattr(study, name) else "" for name in STUDY_FLAGS}
    return out


@blp.route("/treatments/<slug>/studies", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("editor")
def add_study(slug: str) -> Any:
    form = request.form
    try:
        data = forms.load(StudySchema(), _study_values(form))
        study = service.add_study(get_session(), slug, data, current_actor(), current_rules())
    except (ma.ValidationError, DomainError) as error:
        status = error.status if isinstance(error, DomainError) else 422
        return _page(
            slug,
            status,
            study_form=dict(form),
            errors={"study": forms.errors_by_field(error)},
            anchor="studies",
        )
    flash(f"Study added: {study.title}.")
    return redirect(url_for("console.treatment", slug=slug) + "#evidence")


@blp.route("/treatments/<slug>/studies/<int(max=2147483647):study_id>", methods=["GET", "POST"])
@uncacheable(STAFF_ONLY)
@staff("editor")
def edit_study(slug: str, study_id: int) -> Any:
    """Edit a study (and accept one in screening) with `If-Match`, as content is edited: on a
    conflict the page shows what changed and keeps the draft."""
    session = get_session()
    study = views.find_study(session, slug, study_id)
    page = {"t": study.treatment, "study": study, "errors": {}, "conflict": None} | CHOICES
    including = request.values.get("include") == "1"  # from the screening queue: complete, then accept
    page["including"] = including
    if request.method == "GET":
        current = _study_form(study)
        return render_template(
            "console/study.html",
            form=current | ({"screening": Screening.ACCEPTED.value} if including else {}),
            original=json.dumps(current),
            etag=views.entry_etag(study),
            **page,
        )
    draft = {name: request.form.get(name, "") for name in _study_form(study)}

    def save() -> None:
        data = forms.load(StudyPatchSchema(), _study_values(request.form))
        service.update_study(
            session, slug, study_id, data, request.form.get("etag", ""), current_actor(), current_rules()
        )

    reload = lambda: views.find_study(session, slug, study_id)  # noqa: E731
    refused = _save_with_if_match("console/study.html", page, "study", save, reload, _study_form, draft)
    if refused is not None:
        return refused
    level = views.evidence_for(views.find_treatment(session, slug), current_rules()).level
    flash(f"Study saved. {study.treatment.name}: evidence {level.value.replace('_', ' ')}.")
    if including:
        return redirect(url_for("console.screening_queue"))
    return redirect(url_for("console.treatment", slug=slug) + "#evidence")


@blp.route("/treatments/<slug>/studies/<int(max=2147483647):study_id>/delete", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("editor")
def delete_study(slug: str, study_id: int) -> Any:
    return _delete(slug, "study", study_id)


REGULATORY_TEXT = ("regulator", "pathway", "product", "indication", "reference", "source_url")


@blp.route("/treatments/<slug>/regulatory", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("editor")
def add_regulatory(slug: str) -> Any:
    form = request.form
    values = _regulatory_values(form)
    try:
        data = forms.load(RegulatoryStatusSchema(), values)
        entry = service.add_regulatory(get_session(), slug, data, current_actor(), current_rules())
    except (ma.ValidationError, DomainError) as error:
        status = error.status if isinstance(error, DomainError) else 422
        return _page(
            slug,
            status,
            regulatory_form=dict(form),
            errors={"regulatory": forms.errors_by_field(error)},
            anchor="regulatory",
        )
    flash(f"Regulatory entry added: {entry.regulator} {entry.status}.")
    return redirect(url_for("console.treatment", slug=slug) + "#regulatory")


REGULATORY_FORM = (*REGULATORY_TEXT, "status", "decided_on", "verified_on")


def _regulatory_form(entry: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in REGULATORY_FORM:
        value = getattr(entry, name)
        value = getattr(value, "value", value)
        out[name] = "" if value is None else str(value)
    return out


def _regulatory_values(form: Any) -> dict[str, Any]:
    values: dict[str, Any] = {name: forms.text(form, name, null=True) for name in REGULATORY_TEXT}
    values["regulator"] = (values["regulator"] or "").upper() or None
    values["status"] = form.get("status") or None
    values |= {name: form.get(name) or None for name in ("decided_on", "verified_on")}
    return values


@blp.route("/treatments/<slug>/regulatory/<int(max=2147483647):entry_id>", methods=["GET", "POST"])
@uncacheable(STAFF_ONLY)
@staff("editor")
def edit_regulatory(slug: str, entry_id: int) -> Any:
    """Edit a regulatory entry with `If-Match`, as studies are edited."""
    session = get_session()
    entry = views.find_regulatory(session, slug, entry_id)
    page = {"t": entry.treatment, "entry": entry, "errors": {}, "conflict": None} | CHOICES
    if request.method == "GET":
        current = _regulatory_form(entry)
        return render_template(
            "console/regulatory.html",
            form=current,
            original=json.dumps(current),
            etag=views.entry_etag(entry),
            **page,
        )
    draft = {name: request.form.get(name, "") for name in REGULATORY_FORM}

    def save() -> None:
        data = forms.load(RegulatoryStatusPatchSchema(), _regulatory_values(request.form))
        service.update_regulatory(
            session, slug, entry_id, data, request.form.get("etag", ""), current_actor(), current_rules()
        )

    reload = lambda: views.find_regulatory(session, slug, entry_id)  # noqa: E731
    refused = _save_with_if_match(
        "console/regulatory.html", page, "entry", save, reload, _regulatory_form, draft
    )
    if refused is not None:
        return refused
    flash("Regulatory entry saved.")
    return redirect(url_for("console.treatment", slug=slug) + "#regulatory")


def _save_with_if_match(
    template: str, page: dict[str, Any], name: str, save: Callable[[], None], reload: Callable[[], Any],
    to_form: Callable[[Any], dict[str, str]], draft: dict[str, str],
) -> Any | None:  # fmt: skip
    """Run `save` (a write carrying the form's If-Match). None when it went through; else the page
    to answer: on a conflict what someone else changed, with the draft kept (409), never a bare
    412; on a refusal the draft with its errors (422, or the problem's status)."""
    session = get_session()
    try:
        save()
        return None
    except (PreconditionFailed, StaleDataError):
        session.rollback()
        entry = reload()
        current = to_form(entry)
        page["conflict"] = _changes(_original(request.form.get("original", ""), current), current, draft)
        answer = render_template(
            template,
            form=draft,
            original=json.dumps(current),
            etag=views.entry_etag(entry),
            **page | {name: entry},
        )
        return answer, 409
    except (ma.ValidationError, DomainError) as error:
        session.rollback()
        page["errors"] = forms.errors_by_field(error)
        status = error.status if isinstance(error, DomainError) else 422
        return render_template(template, form=draft, original=request.form.get("original", ""),
                               etag=request.form.get("etag", ""), **page), status  # fmt: skip


def _changes(started: dict[str, str], current: dict[str, str], draft: dict[str, str]) -> list[dict[str, str]]:
    """What someone else changed since the form was shown: was (what the person saw), now, theirs."""
    return [
        {"field": name, "was": started.get(name, ""), "now": current[name], "yours": draft.get(name, "")}
        for name in current
        if started.get(name) != current[name]
    ]


@blp.route("/treatments/<slug>/regulatory/<int(max=2147483647):entry_id>/delete", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("editor")
def delete_regulatory(slug: str, entry_id: int) -> Any:
    return _delete(slug, "regulatory", entry_id)


def _delete(slug: str, kind: str, entry_id: int) -> Any:
    """Delete with `If-Match`: an entry changed since the page showed it is kept, and the page
    says so (showing it as it is now)."""
    remove = service.delete_study if kind == "study" else service.delete_regulatory
    session = get_session()
    try:
        remove(session, slug, entry_id, request.form.get("etag", ""), current_actor(), current_rules())
    except (PreconditionFailed, StaleDataError):
        session.rollback()
        flash(
            "Not deleted: someone changed this entry after you opened the page. It is shown as it is "
            "now; delete it again if you still mean to."
        )
        return redirect(
            url_for("console.treatment", slug=slug) + ("#studies" if kind == "study" else "#regulatory")
        )
    flash("Study deleted." if kind == "study" else "Regulatory entry deleted.")
    return redirect(
        url_for("console.treatment", slug=slug) + ("#evidence" if kind == "study" else "#regulatory")
    )


# --- decisions and reviews --------------------------------------------------------------------


def _decision_values() -> dict[str, Any]:
    form = request.form
    values: dict[str, Any] = {
        "status": form.get("status") or None,
        "reason_codes": [c.strip() for c in form.get("reason_codes", "").split(",") if c.strip()],
    }
    if reason := forms.text(form, "reason", null=True):
        values["reason"] = reason
    if can("admin") and forms.checkbox(form, "override"):
        values["override_justification"] = forms.text(form, "override_justification", null=True) or ""
    return values


def _check(slug: str) -> dict[str, Any]:
    """The dry run of the decision in the form: what the gate says before it is sent."""
    values = _decision_values()
    status = values.get("status")
    if status not in set(Status):
        return {"state": "incomplete", "message": "Choose the new status."}
    values.setdefault("reason", "(the public reason)")  # not written yet: the gate does not read it
    try:
        data = forms.load(DecisionCreateSchema(), values)
        preview = decisions.check_decision(get_session(), slug, data, current_actor(), current_rules())
    except PolicyGateRefused as refused:
        return {"state": "refused", "unmet": refused.extra["unmet"], "status": status}
    except Forbidden as error:
        return {"state": "forbidden", "message": error.detail, "status": status}
    except (ma.ValidationError, DomainError) as error:
        messages = forms.errors_by_field(error)
        return {
            "state": "invalid",
            "message": " ".join(m for ms in messages.values() for m in ms),
            "status": status,
        }
    return {"state": "passes", "preview": preview, "status": status}


@blp.route("/treatments/<slug>/decisions/check", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("reviewer")
def check_decision(slug: str) -> Any:
    """The gate panel for the decision form (a fragment for the script; a page without it)."""
    check = _check(slug)
    if request.headers.get("X-Requested-With") == "fetch":
        return render_template("console/_gate_check.html", check=check, can=can)
    return _page(
        slug,
        decision_form=forms.pick(
            request.form, ("status", "reason", "reason_codes", "override_justification", "override")
        ),
        check=check,
        anchor="decide",
    )


@blp.route("/treatments/<slug>/decisions", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("reviewer")
def record_decision(slug: str) -> Any:
    draft = forms.pick(
        request.form, ("status", "reason", "reason_codes", "override_justification", "override")
    )
    try:
        data = forms.load(DecisionCreateSchema(), _decision_values())
        decision = decisions.record_decision(get_session(), slug, data, current_actor(), current_rules())
    except PolicyGateRefused:
        return _page(slug, 409, decision_form=draft, check=_check(slug), anchor="decide")
    except (ma.ValidationError, DomainError) as error:
        status = error.status if isinstance(error, DomainError) else 422
        return _page(
            slug,
            status,
            decision_form=draft,
            errors={"decision": forms.errors_by_field(error)},
            check=_check(slug),
            anchor="decide",
        )
    flash(f"Decision recorded: {decision.status.value.replace('_', ' ')}.")
    return redirect(url_for("console.treatment", slug=slug) + "#decisions")


@blp.route("/treatments/<slug>/reviews", methods=["POST"])
@uncacheable(STAFF_ONLY)
@staff("reviewer")
def record_review(slug: str) -> Any:
    draft = forms.pick(request.form, ("note",))
    try:
        data = forms.load(ReviewCreateSchema(), {"note": forms.text(request.form, "note")})
        reviews.record_review(get_session(), slug, data["note"], current_actor(), current_rules())
    except (ma.ValidationError, DomainError) as error:
        status = error.status if isinstance(error, DomainError) else 422
        return _page(
            slug, status, review_form=draft, errors={"review": forms.errors_by_field(error)}, anchor="review"
        )
    flash("Review recorded; the next one is scheduled.")
    return redirect(url_for("console.treatment", slug=slug) + "#reviews")


@blp.app_template_filter("words")
def _words(value: Any) -> str:
    """A vocabulary code in words: `under_review` → `under review`."""
    if value is None:
        return ""
    return str(getattr(value, "value", value)).replace("_", " ")


@blp.app_template_filter("design")
def _design(value: Any) -> str:
    return design_words(str(getattr(value, "value", value)))


@blp.app_template_filter("tojson_attr")
def _tojson_attr(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
