"""Reading reference files: RIS, PubMed MEDLINE (.nbib) and CSL-JSON, into study fields.

Pure functions, no Flask and no session. `read_references` returns one `Reference` per record
or raises `ReferenceFileInvalid` listing each failure with its record number and, for the
line-based formats, its line number.

- RIS: `rispy` (maintained) maps each record's tags. It silently skips text it does not
  understand and drops a last record without `ER`, so the record structure is checked here
  first, with line numbers, and rispy reads one checked record at a time.
- MEDLINE: a small parser of the tag format below. The `nbib` package was evaluated and not
  used: one release (2021), unmaintained, and it fails a whole file with an undocumented
  exception on a malformed history date (PHST) we never read, without a line number.
- CSL-JSON: JSON, validated with `CslItemSchema`.

Only what a record states is kept: title, authors, journal, year, DOI, PMID and URL. The design
is read only from a MEDLINE record's NLM publication types, and only when exactly one of a few
unambiguous ones is present; otherwise it stays empty for an editor to set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, NoReturn

import marshmallow as ma
import rispy

from api.literature.schemas import CslItemSchema
from api.treatments.schemas import StudyCreateSchema
from api.treatments.vocabulary import StudyDesign

MEDIA_TYPES = {
    "application/x-research-info-systems": "ris",
    "application/x-nbib": "nbib",
    "application/vnd.citationstyles.csl+json": "csl-json",
    "application/json": "csl-json",
}
# A file's name names its format (PubMed saves MEDLINE as `.nbib`, or `.txt` from "Send to: File").
EXTENSIONS = {".ris": "ris", ".nbib": "nbib", ".txt": "nbib", ".json": "csl-json"}
STUDY_FIELDS = ("title", "authors", "journal", "year", "doi", "pmid", "url", "design")
AUTHORS_MAX_LENGTH = 1000
MAX_ERRORS = 20

# NLM publication types that name a design unambiguously (MEDLINE `PT`).
PUBLICATION_TYPE_DESIGNS = {
    "randomized controlled trial": StudyDesign.RCT,
    "meta-analysis": StudyDesign.META_ANALYSIS,
    "systematic review": StudyDesign.SYSTEMATIC_REVIEW,
    "case reports": StudyDesign.CASE_REPORT,
}

RIS_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9])  -(?: (.*))?$")
MEDLINE_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9]{1,3}) {0,2}-(?: (.*))?$")
MEDLINE_CONTINUATION = "      "
DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
PUBMED_URL = re.compile(
    r"^https?://(?:www\.)?(?:pubmed\.ncbi\.nlm\.nih\.gov|ncbi\.nlm\.nih\.gov/pubmed)/(\d+)/?$"
)
YEAR = re.compile(r"^\s*([0-9]{4})")


@dataclass
class Reference:
    record: int  # position in the file, from 1
    line: int | None  # where the record starts (line-based formats)
    study: dict[str, Any] = field(default_factory=dict)


@dataclass
class Problem:
    message: str
    record: int | None = None
    line: int | None = None
    field: str = ""

    def as_error(self) -> dict[str, Any]:
        where = [f"record {self.record}" if self.record else "", f"line {self.line}" if self.line else ""]
        prefix = ", ".join(w for w in where if w)
        label = f"{self.field}: " if self.field else ""
        return {
            "location": "body",
            "field": self.field,
            "message": f"{prefix.capitalize()}: {label}{self.message}" if prefix else label + self.message,
            "record": self.record,
            "line": self.line,
        }


class ReferenceFileInvalid(Exception):
    def __init__(self, detail: str, problems: list[Problem]):
        super().__init__(detail)
        self.detail = detail
        self.problems = problems[:MAX_ERRORS]


def format_for(media_type: str | None) -> str | None:
    """The format a Content-Type names, if any."""
    return MEDIA_TYPES.get((media_type or "").lower())


def format_for_filename(filename: str | None) -> str | None:
    """The format a file's name names by its extension, if any (any case; a path is ignored)."""
    return EXTENSIONS.get(PurePosixPath((filename or "").replace("\\", "/")).suffix.lower())


