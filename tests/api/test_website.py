"""The website kit over HTTP: pages, feed, sitemap, robots.txt and the widget script"""

import datetime as dt
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from lxml import etree
from pyld import jsonld

from api import create_app
from api.config import ConfigError
from api.seed import load_catalogue
from tests.api.test_jsonld import SCHEMA, VOCABULARY, local_loader, walk
from tests.helpers import add_treatment, approval, decide, study

ATOM = "{http://www.w3.org/2005/Atom}"
RFC_4287 = Path(__file__).resolve().parents[1] / "fixtures" / "atom" / "atom.rng"  # its README says how
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
EVIL = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "gopher"}
PUBLIC = ["/", "/treatments/botox", "/feed.atom", "/sitemap.xml", "/robots.txt", "/widget.js"]
CONFIGURATION_ONLY = {"/robots.txt", "/widget.js"}


class Page(HTMLParser):
    """The parts of a page the tests read: scripts, meta and link tags, and its text."""

    def __init__(self, html: str):
        super().__init__()
        self.scripts, self.meta, self.links, self.text, self._in = [], {}, [], [], None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts.append(attrs | {"body": ""})
            self._in = "script"
        elif tag == "meta":
            self.meta[attrs.get("property") or attrs.get("name")] = attrs.get("content")
        elif tag == "link":
            self.links.append(attrs)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts[-1]["body"] += data
        else:
            self.text.append(data)

    @property
    def words(self) -> str:
        return " ".join("".join(self.text).split())

    def link(self, rel):
        return next(link["href"] for link in self.links if link.get("rel") == rel)


@pytest.fixture
def catalogue(app):
    add_treatment(app, "botox", "approved", name="Botulinum toxin", studies=[study()],
                  regulatory=[approval()])  # fmt: skip
    add_treatment(app, "exosomes", "not_approved", name="Exosome therapy", category="regenerative",
                  studies=[study(participants=28, follow_up_months=3)],
                  regulatory=[approval(regulator="HPRA", status="not_approved", reference="none",
                                       source_url="https://www.hpra.ie/example")],
                  safety=[{"event": "granuloma", "description": "Granulomas reported.",
                           "source_url": None}])  # fmt: skip
    add_treatment(app, "prp", "under_review", name="Platelet-rich plasma")


def page(client, path, **headers):
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return Page(response.get_data(as_text=True))


def group_of(index: Page, name: str) -> str:
    """The heading of the group the treatment is listed under."""
    words = index.words
    position = words.index(name)
    titles = ("We offer", "Under review", "We do not offer")
    headings = {title: words.rfind(title, 0, position) for title in titles}
    return max(headings, key=headings.get)


# --- the pages -------------------------------------------------------------------------------


def test_the_index_groups_every_treatment_by_position_with_its_reason(client, catalogue):
    index = page(client, "/")
    assert group_of(index, "Botulinum toxin") == "We offer"
    assert group_of(index, "Platelet-rich plasma") == "Under review"
    assert group_of(index, "Exosome therapy") == "We do not offer"
    assert "exosomes is not_approved." in index.words  # the one-line public reason


def test_a_suspended_treatment_is_shown_as_temporarily_not_offered(client, editor, catalogue):
    warning = approval(status="warning_issued", reference="Safety communication")
    assert client.post("/v1/treatments/botox/regulatory", json=warning, headers=editor).status_code == 201
    index = page(client, "/")
    assert group_of(index, "Botulinum toxin") == "Under review"
    assert "Temporarily not offered" in index.words
    detail = page(client, "/treatments/botox")
    assert "Temporarily not offered: bookings are paused" in detail.words
    assert "We offer this treatment." not in detail.words


def test_a_treatment_page_says_the_position_evidence_regulators_and_history(client, catalogue):
    words = page(client, "/treatments/exosomes").words
    assert "Not offered We do not offer this treatment. exosomes is not_approved." in words
    assert "How sure we can be: Very low." in words  # one small, short RCT
    assert "The largest study in people had 28 participants." in words
    assert "No study followed people up for 12 months or more" in words
    assert "Health Products Regulatory Authority, Ireland (HPRA)" in words and "Not approved" in words
    assert "granuloma: Granulomas reported." in words
    assert f"Last reviewed {dt.date.today().day} " in words  # the decision was a review
    assert "Decision: Not offered" in words


def test_regulatory_facts_link_to_their_sources(client, catalogue):
    html = client.get("/treatments/exosomes").get_data(as_text=True)
    assert 'href="https://www.hpra.ie/example" rel="external noopener"' in html


def test_a_review_shows_in_the_history(client, reviewer, catalogue):
    note = "Searched PubMed and the regulators' databases: nothing changes the decision."
    answer = client.post("/v1/treatments/exosomes/reviews", json={"note": note}, headers=reviewer)
    assert answer.status_code == 201
    words = page(client, "/treatments/exosomes").words
    assert "Review: Position confirmed" in words and note in words


