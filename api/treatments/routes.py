"""Treatment resources: parse, call the service, respond"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from api.api_keys.auth import current_actor
from api.context import current_rules
from api.db import get_session
from api.http import (
    ETAG_HEADER,
    IF_MATCH_PARAMETER,
    if_match,
    json_response,
)
from api.readcache import cacheable, http_date, negotiate, uncacheable
from api.smorest import Blueprint, link
from api.treatments import decisions, service, views
from api.treatments.jsonld import treatment_jsonld
from api.treatments.schemas import (
    AuditQueryArgsSchema,
    AuditRecordSchema,
    DecisionCreateSchema,
    DecisionPreviewSchema,
    DecisionQueryArgsSchema,
    DecisionSchema,
    JsonLdSchema,
    RegulatoryStatusCreateSchema,
    RegulatoryStatusPatchSchema,
    RegulatoryStatusSchema,
    StudyCreateSchema,
    StudyPatchSchema,
    StudySchema,
    TreatmentCreateSchema,
    TreatmentGateSchema,
    TreatmentPageSchema,
    TreatmentPatchSchema,
    TreatmentQueryArgsSchema,
    TreatmentSchema,
)
from api.website.urls import public_urls

blp = Blueprint(
    "treatments",
    __name__,
    url_prefix="/v1/treatments",
    description="The clinic's treatments: status, evidence, regulatory facts and decisions.",
)

OPTIONAL_IF_MATCH = IF_MATCH_PARAMETER | {"required": False}
IF_NONE_MATCH = {
    "in": "header",
    "name": "If-None-Match",
    "required": False,
    "schema": {"type": "string"},
}

# OpenAPI links: how an answer's values feed the next request (create → get → patch → decide).
# Clients and the stateful contract fuzzing follow them.
TREATMENT = "/v1/treatments/{slug}"
STUDY, REGULATORY = TREATMENT + "/studies/{study_id}", TREATMENT + "/regulatory/{entry_id}"
CURRENT_ETAG = {"header.If-Match": "$response.header.ETag"}


def _treatment_links(slug: str) -> dict[str, Any]:
    at = {"slug": slug}
    return {
        "GetTreatment": link(TREATMENT, "get", at, "Read the treatment"),
        "UpdateTreatment": link(TREATMENT, "patch", at | CURRENT_ETAG, "Update it, with this ETag"),
        "RecordDecision": link(TREATMENT + "/decisions", "post", at, "Record a decision on it"),
        "ListDecisions": link(TREATMENT + "/decisions", "get", at, "Its decisions"),
        "AddStudy": link(TREATMENT + "/studies", "post", at, "Add a study to it"),
        "AddRegulatoryEntry": link(TREATMENT + "/regulatory", "post", at, "Add a regulatory entry to it"),
        "RecordReview": link(TREATMENT + "/reviews", "post", at, "Record a review of it"),
        "ListAudit": link(TREATMENT + "/audit", "get", at, "Its audit trail"),
    }


def _entry_links(path: str, id_name: str, what: str) -> dict[str, Any]:
    at = {"slug": "$request.path.slug", id_name: "$response.body#/id"}
    return {
        f"Get{what}": link(path, "get", at, f"Read the {what.lower()}"),
        f"Update{what}": link(path, "patch", at | CURRENT_ETAG, "Update it, with this ETag"),
        f"Delete{what}": link(path, "delete", at | CURRENT_ETAG, "Delete it, with this ETag"),
    }


CREATED_TREATMENT_LINKS = {201: {"links": _treatment_links("$response.body#/slug")}}
READ_TREATMENT_LINKS = {200: {"links": _treatment_links("$request.path.slug")}}
STUDY_LINKS = {201: {"links": _entry_links(STUDY, "study_id", "Study")}}
REGULATORY_LINKS = {201: {"links": _entry_links(REGULATORY, "entry_id", "RegulatoryEntry")}}


def _treatment_response(treatment: Any, status: int = 200) -> Response:
    session, rules = get_session(), current_rules()
    body = TreatmentSchema().dump(views.detail_view(session, treatment, rules))
    headers = {"Last-Modified": http_date(treatment.updated_at)}
    return json_response(body, status, etag=views.treatment_etag(treatment, rules), headers=headers)


def _entry_response(schema: Any, entry: Any, status: int = 200) -> Response:
    return json_response(schema.dump(entry), status, etag=views.entry_etag(entry))


@blp.route("")
class Treatments(MethodView):
    @cacheable
    @blp.arguments(TreatmentQueryArgsSchema, location="query")
    @blp.response(200, TreatmentPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """List treatments

        Filter by status, category, bookable, a case-insensitive search `q` over names and
        aliases, and `updated_since`. Ordered by name. `per_page` at most 100; pages by number
        (`page`, up to 10,000 items deep) or, at any depth and at the same cost, by following
        each page's `next_cursor` as `cursor` with the same filters.
        """
        filters = views.TreatmentFilters(**args)
        return views.list_treatments(get_session(), filters, current_rules())

    @blp.requires_role("editor")
    @blp.arguments(TreatmentCreateSchema)
    @blp.response(201, TreatmentSchema, headers=ETAG_HEADER)
    @blp.alt_response(409, response="CONFLICT")
    @blp.doc(responses=CREATED_TREATMENT_LINKS)
    def post(self, data: dict[str, Any]) -> Response:
        """Add a treatment

        A new treatment starts `under_review`; only a decision changes its status.
        """
        treatment = service.create_treatment(get_session(), data, current_actor(), current_rules())
        return _treatment_response(treatment, 201)


@blp.route("/<slug:slug>")
class TreatmentBySlug(MethodView):
    @blp.doc(parameters=[IF_NONE_MATCH])
    @blp.response(200, TreatmentSchema, headers=ETAG_HEADER)
    @blp.alt_response(
        200,
        success=True,
        description="schema.org MedicalWebPage, for `Accept: application/ld+json`",
        content_type="application/ld+json",
        schema=JsonLdSchema,
    )
    @cacheable
    @blp.alt_response(304, description="Not modified: your copy is current.")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(responses=READ_TREATMENT_LINKS)
    def get(self, slug: str) -> Response:
        """Get a treatment

        Send `If-None-Match` (or `If-Modified-Since`) with what you hold to get 304 when
        nothing changed. `Accept: application/ld+json` gives schema.org JSON-LD.
        """
        treatment = views.find_treatment(get_session(), slug)
        if negotiate() == "jsonld":
            session, rules = get_session(), current_rules()
            view = views.detail_view(session, treatment, rules) | {
                "studies": views.counted_studies(treatment)
            }
            # The page it describes, at the configured public URL: never the request's Host.
            url = public_urls().treatment(treatment.slug)
            body = treatment_jsonld(view, current_app.config["CLINIC_NAME"], url)
            headers = {"Last-Modified": http_date(treatment.updated_at)}
            return json_response(body, headers=headers, mimetype="application/ld+json")
        return _treatment_response(treatment)

    @blp.requires_role("editor")
    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @blp.arguments(TreatmentPatchSchema)
    @blp.response(200, TreatmentSchema, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @blp.alt_response(428, response="PRECONDITION_REQUIRED")
    def patch(self, data: dict[str, Any], slug: str) -> Response:
        """Update a treatment's content

        Status, bookability, evidence, version and timestamps are not writable.
        """
        treatment = service.update_treatment(
            get_session(), slug, data, if_match(), current_actor(), current_rules()
        )
        return _treatment_response(treatment)


@blp.route("/<slug:slug>/decisions")
class TreatmentDecisions(MethodView):
    @cacheable
    @blp.response(200, DecisionSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, slug: str) -> Any:
        """List a treatment's decisions (its public status history), oldest first"""
        return views.list_decisions(get_session(), slug)

    @blp.requires_role("reviewer")
    @blp.arguments(DecisionQueryArgsSchema, location="query")
    @blp.arguments(DecisionCreateSchema)
    @blp.response(201, DecisionSchema)
    @blp.alt_response(
        200,
        success=True,
        schema=DecisionPreviewSchema,
        description="`?dry_run=true`: the decision would be recorded like this; nothing was written",
    )
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(
        409,
        response="CONFLICT",
        description="Refused by the policy gate (`unmet`), or an override of an approval it does not refuse",
    )
    def post(self, args: dict[str, Any], data: dict[str, Any], slug: str) -> Any:
        """Record a decision

        A decision to `approved` must pass the policy gate; an admin may override it with a
        justification of at least 40 characters, which is then public. With `?dry_run=true` the
        decision is only checked: the same refusals, or 200 with what would be recorded, and
        nothing written (staff see the gate before they send).
        """
        session, actor, rules = get_session(), current_actor(), current_rules()
        if args["dry_run"]:
            preview = decisions.check_decision(session, slug, data, actor, rules)
            return json_response(DecisionPreviewSchema().dump(preview), 200)
        return decisions.record_decision(session, slug, data, actor, rules)