def read_references(body: bytes, fmt: str, max_records: int) -> list[Reference]:
    """Parse and check a whole file; every record becomes study fields or the file is refused."""
    text = _decode(body)
    if not text.strip():
        raise ReferenceFileInvalid("The file is empty.", [Problem("The file holds no references.")])
    readers = {"ris": _read_ris, "nbib": _read_medline, "csl-json": _read_csl_json}
    raw, problems = readers[fmt](text, max_records)
    if len(raw) > max_records:
        raise ReferenceFileInvalid(
            f"The file holds more than {max_records} references; import at most {max_records} at once.",
            [Problem(f"At most {max_records} references per import.", record=max_records + 1)],
        )
    references = [_checked(ref, problems) for ref in raw]
    if not raw and not problems:
        problems.append(Problem(f"No references found: is this a {fmt} file?"))
    if problems:
        raise ReferenceFileInvalid(f"The {fmt} file could not be imported.", problems)
    return references


# --- RIS --------------------------------------------------------------------------------------


def _read_ris(text: str, max_records: int) -> tuple[list[Reference], list[Problem]]:
    refs: list[Reference] = []
    for record, start, lines in _ris_records(text):
        if record > max_records:
            refs.append(Reference(record, start))
            break
        parsed = rispy.loads("\n".join(lines), skip_unknown_tags=True)
        refs.append(Reference(record, start, _study_from_ris(parsed[0])))
    return refs, []


def _ris_records(text: str) -> Iterator[tuple[int, int, list[str]]]:
    """Each record's number, first line and lines from `TY` to `ER`, checked: inside a record
    only tag lines and their continuations; between records nothing but blank lines."""
    record, start, lines, in_record = 0, 0, list[str](), False
    for number, line in enumerate(_lines(text), start=1):
        match = RIS_TAG_LINE.match(line)
        tag = match.group(1) if match else None
        if in_record:
            if tag == "TY":
                _refuse(
                    "ris", f"The record has no 'ER  - ' before the next 'TY' on line {number}.", record, start
                )
            lines.append(line)
            if tag == "ER":
                in_record = False
                yield record, start, lines
        elif tag == "TY":
            record, start, lines, in_record = record + 1, number, [line], True
        elif tag is not None:
            outside = f"'{tag}' outside a record: each record starts with 'TY  - ' and ends with 'ER  - '."
            _refuse("ris", outside, record + 1, number)
        elif line.strip() and record:
            _refuse(
                "ris", "Text between records: expected 'TY  - ' to start the next record.", record + 1, number
            )
        # Text before the first record is a header some exporters write; it is skipped.
    if in_record:
        _refuse("ris", "The record has no 'ER  - ' end tag.", record, start)


def _refuse(fmt: str, message: str, record: int, line: int) -> NoReturn:
    raise ReferenceFileInvalid(f"The {fmt} file could not be imported.", [Problem(message, record, line)])


def _study_from_ris(entry: dict[str, Any]) -> dict[str, Any]:
    urls = [u for u in entry.get("urls", []) if u.lower().startswith(("http://", "https://"))]
    doi = entry.get("doi") or _first(_doi_from_url(u) for u in urls)
    pmid = _first(_pubmed_id_from_url(u) for u in urls)
    database = " ".join([entry.get("name_of_database", ""), entry.get("database_provider", "")]).lower()
    accession = entry.get("accession_number", "").strip()
    if pmid is None and accession.isdigit() and any(n in database for n in ("pubmed", "medline", "nlm")):
        pmid = accession  # EndNote and PubMed-sourced RIS put the PMID in AN
    year_text = entry.get("year") or entry.get("publication_year") or entry.get("date") or ""
    return {
        "title": entry.get("title") or entry.get("primary_title"),
        "authors": _authors(
            [_inverted_name(a) for a in entry.get("authors") or entry.get("first_authors", [])]
        ),
        "journal": _first_text(
            entry,
            "alternate_title3",
            "secondary_title",
            "journal_name",
            "alternate_title2",
            "alternate_title1",
        ),
        "year": _year(year_text),
        "doi": doi,
        "pmid": pmid,
        "url": urls[0] if urls else None,
        "design": None,
    }