def test_an_override_is_shown_publicly(client, admin, catalogue):
    justification = "The board accepts this on the strength of the clinic's own audited outcomes."
    answer = decide(client, admin, "prp", "approved", override_justification=justification)
    assert answer.status_code == 201, answer.get_json()
    assert f"The justification: {justification}" in page(client, "/treatments/prp").words


def test_the_illustrative_notice_shows_until_the_clinic_reviews(app, client, reviewer, seeded):
    assert "Illustrative information." in page(client, "/").words
    assert "Illustrative information." in page(client, "/treatments/exosomes").words
    assert "Last reviewed Not yet reviewed" in page(client, "/treatments/exosomes").words
    client.post("/v1/treatments/exosomes/reviews", json={"note": "Checked again."}, headers=reviewer)
    assert "Illustrative information." not in page(client, "/treatments/exosomes").words


def test_an_unknown_treatment_is_a_404_page(client):
    response = client.get("/treatments/no-such-thing")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "No treatment has the slug" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


# --- markup: JSON-LD, OpenGraph, canonical, CSP ------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/treatments/exosomes"])
def test_each_page_embeds_json_ld_that_expands_to_schema_org_terms(client, catalogue, path):
    scripts = page(client, path).scripts
    assert [s.get("type") for s in scripts] == ["application/ld+json"]
    document = json.loads(scripts[0]["body"])
    expanded = jsonld.expand(document, {"documentLoader": local_loader})
    types, properties = set(), set()
    walk(expanded, types, properties)
    assert types and all(t.startswith(SCHEMA) for t in types)
    assert {t.removeprefix(SCHEMA) for t in types} <= set(VOCABULARY["classes"])
    assert all(p.startswith(SCHEMA) for p in properties)
    assert {p.removeprefix(SCHEMA) for p in properties} <= set(VOCABULARY["properties"])


def test_the_pages_json_ld_is_the_apis(client, catalogue):
    embedded = json.loads(page(client, "/treatments/exosomes").scripts[0]["body"])
    api = client.get("/v1/treatments/exosomes", headers={"Accept": "application/ld+json"}).get_json()
    assert embedded == api


def test_the_index_json_ld_lists_every_page(app, client, catalogue):
    document = json.loads(page(client, "/").scripts[0]["body"])
    base = app.config["PUBLIC_BASE_URL"]
    assert document["@type"] == "CollectionPage" and document["url"] == base + "/"
    listed = [item["url"] for item in document["mainEntity"]["itemListElement"]]
    assert listed == [f"{base}/treatments/{slug}" for slug in ("botox", "exosomes", "prp")]


def test_pages_carry_canonical_opengraph_and_twitter_tags(app, client, catalogue):
    detail = page(client, "/treatments/exosomes")
    url = app.config["PUBLIC_BASE_URL"] + "/treatments/exosomes"
    assert detail.link("canonical") == url
    assert detail.meta["og:url"] == url
    assert detail.meta["og:title"].startswith("Exosome therapy: not offered")
    assert detail.meta["og:description"].startswith("We do not offer this treatment.")
    assert detail.meta["twitter:card"] == "summary"
    assert detail.link("alternate") == app.config["PUBLIC_BASE_URL"] + "/feed.atom"


@pytest.mark.parametrize("path", PUBLIC)
def test_no_public_url_comes_from_the_request(client, catalogue, path):
    """TPA_PUBLIC_BASE_URL is the only source: a forged Host never reaches a cacheable body."""
    body = client.get(path, headers=EVIL).get_data(as_text=True)
    assert "evil.example" not in body and "gopher" not in body
    assert "https://clinic.test" in body


def test_the_apis_json_ld_url_is_the_public_page_not_the_host(client, catalogue):
    document = client.get("/v1/treatments/botox", headers={"Accept": "application/ld+json"} | EVIL).get_json()
    assert document["url"] == "https://clinic.test/treatments/botox"


def test_pages_run_no_script_and_allow_only_their_styles(client, catalogue):
    policy = client.get("/treatments/botox").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'" and "script-src" not in directives
    assert "unsafe-inline" not in policy
    assert directives["frame-ancestors"] == "'none'"


def test_the_clinics_stylesheet_is_linked_and_allowed(app, catalogue):
    sheet = "https://www.clinic.example/css/positions.css"
    styled = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "PUBLIC_STYLESHEET_URL": sheet})
    try:
        response = styled.test_client().get("/treatments/botox")
        assert sheet in response.headers["Content-Security-Policy"].split("style-src ")[1].split(";")[0]
        sheets = [link["href"] for link in Page(response.get_data(as_text=True)).links
                  if link.get("rel") == "stylesheet"]  # fmt: skip
        assert sheets[-1] == sheet  # after the pages' own, so it wins
    finally:
        styled.extensions["db_engine"].dispose()


