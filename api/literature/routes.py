"""Literature import resource: a reference file in, studies in screening out"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from flask.views import MethodView

from api.api_keys.auth import current_actor
from api.context import current_rules
from api.db import get_session
from api.http import json_response
from api.literature import service
from api.literature.schemas import CslItemSchema, ImportQueryArgsSchema, ImportResultSchema
from api.smorest import Blueprint

blp = Blueprint(
    "literature",
    __name__,
    url_prefix="/v1/treatments",
    description="Literature import: references from PubMed or a reference manager, as studies to screen.",
)

_TEXT = {"schema": {"type": "string"}}
_CSL = {"schema": {"type": "array", "items": CslItemSchema}}
IMPORT_BODY = {
    "required": True,
    "description": (
        "The exported file as it is. `text/plain` needs `?format=`; otherwise the Content-Type "
        "names the format. UTF-8; at most 1 MiB and the configured number of records (500)."
    ),
    "content": {
        "application/x-research-info-systems": _TEXT | {"example": "TY  - JOUR\nTI  - A title\nER  - \n"},
        "application/x-nbib": _TEXT | {"example": "PMID- 1\nTI  - A title\n"},
        "text/plain": _TEXT,
        "application/vnd.citationstyles.csl+json": _CSL,
        "application/json": _CSL,
    },
}


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
        result = service.import_references(
            get_session(), slug, request.get_data(cache=False), args.get("format"), request.mimetype,
            current_actor(), current_rules(), current_app.config["IMPORT_MAX_RECORDS"],
        )  # fmt: skip
        status = 201 if result["count"] else 200
        return json_response(ImportResultSchema().dump(result), status)
