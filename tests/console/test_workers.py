"""Sessions and CSRF tokens hold across processes and hosts: the session is in the database, and
every process signs CSRF tokens with the same configured SECRET_KEY"""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

from tests.console.conftest import PASSWORD
from tests.helpers import add_treatment, gunicorn

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ETAG = re.compile(r'name="etag" value="([^"]+)"')


def browse(jar: http.cookiejar.CookieJar):
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def fetch(url: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with opener.open(url, data=data, timeout=15) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read().decode()

    return fetch


def test_a_form_shown_by_one_server_is_accepted_by_another(app, database_url, make_person):
    email = make_person("editor")
    add_treatment(app, "shared")
    fetch = browse(http.cookiejar.CookieJar())  # cookies are per host, not per port: one browser
    key = {"SECRET_KEY": "one-key-for-every-process-0123456789"}
    with gunicorn(database_url, workers=1, **key) as one, gunicorn(database_url, workers=1, **key) as other:
        a, b = f"http://127.0.0.1:{one}", f"http://127.0.0.1:{other}"
        token = CSRF.search(fetch(a + "/console/sign-in")[1]).group(1)
        status, page = fetch(
            b + "/console/sign-in", {"email": email, "password": PASSWORD, "csrf_token": token}
        )
        assert status == 200 and "What needs attention" in page  # signed in by b with a's form
        for round_, (shows, saves) in enumerate([(a, b), (b, a)]):
            page = fetch(shows + "/console/treatments/shared")[1]
            etag = ETAG.search(page).group(1).replace("&#34;", '"')
            form = {
                "csrf_token": CSRF.search(page).group(1),
                "etag": etag,
                "name": f"Shared {round_}",
                "category": "skin_procedure",
                "summary": "Saved anywhere.",
                "aliases": "",
                "explanation": "",
            }
            status, page = fetch(saves + "/console/treatments/shared/content", form)
            assert status == 200 and "Content saved." in page, page[:300]


def test_with_different_secret_keys_a_form_from_another_process_is_refused(app, database_url, make_person):
    email = make_person("editor")
    fetch = browse(http.cookiejar.CookieJar())
    with (
        gunicorn(database_url, workers=1, SECRET_KEY="this-key-" + "1" * 32) as one,
        gunicorn(database_url, workers=1, SECRET_KEY="another-key-" + "2" * 32) as other,
    ):
        token = CSRF.search(fetch(f"http://127.0.0.1:{one}/console/sign-in")[1]).group(1)
        status, page = fetch(
            f"http://127.0.0.1:{other}/console/sign-in",
            {"email": email, "password": PASSWORD, "csrf_token": token},
        )
        assert status == 400 and "Form expired" in page