# --- caching and coherence ---------------------------------------------------------------------


@pytest.mark.parametrize("path", PUBLIC)
def test_public_pages_are_cached_like_the_apis_public_reads(client, catalogue, path):
    first = client.get(path)
    assert first.headers["Cache-Control"] == "public, max-age=60, stale-while-revalidate=30"
    if path not in CONFIGURATION_ONLY:  # those change only with a restart
        assert first.headers["Last-Modified"].endswith("GMT")
    again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""


def test_a_decision_shows_on_the_pages_at_the_next_read(client, reviewer, catalogue):
    before = {path: client.get(path).headers["ETag"] for path in ("/", "/treatments/botox", "/feed.atom")}
    assert decide(client, reviewer, "botox", "withdrawn").status_code == 201
    for path, etag in before.items():
        response = client.get(path, headers={"If-None-Match": etag})
        assert response.status_code == 200, path
    assert "No longer offered" in page(client, "/treatments/botox").words
    assert client.post("/v1/booking-checks", json={"treatments": ["botox"]}).get_json()["bookable"] is False


def test_another_worker_shows_a_decision_as_soon_as_its_booking_checks_do(app, reviewer, catalogue):
    made = [create_app({"DATABASE_URL": app.config["DATABASE_URL"], "LOG_REQUESTS": False}) for _ in range(2)]
    try:
        reader, writer = (m.test_client() for m in made)
        assert "We offer this treatment." in page(reader, "/treatments/botox").words
        assert "We offer this treatment." in page(reader, "/treatments/botox").words  # from its cache
        assert decide(writer, reviewer, "botox", "withdrawn").status_code == 201
        deadline = dt.datetime.now() + dt.timedelta(seconds=2)  # the bound booking checks keep
        while True:
            check = reader.post("/v1/booking-checks", json={"treatments": ["botox"]})
            bookable = check.get_json()["bookable"]
            offered = "We offer this treatment." in page(reader, "/treatments/botox").words
            if not (bookable or offered) or dt.datetime.now() > deadline:
                break
        assert (bookable, offered) == (False, False)
    finally:
        for m in made:
            m.extensions["db_engine"].dispose()


# --- feed, sitemap, robots ---------------------------------------------------------------------

RFC3339 = "%Y-%m-%dT%H:%M:%S%z"


def test_the_feed_is_atom_1_0_element_by_element(app, client, reviewer, catalogue):
    decide(client, reviewer, "prp", "not_approved")
    response = client.get("/feed.atom")
    assert response.mimetype == "application/atom+xml"
    feed = etree.fromstring(response.get_data())
    assert feed.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):  # RFC 4287 4.1.1: exactly one each
        assert len(feed.findall(f"{ATOM}{name}")) == 1, name
    assert feed.find(f"{ATOM}author/{ATOM}name").text == app.config["CLINIC_NAME"]
    self_link = feed.find(f"{ATOM}link[@rel='self']")
    assert self_link.get("href") == "https://clinic.test/feed.atom"
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 4
    updated = []
    for entry in entries:
        for name in ("id", "title", "updated"):  # 4.1.2
            assert len(entry.findall(f"{ATOM}{name}")) == 1, name
        assert entry.find(f"{ATOM}content") is None
        assert (
            entry.find(f"{ATOM}link[@rel='alternate']")
            .get("href")
            .startswith("https://clinic.test/treatments/")
        )
        assert entry.find(f"{ATOM}summary").get("type") == "text"
        assert entry.find(f"{ATOM}id").text.startswith("tag:clinic.test,")
        updated.append(dt.datetime.strptime(entry.find(f"{ATOM}updated").text, RFC3339))
    dt.datetime.strptime(feed.find(f"{ATOM}updated").text, RFC3339)
    assert updated == sorted(updated, reverse=True)  # newest first
    newest = entries[0]
    assert newest.find(f"{ATOM}title").text == "Platelet-rich plasma: Not offered"
    assert newest.find(f"{ATOM}summary").text == "The clinic decided: not_approved."


def test_the_feed_is_valid_against_rfc_4287s_relax_ng_grammar(client, admin, catalogue):
    justification = "The board accepts this on the strength of the clinic's own audited outcomes."
    decide(client, admin, "prp", "approved", override_justification=justification)
    grammar = etree.RelaxNG(etree.parse(str(RFC_4287)))
    feed = etree.fromstring(client.get("/feed.atom").get_data())
    assert grammar.validate(feed), grammar.error_log
    feed.remove(feed.find(f"{ATOM}id"))  # and the grammar does refuse an invalid feed
    assert not grammar.validate(feed)


