"""A client generated from the served OpenAPI document by openapi-python-client (pinned in the
`dev` extras) works against a live server: generated without a warning, then list, detail, a
booking check and a multipart import through it. Generated once per module (about 2 s)."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import add_treatment, approval, random_slug, serving, study

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "tpa_generated_client"
RIS = (Path(__file__).resolve().parents[1] / "fixtures" / "literature" / "sample.ris").read_bytes()


@pytest.fixture(scope="module")
def live(app, tmp_path_factory) -> Iterator[tuple[str, Any, str]]:
    """The served app's base URL, the generated package and the generator's output."""
    out = tmp_path_factory.mktemp("generated")
    config = out / "config.yml"
    config.write_text("post_hooks: []\n")  # no formatter runs: nothing to depend on, and faster
    with serving(app) as base:
        generated = subprocess.run(
            [str(GENERATOR), "generate", "--url", f"{base}/v1/openapi.json", "--meta", "none",
             "--output-path", str(out / PACKAGE), "--config", str(config)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert generated.returncode == 0, generated.stdout + generated.stderr
        sys.path.insert(0, str(out))
        try:
            yield base, importlib.import_module(PACKAGE), generated.stdout + generated.stderr
        finally:
            sys.path.remove(str(out))
            for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
                del sys.modules[name]


def generated(package: Any, module: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{module}")


def test_the_client_is_generated_from_the_served_document_without_a_warning(live):
    _, _, output = live
    assert "warning" not in output.lower(), output
    assert "error" not in output.lower(), output


def test_the_generated_client_lists_reads_and_checks_bookings(app, live):
    base, package, _ = live
    slug = random_slug("gen")
    add_treatment(app, slug, "approved", studies=[study()], regulatory=[approval()])
    client_module = generated(package, "client")
    list_treatments = generated(package, "api.treatments.get_v1_treatments")
    get_treatment = generated(package, "api.treatments.get_v1_treatments_slug")
    check = generated(package, "api.booking.post_v1_booking_checks")
    models = generated(package, "models")

    with client_module.Client(base_url=base) as client:
        page = list_treatments.sync(client=client)
        assert isinstance(page, models.TreatmentPage)
        listed = {item.slug: item for item in page.items}
        assert listed[slug].bookable is True  # required: a bool, never Unset
        assert listed[slug].status.value == "approved"  # an enum

        treatment = get_treatment.sync(slug=slug, client=client)
        assert isinstance(treatment, models.Treatment)
        assert (treatment.slug, treatment.bookable, treatment.regulatory[0].regulator) == (slug, True, "FDA")
        assert treatment.evidence.level.value == "moderate"  # one industry-sponsored RCT

        answer = check.sync(client=client, body=models.BookingCheck(treatments=[slug, "no-such-treatment"]))
        assert isinstance(answer, models.BookingAnswer)
        assert answer.bookable is False
        assert [(r.slug, r.bookable, str(r.reason)) for r in answer.results] == [
            (slug, True, "approved"), (None, False, "unknown_treatment")
        ]  # fmt: skip


def test_the_generated_client_imports_a_file_by_multipart_upload(app, live, auth):
    base, package, _ = live
    slug = random_slug("gen")
    add_treatment(app, slug)
    client_module = generated(package, "client")
    import_file = generated(package, "api.literature.post_v1_treatments_slug_studies_import")
    models = generated(package, "models")
    types = generated(package, "types")
    token = auth("editor")["Authorization"].removeprefix("Bearer ")

    upload = models.ImportUpload(file=types.File(payload=io.BytesIO(RIS), file_name="export.ris"))
    with client_module.AuthenticatedClient(base_url=base, token=token) as client:
        response = import_file.sync_detailed(slug=slug, client=client, body=upload)
        assert response.status_code == 201, response.content
        result = response.parsed
        assert isinstance(result, models.ImportResult)
        assert (result.count, result.records, result.duplicates) == (3, 3, [])
        assert {s.screening.value for s in result.imported} == {"screening"}

        # The same file again: its records with identifiers are duplicates, typed as such.
        upload = models.ImportUpload(file=types.File(payload=io.BytesIO(RIS), file_name="export.ris"))
        again = import_file.sync(slug=slug, client=client, body=upload)
        assert {d.matched_on.value for d in again.duplicates} <= {"doi", "pmid"}
        assert (again.count, len(again.duplicates)) == (1, 2)  # one record has no identifier