# --- MEDLINE (.nbib) --------------------------------------------------------------------------


def _read_medline(text: str, max_records: int) -> tuple[list[Reference], list[Problem]]:
    """PubMed's MEDLINE format: a tag padded to four characters, '- ', the value; continuation
    lines start with six spaces; a blank line ends a record, which starts with `PMID- `."""
    refs: list[Reference] = []
    tags: list[tuple[str, str]] = []
    start = 0

    def close() -> bool:
        nonlocal tags
        if tags:
            record = len(refs) + 1
            if tags[0][0] != "PMID":
                _refuse("nbib", f"A MEDLINE record starts with 'PMID- ', not '{tags[0][0]}'.", record, start)
            study = _study_from_medline(tags) if record <= max_records else {}
            refs.append(Reference(record, start, study))
            tags = []
        return len(refs) <= max_records

    for number, line in enumerate(_lines(text), start=1):
        if not line.strip():
            if not close():
                break
            continue
        match = MEDLINE_TAG_LINE.match(line)
        if match and len(line) >= 5 and line[4] == "-":
            if not tags:
                start = number
            tags.append((match.group(1), (match.group(2) or "").strip()))
        elif line.startswith(MEDLINE_CONTINUATION) and tags:
            name, value = tags[-1]
            tags[-1] = (name, f"{value} {line.strip()}")
        else:
            _refuse("nbib", "Not a MEDLINE line: expected a tag padded to four characters and '- ', or a "
                    "continuation indented by six spaces.", len(refs) + 1, number)  # fmt: skip
    close()
    return refs, []


def _study_from_medline(tags: list[tuple[str, str]]) -> dict[str, Any]:
    values: dict[str, list[str]] = {}
    for name, value in tags:
        values.setdefault(name, []).append(value)

    def one(*names: str) -> str | None:
        return _first(values[n][0] for n in names if values.get(n))

    authors = values.get("AU") or [_inverted_name(a) for a in values.get("FAU", [])]
    article_ids = values.get("AID", []) + values.get("LID", [])
    doi = _first(v.removesuffix(" [doi]") for v in article_ids if v.endswith(" [doi]"))
    designs = {PUBLICATION_TYPE_DESIGNS.get(pt.lower()) for pt in values.get("PT", [])} - {None}
    return {
        "title": one("TI"),
        "authors": _authors(authors + values.get("CN", [])),
        "journal": one("JT", "TA"),
        "year": _year(one("DP") or ""),
        "doi": doi,
        "pmid": one("PMID"),
        "url": None,
        "design": designs.pop().value if len(designs) == 1 else None,
    }


# --- CSL-JSON ---------------------------------------------------------------------------------