def test_feed_ids_are_stable_and_new_decisions_come_first(client, reviewer, catalogue):
    def ids():
        feed = etree.fromstring(client.get("/feed.atom").get_data())
        return [e.text for e in feed.iter(f"{ATOM}id")][1:]

    before = ids()
    decide(client, reviewer, "botox", "withdrawn")
    after = ids()
    assert after[1:] == before and after[0] not in before
    assert len(set(after)) == len(after)


def test_the_sitemap_lastmod_is_the_last_decision_or_review(client, reviewer, catalogue):
    def lastmods():
        root = etree.fromstring(client.get("/sitemap.xml").get_data())
        return {u.find(f"{SITEMAP}loc").text: u.find(f"{SITEMAP}lastmod").text for u in root}

    before = lastmods()
    assert set(before) == {"https://clinic.test/"} | {
        f"https://clinic.test/treatments/{slug}" for slug in ("botox", "exosomes", "prp")
    }
    decided = client.get("/v1/treatments/botox/decisions").get_json()[-1]["decided_at"]
    assert dt.datetime.fromisoformat(before["https://clinic.test/treatments/botox"]) == (
        dt.datetime.fromisoformat(decided).replace(microsecond=0)
    )
    client.post("/v1/treatments/exosomes/reviews", json={"note": "Checked again."}, headers=reviewer)
    after = lastmods()
    reviewed = client.get("/v1/treatments/exosomes/reviews").get_json()[-1]["reviewed_at"]
    assert dt.datetime.fromisoformat(after["https://clinic.test/treatments/exosomes"]) == (
        dt.datetime.fromisoformat(reviewed).replace(microsecond=0)
    )
    assert after["https://clinic.test/"] == max(after.values())
    assert after["https://clinic.test/treatments/botox"] == before["https://clinic.test/treatments/botox"]


def test_robots_txt_names_the_sitemap(client):
    response = client.get("/robots.txt")
    assert response.mimetype == "text/plain"
    assert "Sitemap: https://clinic.test/sitemap.xml" in response.get_data(as_text=True).splitlines()


# --- the widget script and configuration ---------------------------------------------------------


def test_the_widget_script_carries_the_public_base_url_and_the_pages_words(client):
    response = client.get("/widget.js")
    assert response.mimetype == "text/javascript"
    script = response.get_data(as_text=True)
    assert 'customElements.define("treatment-status"' in script
    assert '"https://clinic.test"' in script
    assert "Temporarily not offered" in script


def test_a_server_refuses_to_start_without_a_public_base_url(app, monkeypatch):
    monkeypatch.delenv("TPA_PUBLIC_BASE_URL")
    with pytest.raises(ConfigError, match="TPA_PUBLIC_BASE_URL is required"):
        create_app({"DATABASE_URL": app.config["DATABASE_URL"]})


@pytest.mark.parametrize("url", ["clinic.example", "ftp://clinic.example", "https://clinic.example/?a=1"])
def test_a_malformed_public_base_url_is_refused_at_start(app, url):
    with pytest.raises(ConfigError, match="absolute http"):
        create_app({"DATABASE_URL": app.config["DATABASE_URL"], "PUBLIC_BASE_URL": url})


def test_commands_need_no_public_base_url(app, monkeypatch):
    from click.testing import CliRunner
    from flask.cli import FlaskGroup

    monkeypatch.delenv("TPA_PUBLIC_BASE_URL")
    monkeypatch.setenv("DATABASE_URL", app.config["DATABASE_URL"])
    made = []
    cli = FlaskGroup(create_app=lambda: made.append(create_app()) or made[-1])
    try:
        result = CliRunner().invoke(cli, ["keys", "list"])
        assert result.exit_code == 0, result.output
    finally:
        for command_app in made:
            command_app.extensions["db_engine"].dispose()


def test_a_trailing_slash_on_the_base_url_is_not_doubled(app):
    slashed = create_app(
        {"DATABASE_URL": app.config["DATABASE_URL"], "PUBLIC_BASE_URL": "https://c.example/"}
    )
    try:
        robots = slashed.test_client().get("/robots.txt").get_data(as_text=True)
        assert "Sitemap: https://c.example/sitemap.xml" in robots
    finally:
        slashed.extensions["db_engine"].dispose()


def test_the_demo_catalogue_renders_every_page(app, client):
    from api.context import current_rules
    from api.db import get_session

    with app.app_context():
        load_catalogue(get_session(), current_rules(), demo=True)
    slugs = [t["slug"] for t in client.get("/v1/treatments?per_page=100").get_json()["items"]]
    for slug in slugs:
        assert client.get(f"/treatments/{slug}").status_code == 200, slug
