"""Literature import resource: a reference file in, studies in screening out"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from flask.views import MethodView

from api.api_keys.auth import current_actor
from api.context import current_rules
from api.db import get_session
from api.errors import InvalidInput
from api.http import ETAG_HEADER, IF_MATCH_PARAMETER, if_match, json_response
from api.literature import screening, service
from api.literature.schemas import (
    FORMATS,
    ExclusionSchema,
    ImportQueryArgsSchema,
    ImportResultSchema,
    ImportUploadSchema,
    PrismaSchema,
    ScreeningPageSchema,
    ScreeningQueryArgsSchema,
)
from api.readcache import uncacheable
from api.smorest import Blueprint
from api.treatments.schemas import StudySchema
from api.treatments.views import entry_etag
from api.treatments.vocabulary import ExclusionReason, Screening

blp = Blueprint(
    "literature",
    __name__,
    url_prefix="/v1/treatments",
    description="Literature import: references from PubMed or a reference manager, as studies to screen.",
)

# Listed: the forms generators read (openapi-python-client 0.29: multipart, octet-stream). The
# raw RIS, MEDLINE and CSL-JSON media types are accepted as well and named in the description:
# listed, RIS and MEDLINE draw a generator warning each, and a CSL-JSON array beside another form
# makes the generated function fail on every call (`isinstance(body, list[CslItem])`).
IMPORT_BODY = {
    "required": True,
    "description": (
        "The exported file, UTF-8, at most 1 MiB and the configured number of records (500), sent "
        "either way:\n\n"
        "- `multipart/form-data` with one file in the part `file` (what a browser's file input "
        "sends); its name gives the format (`.ris` RIS, `.nbib` or `.txt` PubMed MEDLINE, `.json` "
        "CSL-JSON), or the form field `format`, or `?format=`;\n"
        "- the file as the body, its Content-Type naming the format: "
        "`application/x-research-info-systems` (RIS), `application/x-nbib` (MEDLINE), "
        "`application/vnd.citationstyles.csl+json` or `application/json` (CSL-JSON: an array of "
        "items, each with `id`, `type` and `title`); or `application/octet-stream` or `text/plain` "
        "with `?format=`."
    ),
    "content": {
        "multipart/form-data": {"schema": ImportUploadSchema},
        "application/octet-stream": {
            "schema": {"type": "string", "format": "binary", "description": "The file; `?format=` names it"}
        },
    },
}
UPLOAD_PART = "file"


def _reference_file(query_format: str | None) -> dict[str, Any]:
    """The file to import: its bytes, its format when the request names one, its media type and,
    when uploaded, its name.

    A multipart upload carries one file in the part `file`, and optionally the field `format`;
    any other body is the file itself. Werkzeug refuses a multipart body over the size limit
    (413) as it does any other.
    """
    if request.mimetype != "multipart/form-data":
        return {"body": request.get_data(cache=False), "fmt": query_format, "media_type": request.mimetype}
    errors = [
        _error("files", name, f"Send the file in the part `{UPLOAD_PART}`.")
        for name in request.files
        if name != UPLOAD_PART
    ]
    uploads = request.files.getlist(UPLOAD_PART)
    if len(uploads) != 1:
        errors.append(_error("files", UPLOAD_PART, f"Send exactly one file (got {len(uploads)})."))
    errors.extend(
        _error("form", name, "Unknown field: the form takes `file` and `format`.")
        for name in request.form
        if name != "format"
    )
    formats = request.form.getlist("format")
    if len(formats) > 1 or (formats and formats[0] not in FORMATS):
        errors.append(_error("form", "format", f"Give one of: {', '.join(FORMATS)}."))
    elif formats and query_format and formats[0] != query_format:
        errors.append(_error("form", "format", f"The form says {formats[0]}, ?format= {query_format}."))
    if errors:
        raise InvalidInput("The upload is not valid.", errors)
    upload = uploads[0]
    return {
        "body": upload.read(),
        "fmt": query_format or (formats[0] if formats else None),
        "media_type": upload.mimetype or None,
        "filename": upload.filename or "",
    }


def _error(location: str, field: str, message: str) -> dict[str, str]:
    return {"location": location, "field": field, "message": message}


@blp.route("/<slug:slug>/studies/import")
class TreatmentStudiesImport(MethodView):
    @blp.requires_role("editor")
    @blp.doc(requestBody=IMPORT_BODY)
    @blp.arguments(ImportQueryArgsSchema, location="query")
    @blp.response(201, ImportResultSchema)
    @blp.alt_response(200, schema=ImportResultSchema, description="Nothing new: every record was a duplicate")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    @blp.alt_response(
        422,
        response="UNPROCESSABLE_ENTITY",
        description="Malformed file: each error names its record and line",
    )
    def post(self, args: dict[str, Any], slug: str) -> Response:
        """Import references (RIS, PubMed MEDLINE/.nbib, CSL-JSON) as studies in screening

        Each record keeps the DOI, PMID, title, authors, journal, year and URL it states and
        comes in with `screening: screening` (design only from an unambiguous MEDLINE
        publication type), so the evidence summary ignores it until an editor sets a design and
        accepts it. Records whose DOI (any case) or PMID the treatment already has, or that
        repeat an earlier record, are reported in `duplicates` and not added. 201 when anything
        was imported, 200 when nothing was new; one transaction either way.
        """
        upload = _reference_file(args.get("format"))
        result = service.import_references(
            get_session(), slug, upload.pop("body"), upload.pop("fmt"), upload.pop("media_type"),
            current_actor(), current_rules(), current_app.config["IMPORT_MAX_RECORDS"], **upload,
        )  # fmt: skip
        status = 201 if result["count"] else 200
        return json_response(ImportResultSchema().dump(result), status)


screening_blp = Blueprint(
    "screening",
    __name__,
    url_prefix="/v1",
    description="Screening: the records waiting across treatments, exclusions with reasons, PRISMA counts.",
)


@screening_blp.route("/screening")
class ScreeningQueue(MethodView):
    @uncacheable("editors only: the records waiting change with every import and decision")
    @screening_blp.requires_role("editor")
    @screening_blp.arguments(ScreeningQueryArgsSchema, location="query")
    @screening_blp.response(200, ScreeningPageSchema)
    @screening_blp.alt_response(404, response="NOT_FOUND")
    def get(self, args: dict[str, Any]) -> Any:
        """List studies by screening state, across treatments or for one, oldest first

        Default: the records waiting (`screening`). `state=excluded` lists exclusions with their
        coded reasons; `state=all` everything. Keyset paging: pass `next_after` as `after`.
        """
        state = None if args["state"] == "all" else Screening(args["state"])
        return screening.screening_queue(
            get_session(), treatment=args.get("treatment"), state=state, after=args.get("after"),
            limit=args["limit"],
        )  # fmt: skip


@screening_blp.route("/treatments/<slug:slug>/studies/<int(max=2147483647):study_id>/exclusion")
class StudyExclusion(MethodView):
    @screening_blp.requires_role("editor")
    @screening_blp.doc(parameters=[IF_MATCH_PARAMETER])
    @screening_blp.arguments(ExclusionSchema)
    @screening_blp.response(200, StudySchema, headers=ETAG_HEADER)
    @screening_blp.alt_response(404, response="NOT_FOUND")
    @screening_blp.alt_response(412, response="PRECONDITION_FAILED")
    @screening_blp.alt_response(428, response="PRECONDITION_REQUIRED")
    def post(self, data: dict[str, Any], slug: str, study_id: int) -> Response:
        """Exclude a study at screening, with a coded reason

        Sets `screening: excluded` and keeps the reason (and note; required for `other`) on the
        study, audited; the evidence summary stops counting it. Moving the study back to
        `screening` or `accepted` (`PATCH`) clears the reason.
        """
        study = screening.exclude_study(
            get_session(), slug, study_id, ExclusionReason(data["reason"]), data["note"], if_match(),
            current_actor(), current_rules(),
        )  # fmt: skip
        return json_response(StudySchema().dump(study), 200, etag=entry_etag(study))


@screening_blp.route("/treatments/<slug:slug>/prisma")
class TreatmentPrisma(MethodView):
    @uncacheable("editors only: it counts records still in screening")
    @screening_blp.requires_role("editor")
    @screening_blp.response(200, PrismaSchema)
    @screening_blp.alt_response(404, response="NOT_FOUND")
    def get(self, slug: str) -> Any:
        """PRISMA-style counts of a treatment's literature

        Identified (per import batch), duplicates removed, screened, excluded by reason, awaiting
        and included, as a PRISMA 2020 flow diagram counts them.
        """
        return screening.prisma_counts(get_session(), slug)
