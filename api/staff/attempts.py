"""Failed sign-ins, counted per account and client address.

Over `CONSOLE_SIGN_IN_LIMIT`, that account from that address waits until the window ends, even
with the right password (else the limit would not stop guessing). Nobody else is locked out: the
same person from another address, and other people from the same address (an office behind one
proxy), sign in as usual. Counted in the rate limits' storage (Redis in production, so the count
holds across workers; memory is per process). The count is kept whether or not the API's rate
limits are switched on: this is a guard against guessing, not traffic shaping.
"""

from __future__ import annotations

import hashlib
import logging
import time

from flask import current_app
from limits import parse

from api.ratelimit import rate_limits
from api.staff.service import normalise_email

log = logging.getLogger(__name__)
SCOPE = "console-sign-in"


def _key(email: str, address: str | None) -> str:
    account = hashlib.sha256(normalise_email(email).encode()).hexdigest()[:32]
    return f"{account}|{address or 'unknown'}"


def wait_seconds(email: str, address: str | None) -> int:
    """How long this account must wait before trying again from this address (0: go ahead)."""
    limits = rate_limits()
    item = parse(current_app.config["CONSOLE_SIGN_IN_LIMIT"])
    try:
        if limits.counter.test(item, limits.prefix, SCOPE, _key(email, address)):
            return 0
        reset, _remaining = limits.counter.get_window_stats(item, limits.prefix, SCOPE, _key(email, address))
    except Exception:  # the storage's own errors: fail closed would lock everyone out; log it
        log.warning("rate-limit storage unreachable; sign-in attempts not checked", exc_info=True)
        return 0
    return max(1, int(reset - time.time()) + 1)


def note_failure(email: str, address: str | None) -> None:
    limits = rate_limits()
    item = parse(current_app.config["CONSOLE_SIGN_IN_LIMIT"])
    try:
        limits.counter.hit(item, limits.prefix, SCOPE, _key(email, address))
    except Exception:
        log.warning("rate-limit storage unreachable; failed sign-in not counted", exc_info=True)
