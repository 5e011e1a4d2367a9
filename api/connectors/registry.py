"""The booking systems a connector can drive: one module each, listed here once."""

from __future__ import annotations

from collections.abc import Mapping

from api.connectors.base import BookingSystem, Http, HttpSettings
from api.connectors.cliniko import Cliniko
from api.connectors.square import Square

SYSTEMS: dict[str, type[BookingSystem]] = {cls.system: cls for cls in (Square, Cliniko)}


def open_system(
    system: str, base_url: str, credentials: Mapping[str, str], settings: HttpSettings
) -> BookingSystem:
    """A system's client for one connector; its requests are kept in `client.http.calls`."""
    cls = SYSTEMS[system]
    http = Http(base_url, cls.auth_headers(credentials), settings, cls.title)
    return cls(http)  # type: ignore[call-arg]
