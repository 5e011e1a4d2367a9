"""Explanation rendering (api.treatments.markdown): Markdown in, harmless HTML out."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from api.treatments.markdown import render_explanation

SAFE_TAGS = {
    "a", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "ol", "p",
    "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
SAFE_SCHEMES = {"", "http", "https", "mailto"}


class Elements(HTMLParser):
    """Every element of a fragment, as (tag, {attribute: value})."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {name: value or "" for name, value in attrs}))

    def tags(self) -> list[str]:
        return [tag for tag, _ in self.elements]

    def links(self) -> list[dict[str, str]]:
        return [attrs for tag, attrs in self.elements if tag == "a"]


def scheme(href: str) -> str:
    # Browsers drop ASCII tab and newline anywhere in a URL and surrounding whitespace/controls.
    cleaned = "".join(ch for ch in href if ch not in "\t\n\r").strip("\x00\x01\x02\x03 \x0b\x0c")
    return urlsplit(cleaned).scheme.lower()


def assert_harmless(html: str) -> None:
    elements = Elements(html)
    unsafe = [tag for tag in elements.tags() if tag not in SAFE_TAGS]
    assert not unsafe, html
    handlers = [name for _, attrs in elements.elements for name in attrs if name.lower().startswith("on")]
    assert not handlers, html
    for attrs in elements.links():
        assert scheme(attrs.get("href", "")) in SAFE_SCHEMES, html
        assert "noopener" in attrs.get("rel", "").split(), html
    assert "<script" not in html.lower(), html
    assert "<img" not in html.lower(), html


HOSTILE = [
    ("script-tag", "<script>alert(1)</script>"),
    ("script-tag-upper-case", "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>"),
    ("script-in-html-block", "<div>\n<script>alert(1)</script>\n</div>"),
    ("script-after-text", "Hello\n\n<script>document.cookie</script>\n\nbye"),
    ("script-in-emphasis", "*<script>alert(1)</script>*"),
    ("img-onerror", "<img src=x onerror=alert(1)>"),
    ("svg-onload", "<svg onload=alert(1)>"),
    ("body-onload", "<body onload=alert(1)>"),
    ("anchor-onclick", '<a href="https://example.org" onclick="steal()">x</a>'),
    ("anchor-javascript-href", '<a href="javascript:alert(1)">x</a>'),
    ("iframe", '<iframe src="https://evil.example"></iframe>'),
    ("iframe-srcdoc", '<iframe srcdoc="<script>alert(1)</script>"></iframe>'),
    ("style-tag", "<style>body{background:url(javascript:alert(1))}</style>"),
    ("object-embed", '<object data="x.swf"></object><embed src="x.swf">'),
    ("form", '<form action="https://evil.example"><input name=p></form>'),
    ("meta-refresh", '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">'),
    ("inline-html-in-paragraph", "Text <b onmouseover=alert(1)>bold</b> text"),
    ("html-comment", "<!-- <script>alert(1)</script> -->"),
    ("markdown-javascript-link", "[click](javascript:alert(1))"),
    ("markdown-javascript-link-mixed-case", "[click](JaVaScRiPt:alert(1))"),
    ("markdown-javascript-link-angle", "[click](<javascript:alert(1)>)"),
    ("markdown-javascript-link-entity-tab", "[click](java&#x09;script:alert(1))"),
    ("markdown-javascript-link-entity-colon", "[click](javascript&colon;alert(1))"),
    ("markdown-javascript-link-percent", "[click](javascript%3Aalert(1))"),
    ("markdown-javascript-reference-link", "[click][x]\n\n[x]: javascript:alert(1)"),
    ("markdown-javascript-autolink", "<javascript:alert(1)>"),
    ("markdown-data-link", "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)"),
    ("markdown-data-image", "![x](data:image/png;base64,iVBORw0KGgo=)"),
    ("markdown-image-onerror", '![x](https://example.org/x.png "t" onerror="alert(1)")'),
    ("markdown-vbscript-link", "[click](vbscript:msgbox(1))"),
    ("markdown-file-link", "[click](file:///etc/passwd)"),
    ("markdown-link-title-attribute-injection", '[x](https://example.org "a\\" onclick=\\"alert(1)")'),
    ("markdown-link-quote-breakout", '[x](https://example.org/"onmouseover="alert(1))'),
    ("html-inside-code-span", "`<script>alert(1)</script>`"),
    ("html-inside-fenced-code", "```html\n<script>alert(1)</script>\n```"),
    ("table-with-html", "| a | b |\n|---|---|\n| <img src=x onerror=alert(1)> | <script>x</script> |"),
]


