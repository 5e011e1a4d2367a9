"""Literature import schemas: the `format` argument, CSL-JSON items and the import result"""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from api.smorest import ResponseSchema
from api.treatments.schemas import StudySchema

FORMATS = ("ris", "nbib", "csl-json")


class ImportQueryArgsSchema(ma.Schema):
    format = fields.String(
        validate=validate.OneOf(FORMATS),
        metadata={
            "description": (
                "The file's format. When given it wins; otherwise the Content-Type decides "
                "(`application/x-research-info-systems`: ris, `application/x-nbib`: nbib, "
                "`application/vnd.citationstyles.csl+json` or `application/json`: csl-json)."
            )
        },
    )


class ImportUploadSchema(ma.Schema):
    """The `multipart/form-data` form of an import: one file, as a browser's file input sends it."""

    file = fields.Raw(
        required=True,
        metadata={
            "type": "string",
            "format": "binary",
            "description": (
                "The exported file. Its name gives the format: `.ris` RIS, `.nbib` or `.txt` PubMed "
                "MEDLINE, `.json` CSL-JSON; else its part's Content-Type, as for a raw body."
            ),
        },
    )
    format = fields.String(
        validate=validate.OneOf(FORMATS),
        metadata={"description": "The file's format, when its name does not say (wins over the name)."},
    )


class _StringOrNumber(fields.Field):
    """A JSON string or integer, loaded as a string (CSL-JSON `id` and `PMID` come as either)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ma.ValidationError("Not a string or an integer.")
        return str(value)


class _DatePart(fields.Field):
    """A CSL date part: an integer, or a string of digits."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ma.ValidationError("A date part is an integer.")
        if isinstance(value, str):
            if not re.fullmatch(r"-?[0-9]{1,9}", value.strip()):
                raise ma.ValidationError("A date part is an integer.")
            value = int(value.strip())
        return value


class CslNameSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    family = fields.String()
    given = fields.String()
    literal = fields.String()
    particle = fields.String(data_key="non-dropping-particle")


class CslDateSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    date_parts = fields.List(
        fields.List(
            _DatePart(metadata={"type": ["integer", "string"]}), validate=validate.Length(min=1, max=3)
        ),
        data_key="date-parts",
        metadata={"example": [[2023, 5, 1]]},
    )
    raw = fields.String()
    literal = fields.String()


class CslItemSchema(ma.Schema):
    """The CSL-JSON fields the import reads; the others are ignored. `id` and `type` are
    required by the CSL-JSON schema; `title` by us, since a study needs one."""

    class Meta:
        unknown = ma.EXCLUDE

    id = _StringOrNumber(required=True, metadata={"type": ["string", "integer"]})
    type = fields.String(required=True)
    title = fields.String(required=True)
    author = fields.List(fields.Nested(CslNameSchema))
    container_title = fields.String(data_key="container-title")
    issued = fields.Nested(CslDateSchema)
    doi = fields.String(data_key="DOI")
    pmid = _StringOrNumber(data_key="PMID", metadata={"type": ["string", "integer"]})
    url = fields.String(data_key="URL")


class ImportDuplicateSchema(ResponseSchema):
    record = fields.Integer(metadata={"description": "The record's position in the file, from 1"})
    title = fields.String()
    doi = fields.String(allow_none=True)
    pmid = fields.String(allow_none=True)
    matched_on = fields.String(metadata={"enum": ["doi", "pmid"]})
    existing_study_id = fields.Integer(metadata={"description": "The study it duplicates"})
    duplicate_of_record = fields.Integer(
        allow_none=True, metadata={"description": "Set when it repeats an earlier record of the same file"}
    )


class ImportResultSchema(ResponseSchema):
    imported = fields.List(fields.Nested(StudySchema), metadata={"description": "New studies, in screening"})
    duplicates = fields.List(
        fields.Nested(ImportDuplicateSchema), metadata={"description": "Reported, not added"}
    )
    count = fields.Integer(metadata={"description": "How many studies were imported"})
    records = fields.Integer(metadata={"description": "How many records the file held"})
