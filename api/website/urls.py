"""Public URLs, built from `PUBLIC_BASE_URL` only: never from a request's Host header or scheme.

Canonical links, OpenGraph, the sitemap, the feed, every JSON-LD `url` (the API's too) and the
links inside the pages come from here, so a clinic that serves the pages under its own domain,
through its proxy, sets that domain once and every URL follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from flask import current_app

from api.config import ConfigError


@dataclass(frozen=True)
class PublicUrls:
    base: str  # no trailing slash

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def authority(self) -> str:
        """The base URL's host name: the authority of the feed's `tag:` ids (RFC 4151)."""
        return urlsplit(self.base).hostname or ""

    def home(self) -> str:
        return self.base + "/"

    def treatment(self, slug: str) -> str:
        return f"{self.base}/treatments/{quote(slug)}"

    def feed(self) -> str:
        return self.base + "/feed.atom"

    def sitemap(self) -> str:
        return self.base + "/sitemap.xml"

    def widget(self) -> str:
        return self.base + "/widget.js"

    def asset(self, name: str) -> str:
        return f"{self.base}/website/static/{name}"


def public_urls() -> PublicUrls:
    """The app's public URLs; only a server that was given `TPA_PUBLIC_BASE_URL` can build them."""
    base = current_app.config["PUBLIC_BASE_URL"]
    if not base:
        raise ConfigError("TPA_PUBLIC_BASE_URL is not set, so no public URL can be built.")
    return PublicUrls(base)