@pytest.mark.parametrize("markdown", [pytest.param(text, id=name) for name, text in HOSTILE])
def test_hostile_input_is_rendered_harmless(markdown):
    assert_harmless(render_explanation(markdown))


@pytest.mark.parametrize(
    ("markdown", "forbidden"),
    [
        pytest.param("[click](javascript:alert(1))", "javascript:", id="javascript"),
        pytest.param("[click](JaVaScRiPt:alert(1))", "javascript:", id="javascript-mixed-case"),
        pytest.param("[click](data:text/html;base64,PHNjcmlwdD4=)", "data:", id="data"),
        pytest.param("[click](vbscript:msgbox(1))", "vbscript:", id="vbscript"),
        pytest.param('<a href="javascript:alert(1)">x</a>', "javascript:", id="raw-anchor"),
    ],
)
def test_dangerous_links_never_become_hrefs(markdown, forbidden):
    links = Elements(render_explanation(markdown)).links()
    assert all(forbidden not in link.get("href", "").lower() for link in links)


@pytest.mark.parametrize(
    ("markdown", "tag", "text"),
    [
        pytest.param("<b onmouseover=alert(1)>bold</b>", "b", "bold", id="inline-tag"),
        pytest.param("<div onclick=steal()>block</div>", "div", "block", id="block-tag"),
        pytest.param("<span style='x'>span</span> after", "span", "after", id="span"),
    ],
)
def test_raw_html_never_becomes_an_element(markdown, tag, text):
    # Escaped or removed are both fine; what matters is that the tag is not live and the prose survives.
    html = render_explanation(markdown)
    assert tag not in Elements(html).tags()
    assert text in html
    assert_harmless(html)


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        pytest.param("# Title", ["h1"], id="h1"),
        pytest.param("## Subtitle", ["h2"], id="h2"),
        pytest.param("### Section", ["h3"], id="h3"),
        pytest.param("*soft*", ["p", "em"], id="em"),
        pytest.param("**strong**", ["p", "strong"], id="strong"),
        pytest.param("- one\n- two", ["ul", "li", "li"], id="unordered-list"),
        pytest.param("1. one\n2. two", ["ol", "li", "li"], id="ordered-list"),
        pytest.param("> quoted", ["blockquote", "p"], id="blockquote"),
        pytest.param("`code`", ["p", "code"], id="inline-code"),
        pytest.param("```\nx = 1\n```", ["pre", "code"], id="fenced-code"),
        pytest.param("a\n\n---\n\nb", ["p", "hr", "p"], id="rule"),
        pytest.param("| a |\n|---|\n| 1 |", ["table", "thead", "tr", "th", "tbody", "tr", "td"], id="table"),
    ],
)
def test_safe_formatting_is_kept(markdown, expected):
    assert Elements(render_explanation(markdown)).tags() == expected


@pytest.mark.parametrize(
    ("markdown", "href", "text"),
    [
        pytest.param("[PubMed](https://pubmed.gov/1/)", "https://pubmed.gov/1/", "PubMed", id="https-link"),
        pytest.param("<https://example.org/a>", "https://example.org/a", "https://example.org/a", id="auto"),
        pytest.param('[FDA](https://www.fda.gov "The FDA")', "https://www.fda.gov", "FDA", id="with-title"),
        pytest.param("[x](http://example.org)", "http://example.org", "x", id="http-link"),
        pytest.param("[mail](mailto:clinic@example.org)", "mailto:clinic@example.org", "mail", id="mailto"),
    ],
)
def test_safe_links_are_kept_with_noopener(markdown, href, text):
    html = render_explanation(markdown)
    (link,) = Elements(html).links()
    assert link["href"] == href
    assert "noopener" in link["rel"].split()
    assert f">{text}</a>" in html


def test_a_full_explanation_keeps_its_structure():
    markdown = (
        "# Exosomes\n\n"
        "We do **not** offer this, *yet*.\n\n"
        "- no human trials\n"
        "- no approval\n\n"
        "See [the review](https://example.org/review).\n"
    )
    html = render_explanation(markdown)
    assert Elements(html).tags() == ["h1", "p", "strong", "em", "ul", "li", "li", "p", "a"]
    assert "<h1>Exosomes</h1>" in html
    assert "<strong>not</strong>" in html
    assert "<li>no human trials</li>" in html
    assert_harmless(html)


def test_empty_input_renders_empty():
    assert render_explanation("").strip() == ""
