"""Cliniko: a service is an appointment type; offered online while its `show_in_online_bookings`
is true. The mapping is the treatment's `external_ids["cliniko"]`: the appointment type's id.

Cliniko's API (docs.api.cliniko.com): HTTP Basic with the API key as the user name and an empty
password; a `User-Agent` naming the app and a contact email is required; the host is
`api.<shard>.cliniko.com`, the shard being the key's suffix after its last `-` (`au1`, `uk1`, ...).
A switch is one `PATCH /appointment_types/{id}` of that one field, so nothing else about the type
can be overwritten. Cliniko has no webhooks: drift is found by the connector's timed full pass.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

from api.connectors.base import ConnectorError, Http, error_detail

PER_PAGE = 100
SHARD_SUFFIX = "-[a-z0-9]*[a-z][a-z0-9]*$"
MAX_PAGES = 100  # 10,000 appointment types: far more than any clinic has


class Cliniko:
    system: ClassVar[str] = "cliniko"
    title: ClassVar[str] = "Cliniko"
    credential_fields: ClassVar[tuple[str, ...]] = ("api_key", "user_agent")
    # Every key names its shard (`shard`): Cliniko's keys end in it.
    credential_patterns: ClassVar[dict[str, str]] = {"api_key": r"^[^\x00-\x1f\x7f-\x9f]+" + SHARD_SUFFIX}

    def __init__(self, http: Http):
        self.http = http

    @staticmethod
    def default_base_url(credentials: Mapping[str, str]) -> str:
        return f"https://api.{shard(credentials['api_key'])}.cliniko.com/v1"

    @staticmethod
    def auth_headers(credentials: Mapping[str, str]) -> dict[str, str]:
        basic = base64.b64encode(f"{credentials['api_key']}:".encode()).decode()
        return {"Authorization": f"Basic {basic}", "User-Agent": credentials["user_agent"]}

    def read(self, external_ids: Sequence[str]) -> dict[str, bool]:
        wanted, online = set(external_ids), {}
        for page in range(1, MAX_PAGES + 1):
            reply = self.http.send("GET", f"/appointment_types?per_page={PER_PAGE}&page={page}")
            if not reply.ok:
                raise ConnectorError(
                    f"Cliniko refused to list the appointment types ({reply.status}): {_detail(reply.body)}"
                )
            types = (reply.body or {}).get("appointment_types") or []
            for kind in types:
                if str(kind.get("id")) in wanted and not kind.get("archived_at"):
                    online[str(kind["id"])] = kind.get("show_in_online_bookings") is True
            if len(types) < PER_PAGE:
                break
        return online

    def switch(self, external_id: str, online: bool) -> bool:
        path = f"/appointment_types/{quote(external_id, safe='')}"
        reply = self.http.send("PATCH", path, {"show_in_online_bookings": online})
        if reply.status == 404:
            return False
        if not reply.ok:
            raise ConnectorError(
                f"Cliniko refused to update {external_id} ({reply.status}): {_detail(reply.body)}"
            )
        return True


def shard(api_key: str) -> str:
    """The shard a Cliniko API key belongs to: its suffix after the last `-` (`au1`, `uk1`, ...)."""
    if not re.search(SHARD_SUFFIX, api_key):
        raise ValueError("The API key has no shard suffix (such as -au1); give the base_url instead.")
    return api_key.rpartition("-")[2]


def _detail(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("errors"), dict):  # Cliniko: {"errors": {field: [..]}}
        return "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in body["errors"].items())[:1000]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"][:1000]
    return error_detail(body)