@blp.route("/<slug:slug>/studies")
class TreatmentStudies(MethodView):
    @cacheable
    @blp.response(200, StudySchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, slug: str) -> Any:
        """List a treatment's studies"""
        return views.list_studies(get_session(), slug)

    @blp.requires_role("editor")
    @blp.arguments(StudyCreateSchema)
    @blp.response(201, StudySchema, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(responses=STUDY_LINKS)
    def post(self, data: dict[str, Any], slug: str) -> Response:
        """Add a study"""
        study = service.add_study(get_session(), slug, data, current_actor(), current_rules())
        return _entry_response(StudySchema(), study, 201)


@blp.route("/<slug:slug>/studies/<int(max=2147483647):study_id>")
class TreatmentStudyById(MethodView):
    @cacheable
    @blp.response(200, StudySchema, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, slug: str, study_id: int) -> Response:
        """Get a study"""
        return _entry_response(StudySchema(), views.find_study(get_session(), slug, study_id))

    @blp.requires_role("editor")
    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @blp.arguments(StudyPatchSchema)
    @blp.response(200, StudySchema, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(
        409,
        response="CONFLICT",
        description="Accepting a study that has no design, or pooled fields on a study that is no review",
    )
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @blp.alt_response(428, response="PRECONDITION_REQUIRED")
    def patch(self, data: dict[str, Any], slug: str, study_id: int) -> Response:
        """Update a study"""
        study = service.update_study(
            get_session(), slug, study_id, data, if_match(), current_actor(), current_rules()
        )
        return _entry_response(StudySchema(), study)

    @blp.requires_role("editor")
    @blp.doc(parameters=[OPTIONAL_IF_MATCH])
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def delete(self, slug: str, study_id: int) -> None:
        """Delete a study"""
        service.delete_study(get_session(), slug, study_id, if_match(), current_actor(), current_rules())


@blp.route("/<slug:slug>/regulatory")
class TreatmentRegulatory(MethodView):
    @cacheable
    @blp.response(200, RegulatoryStatusSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, slug: str) -> Any:
        """List a treatment's regulatory entries"""
        return views.list_regulatory(get_session(), slug)

    @blp.requires_role("editor")
    @blp.arguments(RegulatoryStatusCreateSchema)
    @blp.response(201, RegulatoryStatusSchema, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(responses=REGULATORY_LINKS)
    def post(self, data: dict[str, Any], slug: str) -> Response:
        """Add a regulatory entry"""
        entry = service.add_regulatory(get_session(), slug, data, current_actor(), current_rules())
        return _entry_response(RegulatoryStatusSchema(), entry, 201)


@blp.route("/<slug:slug>/regulatory/<int(max=2147483647):entry_id>")
class TreatmentRegulatoryById(MethodView):
    @cacheable
    @blp.response(200, RegulatoryStatusSchema, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, slug: str, entry_id: int) -> Response:
        """Get a regulatory entry"""
        entry = views.find_regulatory(get_session(), slug, entry_id)
        return _entry_response(RegulatoryStatusSchema(), entry)

    @blp.requires_role("editor")
    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @blp.arguments(RegulatoryStatusPatchSchema)
    @blp.response(200, RegulatoryStatusSchema, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @blp.alt_response(428, response="PRECONDITION_REQUIRED")
    def patch(self, data: dict[str, Any], slug: str, entry_id: int) -> Response:
        """Update a regulatory entry"""
        entry = service.update_regulatory(
            get_session(), slug, entry_id, data, if_match(), current_actor(), current_rules()
        )
        return _entry_response(RegulatoryStatusSchema(), entry)

    @blp.requires_role("editor")
    @blp.doc(parameters=[OPTIONAL_IF_MATCH])
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def delete(self, slug: str, entry_id: int) -> None:
        """Delete a regulatory entry"""
        service.delete_regulatory(get_session(), slug, entry_id, if_match(), current_actor(), current_rules())


@blp.route("/<slug:slug>/gate")
class TreatmentGate(MethodView):
    @uncacheable("editors only: staff's view of the gate")
    @blp.requires_role("editor")
    @blp.response(200, TreatmentGateSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, slug: str) -> Any:
        """Get a treatment's policy gate status: whether its current facts meet the gate

        An approved treatment that no longer meets it is `flagged` (and listed first in the
        due-review report); its decision stands until a reviewer records a new one.
        """
        return views.gate_status(get_session(), slug, current_rules())


@blp.route("/<slug:slug>/audit")
class TreatmentAudit(MethodView):
    @uncacheable("editors only: the audit trail is not public")
    @blp.requires_role("editor")
    @blp.arguments(AuditQueryArgsSchema, location="query")
    @blp.response(200, AuditRecordSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args: dict[str, Any], slug: str) -> Any:
        """List a treatment's audit trail: who changed what, from what to what

        The newest `limit` records, oldest first; pass the first record's id as `before` to
        page back through older history.
        """
        return views.treatment_audit(get_session(), slug, args.get("before"), args["limit"])
