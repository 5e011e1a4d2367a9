"""What the public pages, the feed and the sitemap show, read from the treatments' own views.

Reads only. The treatment's data comes from `api.treatments.views` (the API's detail and list
views), its JSON-LD from `api.treatments.jsonld`, its position from the booking rule (through
`wording.position`), its evidence from the derived summary: nothing is decided twice here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.audit.service import SEED_ACTOR
from api.pagination import decode_cursor
from api.reviews.models import Review
from api.reviews.service import list_reviews
from api.treatments import views
from api.treatments.jsonld import treatment_jsonld
from api.treatments.models import Decision, Treatment
from api.treatments.settings import RuleSettings
from api.website import wording
from api.website.urls import PublicUrls

FEED_ENTRIES = 50  # the newest decisions in the feed
PAGE_SIZE = 100  # the list view's largest page


def all_summaries(session: Session, rules: RuleSettings) -> Iterator[dict[str, Any]]:
    """Every treatment's summary view, by name, through the list's own keyset pages."""
    filters = views.TreatmentFilters(per_page=PAGE_SIZE)
    while True:
        page = views.list_treatments(session, filters, rules)
        yield from page["items"]
        if not page["next_cursor"]:
            return
        filters = views.TreatmentFilters(per_page=PAGE_SIZE, cursor=decode_cursor(page["next_cursor"]))


def illustrative_slugs(session: Session) -> set[str]:
    """Treatments whose position is still only the illustrative seed's: no person has decided on
    or reviewed them (README "The seed catalogue")."""
    by_seed = (Decision.decided_by == SEED_ACTOR.name) & (Decision.decided_by_role == SEED_ACTOR.role)
    decided_by_a_person = select(Decision.treatment_id).where(~by_seed)
    seeded = select(Decision.treatment_id).where(by_seed)
    query = select(Treatment.slug).where(
        Treatment.last_reviewed_on.is_(None),
        Treatment.id.in_(seeded),
        Treatment.id.not_in(decided_by_a_person),
    )
    return set(session.scalars(query))


def _item(summary: dict[str, Any], urls: PublicUrls) -> dict[str, Any]:
    suspended = summary["status"] == "approved" and not summary["bookable"]
    return {
        "slug": summary["slug"],
        "name": summary["name"],
        "summary": summary["summary"],
        "position": wording.position(summary["status"], suspended),
        "reason": summary["status_reason"],
        "level": wording.level_words(summary["evidence"]["level"])[0],
        "url": urls.treatment(summary["slug"]),
    }


def index_page(session: Session, rules: RuleSettings, urls: PublicUrls, clinic: str) -> dict[str, Any]:
    """Every treatment, grouped as offered, under review and not offered, each with its reason."""
    items = [_item(summary, urls) for summary in all_summaries(session, rules)]
    groups = [
        {"key": key, "title": title, "items": [i for i in items if i["position"].group == key]}
        for key, title in wording.GROUPS.items()
    ]
    illustrative = illustrative_slugs(session)
    jsonld = {
        "@context": "https://schema.org",
        "@type": "CollectionPage",
        "url": urls.home(),
        "name": f"{clinic}: which treatments we offer, and why",
        "publisher": {"@type": "MedicalClinic", "name": clinic},
        "mainEntity": {
            "@type": "ItemList",
            "numberOfItems": len(items),
            "itemListElement": [
                {"@type": "ListItem", "position": n, "url": item["url"], "name": item["name"]}
                for n, item in enumerate(items, start=1)
            ],
        },
    }
    return {"groups": groups, "count": len(items), "illustrative": bool(illustrative), "jsonld": jsonld}


def treatment_page(
    session: Session, slug: str, rules: RuleSettings, urls: PublicUrls, clinic: str
) -> dict[str, Any]:
    """One treatment's position, its reasons, evidence, regulatory facts and history."""
    treatment = views.find_treatment(session, slug)
    detail = views.detail_view(session, treatment, rules)
    studies = views.counted_studies(treatment)
    evidence = detail["evidence"]
    level, level_meaning = wording.level_words(evidence["level"])
    reviews = list_reviews(session, slug)
    history = [
        {"date": d.decided_at, "kind": "Decision", "label": wording.position(d.status).label,
         "text": d.reason, "override": d.override_justification}
        for d in treatment.decisions
    ] + [
        {"date": r.reviewed_at, "kind": "Review", "label": "Position confirmed", "text": r.note,
         "override": None}
        for r in reviews
    ]  # fmt: skip
    history.sort(key=lambda entry: _aware(entry["date"]), reverse=True)
    return {
        "slug": slug,
        "name": treatment.name,
        "aliases": treatment.aliases,
        "summary": treatment.summary,
        "explanation_html": treatment.explanation_html,
        "position": wording.position(treatment.status, treatment.suspended_at is not None),
        "reason": treatment.status_reason,
        "evidence": {
            "level": level,
            "meaning": level_meaning,
            "studies": wording.studies_words(evidence),
            "missing": [wording.concern_words(c, rules.thresholds) for c in evidence["concerns"]],
        },
        "studies": [_study(s) for s in studies],
        "regulatory": [_regulatory(entry) for entry in treatment.regulatory],
        "safety": treatment.safety,
        "requirements": treatment.booking_requirements,
        "history": history,
        "last_reviewed_on": treatment.last_reviewed_on,
        "next_review_due": treatment.next_review_due,
        "illustrative": slug in illustrative_slugs(session),
        "url": urls.treatment(slug),
        "jsonld": treatment_jsonld(detail | {"studies": studies}, clinic, urls.treatment(slug)),
    }