def _read_csl_json(text: str, max_records: int) -> tuple[list[Reference], list[Problem]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return [], [Problem(f"Not valid JSON: {error.msg} (column {error.colno}).", line=error.lineno)]
    except (ValueError, RecursionError):  # a number too long to read, or nesting too deep
        return [], [Problem("Not CSL-JSON: a number is too long or the nesting too deep.")]
    if not isinstance(data, list):
        return [], [Problem("CSL-JSON is an array of items: expected '[' at the top level.", line=1)]
    if len(data) > max_records:
        return [Reference(n, None) for n in range(1, len(data) + 1)], []
    refs, problems = [], []
    for record, item in enumerate(data, start=1):
        try:
            loaded = CslItemSchema().load(item) if isinstance(item, dict) else None
        except ma.ValidationError as error:
            problems.extend(_schema_problems(error.messages, record, None))
            continue
        if loaded is None:
            problems.append(Problem("A CSL-JSON item is an object.", record=record))
            continue
        refs.append(Reference(record, None, _study_from_csl(loaded)))
    return refs, problems


def _study_from_csl(item: dict[str, Any]) -> dict[str, Any]:
    issued = item.get("issued") or {}
    parts = issued.get("date_parts") or [[]]
    year = parts[0][0] if parts and parts[0] else _year(issued.get("raw") or "")
    url = item.get("url")
    doi = item.get("doi") or (_doi_from_url(url) if url else None)
    pmid = item.get("pmid") or (_pubmed_id_from_url(url) if url else None)
    return {
        "title": item["title"],
        "authors": _authors([_csl_name(n) for n in item.get("author", [])]),
        "journal": item.get("container_title"),
        "year": year,
        "doi": doi,
        "pmid": pmid,
        "url": url,
        "design": None,
    }


def _csl_name(name: dict[str, Any]) -> str:
    if name.get("literal"):
        return str(name["literal"])
    family = " ".join(p for p in (name.get("particle"), name.get("family")) if p)
    return " ".join(p for p in (family, _initials(name.get("given", ""))) if p)


# --- checking and normalising -----------------------------------------------------------------


def _checked(ref: Reference, problems: list[Problem]) -> Reference:
    """Normalise whitespace and identifiers, then validate with the study rules themselves."""
    data = {key: _clean(ref.study.get(key)) for key in STUDY_FIELDS}
    if data["doi"]:
        data["doi"] = DOI_PREFIX.sub("", data["doi"])
    if data["pmid"]:
        data["pmid"] = re.sub(r"^PMID:?\s*", "", data["pmid"], flags=re.IGNORECASE)
    if not data["title"]:
        problems.append(Problem("The record has no title.", ref.record, ref.line, "title"))
        return ref
    try:
        ref.study = StudyCreateSchema(only=STUDY_FIELDS).load(data)
    except ma.ValidationError as error:
        problems.extend(_schema_problems(error.messages, ref.record, ref.line))
    return ref


def _schema_problems(messages: Any, record: int, line: int | None, prefix: str = "") -> list[Problem]:
    out: list[Problem] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.extend(_schema_problems(value, record, line, "" if key == "_schema" else name))
    elif isinstance(messages, list):
        for message in messages:
            out.extend(_schema_problems(message, record, line, prefix))
    else:
        out.append(Problem(str(messages), record, line, prefix))
    return out


def _clean(value: Any) -> Any:
    """Collapse runs of whitespace (tabs, line breaks) to one space; other control characters
    are left for the schema to refuse."""
    if isinstance(value, str):
        value = re.sub(r"[ \t\r\n\f\v]+", " ", value).strip()
        return value or None
    return value


def _lines(text: str) -> list[str]:
    # Not str.splitlines(): it also breaks at form feeds and Unicode separators, which would
    # number lines differently from the editor that shows them.
    return re.split(r"\r\n|\r|\n", text)


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = body[: error.start].count(b"\n") + 1
        raise ReferenceFileInvalid(
            "The file is not UTF-8 text.", [Problem("Not UTF-8: export the file as UTF-8.", line=line)]
        ) from None


def _authors(names: list[str]) -> str | None:
    """Vancouver style, 'Doe J, Roe RA'; cut with 'et al.' to fit the column."""
    names = [n.strip() for n in names if n and n.strip()]
    if not names:
        return None
    text = ", ".join(names)
    while len(text) > AUTHORS_MAX_LENGTH and len(names) > 1:
        names.pop()
        text = ", ".join(names) + ", et al."
    return text


def _inverted_name(name: str) -> str:
    """'Doe, Jane A.' → 'Doe JA'; names without a comma (organisations) are kept as written."""
    family, comma, given = name.partition(",")
    if not comma:
        return name.strip()
    return " ".join(p for p in (family.strip(), _initials(given)) if p)


def _initials(given: str) -> str:
    return "".join(part[0] for part in re.split(r"[\s.\-]+", given) if part and part[0].isalpha())


def _year(text: str) -> int | None:
    match = YEAR.match(text)
    return int(match.group(1)) if match else None


def _doi_from_url(url: str) -> str | None:
    return DOI_PREFIX.sub("", url) if DOI_PREFIX.match(url) and "doi.org/" in url.lower() else None


def _pubmed_id_from_url(url: str) -> str | None:
    match = PUBMED_URL.match(url)
    return match.group(1) if match else None


def _first_text(entry: dict[str, Any], *keys: str) -> str | None:
    return _first(entry.get(k) for k in keys if isinstance(entry.get(k), str) and entry.get(k).strip())


def _first(values: Any) -> Any:
    return next((v for v in values if v), None)