def _study(study: Any) -> dict[str, Any]:
    link = (f"https://doi.org/{study.doi}" if study.doi
            else f"https://pubmed.ncbi.nlm.nih.gov/{study.pmid}/" if study.pmid else study.url)  # fmt: skip
    facts = [wording.design_words(study.design)]
    if study.participants is not None:
        facts.append(wording.plural(study.participants, "participant"))
    if study.follow_up_months:
        facts.append(f"followed up for {wording.months(float(study.follow_up_months))}")
    if not study.peer_reviewed:
        facts.append("not peer-reviewed")
    citation = ", ".join(str(part) for part in (study.journal, study.year) if part)
    return {"title": study.title, "facts": "; ".join(facts), "citation": citation, "link": link,
            "outcome": study.outcome_summary}  # fmt: skip


def _regulatory(entry: Any) -> dict[str, Any]:
    return {
        "regulator": wording.regulator_words(entry.regulator),
        "status": wording.regulatory_status_words(str(entry.status)),
        "product": entry.product,
        "indication": entry.indication,
        "reference": entry.reference,
        "pathway": entry.pathway,
        "decided_on": entry.decided_on,
        "verified_on": entry.verified_on,
        "source_url": entry.source_url,
    }


def feed_entries(session: Session, urls: PublicUrls, limit: int = FEED_ENTRIES) -> list[dict[str, Any]]:
    """The newest decisions, newest first, each with a `tag:` id that never changes (RFC 4151):
    the base URL's host, the day of the decision and its id."""
    rows = session.execute(
        select(Decision, Treatment.slug, Treatment.name)
        .join(Treatment, Treatment.id == Decision.treatment_id)
        .order_by(Decision.decided_at.desc(), Decision.id.desc())
        .limit(limit)
    ).all()
    entries = []
    for decision, slug, name in rows:
        decided_at = _aware(decision.decided_at)
        label = wording.position(decision.status).label
        entries.append({
            "id": f"tag:{urls.authority},{decided_at.date().isoformat()}:decisions/{decision.id}",
            "title": f"{name}: {label}",
            "status": label,
            "reason": decision.reason,
            "override": decision.override_justification,
            "updated": decided_at,
            "url": urls.treatment(slug),
            "name": name,
        })  # fmt: skip
    return entries


def sitemap_entries(session: Session, urls: PublicUrls) -> list[dict[str, Any]]:
    """Every page with its `lastmod`: the page's last decision or review (the index: the newest)."""
    decided = {
        id_: at
        for id_, at in session.execute(
            select(Decision.treatment_id, func.max(Decision.decided_at)).group_by(Decision.treatment_id)
        )
    }
    reviewed = {
        id_: at
        for id_, at in session.execute(
            select(Review.treatment_id, func.max(Review.reviewed_at)).group_by(Review.treatment_id)
        )
    }
    pages = []
    for id_, slug in session.execute(select(Treatment.id, Treatment.slug).order_by(Treatment.slug)).all():
        moments = [_aware(m) for m in (decided.get(id_), reviewed.get(id_)) if m is not None]
        pages.append({"url": urls.treatment(slug), "lastmod": max(moments) if moments else None})
    newest = [p["lastmod"] for p in pages if p["lastmod"] is not None]
    return [{"url": urls.home(), "lastmod": max(newest) if newest else None}, *pages]


def newest_decision_at(entries: list[dict[str, Any]]) -> dt.datetime | None:
    return entries[0]["updated"] if entries else None


def _aware(moment: Any) -> dt.datetime:
    """A UTC datetime from the database (SQLite aggregates come back as naive or as text)."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
