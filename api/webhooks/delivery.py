"""Webhook delivery: one pass of the outbox worker, the signing, the sending and the retry schedule.

It runs in its own process (`flask --app api webhooks deliver`), never in a request. A pass
repeats three short steps until nothing is due:

1. **Claim** the due head of each active subscription's queue (its pending delivery with the
   smallest event id) by leasing it: `next_attempt_at` moves to now + a lease, in a short
   transaction. On PostgreSQL the rows are selected `FOR UPDATE SKIP LOCKED`, so two workers
   never claim the same delivery and never wait on each other; the lease update is also
   conditional, so even two SQLite workers cannot both win a row.
2. **Send** the claimed deliveries, at most one per subscription, concurrently, outside any
   transaction: a receiver that hangs holds no lock and delays no other subscriber.
3. **Record** each outcome: delivered, or an attempt with its error and the next try on an
   exponential backoff with full jitter.

Requests go through `api.outbound`, which resolves the URL's host once, refuses it unless every
address is public (loopback only with WEBHOOKS_ALLOW_LOOPBACK_HTTP) and connects to the address it
checked. A refused URL is a failed attempt whose error says why; nothing is sent.

A subscription's later event waits until its earlier one is delivered or given up: in feed
order per subscription, at least once. A worker that dies mid-send leaves a lease that expires,
and the event is sent again; receivers deduplicate on `webhook-id`.
"""

from __future__ import annotations

import datetime as dt
import http.client
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, aliased
from standardwebhooks import Webhook

from api import outbound
from api.changes.models import ChangeEvent
from api.db import utcnow
from api.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookSubscription
from api.webhooks.service import give_up_pending

USER_AGENT = "TreatmentPolicyAPI-Webhooks/1"
MAX_ERROR_LENGTH = 1000


@dataclass(frozen=True)
class DeliverySettings:
    timeout_seconds: float = 5.0
    backoff_base_seconds: float = 30.0
    backoff_cap_seconds: float = 6 * 3600.0
    max_attempts: int = 12
    retry_window: dt.timedelta = dt.timedelta(hours=24)
    disable_after_failures: int = 20
    batch_size: int = 100
    max_parallel: int = 8
    allow_loopback: bool = False  # send to loopback addresses (development and tests)

    @property
    def lease(self) -> dt.timedelta:
        """How long a claimed delivery is reserved for the worker sending it."""
        return dt.timedelta(seconds=max(60.0, 6 * self.timeout_seconds))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DeliverySettings:
        return cls(
            timeout_seconds=float(config["WEBHOOKS_TIMEOUT_SECONDS"]),
            backoff_base_seconds=float(config["WEBHOOKS_BACKOFF_BASE_SECONDS"]),
            backoff_cap_seconds=float(config["WEBHOOKS_BACKOFF_CAP_SECONDS"]),
            max_attempts=int(config["WEBHOOKS_MAX_ATTEMPTS"]),
            retry_window=dt.timedelta(hours=float(config["WEBHOOKS_RETRY_WINDOW_HOURS"])),
            disable_after_failures=int(config["WEBHOOKS_DISABLE_AFTER_FAILURES"]),
            batch_size=int(config["WEBHOOKS_BATCH_SIZE"]),
            max_parallel=int(config["WEBHOOKS_MAX_PARALLEL"]),
            allow_loopback=bool(config["WEBHOOKS_ALLOW_LOOPBACK_HTTP"]),
        )


@dataclass(frozen=True)
class Message:
    """One claimed delivery, ready to sign and send."""

    delivery_id: int
    subscription_id: int
    url: str
    secret: str
    msg_id: str
    body: str


@dataclass(frozen=True)
class Outcome:
    status_code: int | None  # None: no answer (refused, timed out, TLS failure, ...)
    latency_ms: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class PassCounts:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    disabled: list[int] = field(default_factory=list)  # subscriptions deactivated in this pass

    def __bool__(self) -> bool:
        return bool(self.delivered or self.retrying or self.failed or self.disabled)

    def summary(self) -> str:
        return (
            f"delivered {self.delivered}, retrying {self.retrying}, failed {self.failed}, "
            f"subscriptions disabled {len(self.disabled)}"
        )


Sender = Callable[[str, dict[str, str], str, float], Outcome]


# --- the message -----------------------------------------------------------------------------


def message_id(event_id: int) -> str:
    """The `webhook-id`: the same for every attempt at one event, so receivers can deduplicate."""
    return f"evt_{event_id}"


def payload(event: ChangeEvent) -> str:
    """The body: Standard Webhooks' `type`, `timestamp` and `data` (the feed event's data)."""
    data = dict(event.data) | {"event_id": event.id, "treatment": event.treatment_slug}
    return orjson.dumps(
        {"type": event.event_type, "timestamp": event.occurred_at.isoformat(), "data": data}
    ).decode()


def signed_headers(secret: str, msg_id: str, body: str, at: dt.datetime) -> dict[str, str]:
    """Standard Webhooks headers. `at` is the send time: receivers refuse a timestamp more than
    five minutes away from their clock, which is what stops a captured request being replayed."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


def post(
    url: str, headers: dict[str, str], body: str, timeout: float, *,
    allow_loopback: bool = False, resolver: outbound.Resolver | None = None,
) -> Outcome:  # fmt: skip
    """POST `body` to `url`; 2xx is success. Redirects are not followed (a 3xx is a failure).
    A URL leading to an address that is not public is refused without a request (see api.outbound)."""
    started = time.monotonic()
    try:
        response = outbound.request(
            "POST", url, headers={"Content-Type": "application/json", "User-Agent": USER_AGENT} | headers,
            body=body.encode(), timeout=timeout, allow_loopback=allow_loopback, resolver=resolver,
        )  # fmt: skip
    except outbound.OutboundError as exc:
        return Outcome(None, _elapsed_ms(started), str(exc)[:MAX_ERROR_LENGTH])
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(None, _elapsed_ms(started), _describe(exc, timeout))
    status, reason = response.status, response.reason  # the status is all we need; the body is not read
    error = None if 200 <= status < 300 else f"HTTP {status} {reason}".strip()
    return Outcome(status, _elapsed_ms(started), error)


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]


# --- the schedule ----------------------------------------------------------------------------


def backoff_ceiling(attempt: int, settings: DeliverySettings) -> float:
    """The longest wait after failed attempt number `attempt` (1, 2, ...): base doubling, capped."""
    return min(settings.backoff_cap_seconds, settings.backoff_base_seconds * 2 ** min(attempt - 1, 40))


def retry_delay(attempt: int, settings: DeliverySettings, rng: random.Random) -> dt.timedelta:
    """Full jitter: anywhere between no wait and the ceiling, so receivers coming back up are
    not hit by every sender at once."""
    return dt.timedelta(seconds=rng.uniform(0, backoff_ceiling(attempt, settings)))


def gives_up(attempts: int, queued_at: dt.datetime, now: dt.datetime, settings: DeliverySettings) -> bool:
    """Failed for good once it has had `max_attempts` tries and waited the whole retry window
    (24 h by default), however the jitter fell."""
    return attempts >= settings.max_attempts and now >= queued_at + settings.retry_window


# --- the pass --------------------------------------------------------------------------------


def deliver_due(
    session: Session,
    now: dt.datetime | None = None,
    settings: DeliverySettings | None = None,
    *,
    send: Sender | None = None,
    rng: random.Random | None = None,
) -> PassCounts:
    """Send every delivery due at `now`, in feed order per subscription; return the counts.

    `now` decides what is due and when retries fall (tests pass a later `now` instead of
    sleeping); signatures always carry the real send time. `send` is `post` by default.
    """
    now = now or utcnow()
    settings = settings or DeliverySettings()
    send = send or partial(post, allow_loopback=settings.allow_loopback)
    rng = rng or random.SystemRandom()
    counts = PassCounts()
    resting: set[int] = set()  # failed in this pass: they wait for their next slot
    while messages := _claim(session, now, settings, resting):
        outcomes = _send_all(messages, settings, send)
        _record(session, messages, outcomes, now, settings, rng, counts, resting)
    return counts


def _claim(
    session: Session, now: dt.datetime, settings: DeliverySettings, resting: set[int]
) -> list[Message]:
    earlier = aliased(WebhookDelivery)
    is_head = ~exists().where(
        earlier.subscription_id == WebhookDelivery.subscription_id,
        earlier.state == DeliveryState.PENDING,
        earlier.event_id < WebhookDelivery.event_id,
    )
    due = (
        select(WebhookDelivery.id)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(
            WebhookSubscription.active.is_(True),
            WebhookDelivery.state == DeliveryState.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            is_head,
        )
        .order_by(WebhookDelivery.event_id)
        .limit(settings.batch_size)
        .with_for_update(of=WebhookDelivery, skip_locked=True)  # PostgreSQL; SQLite ignores it
    )
    if resting:
        due = due.where(WebhookDelivery.subscription_id.not_in(resting))
    ids = list(session.scalars(due))
    claimed = []
    if ids:
        lease = (
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id.in_(ids),
                WebhookDelivery.state == DeliveryState.PENDING,
                WebhookDelivery.next_attempt_at <= now,  # nobody claimed it meanwhile
            )
            .values(next_attempt_at=now + settings.lease)
            .returning(WebhookDelivery.id)
        )
        claimed = list(session.scalars(lease, execution_options={"synchronize_session": False}))
    if not claimed:
        session.rollback()  # end the read transaction: nothing to hold between passes
        return []
    rows = session.execute(
        select(WebhookDelivery.id, WebhookSubscription.id, WebhookSubscription.url,
               WebhookSubscription.secret, ChangeEvent)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .join(ChangeEvent, ChangeEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.id.in_(claimed))
        .order_by(WebhookDelivery.event_id)
    ).all()  # fmt: skip
    messages = [
        Message(delivery_id, subscription_id, url, secret, message_id(event.id), payload(event))
        for delivery_id, subscription_id, url, secret, event in rows
    ]
    session.commit()  # the leases hold from here; the row locks are released
    return messages


def _send_all(messages: list[Message], settings: DeliverySettings, send: Sender) -> list[Outcome]:
    def one(message: Message) -> Outcome:
        headers = signed_headers(message.secret, message.msg_id, message.body, utcnow())
        try:
            return send(message.url, headers, message.body, settings.timeout_seconds)
        except Exception as exc:  # a failed attempt like any other; the pass goes on
            return Outcome(None, 0, _describe(exc, settings.timeout_seconds))

    if len(messages) == 1:
        return [one(messages[0])]
    with ThreadPoolExecutor(max_workers=min(settings.max_parallel, len(messages))) as pool:
        return list(pool.map(one, messages))


def _record(
    session: Session, messages: list[Message], outcomes: list[Outcome], now: dt.datetime,
    settings: DeliverySettings, rng: random.Random, counts: PassCounts, resting: set[int],
) -> None:  # fmt: skip
    for message, outcome in sorted(zip(messages, outcomes, strict=True), key=lambda m: m[0].subscription_id):
        # Locked (PostgreSQL) and re-read: an admin may have just changed the subscription.
        subscription = session.get(
            WebhookSubscription, message.subscription_id, with_for_update=True, populate_existing=True
        )
        delivery = session.get(WebhookDelivery, message.delivery_id, populate_existing=True)
        if subscription is None or delivery is None:
            continue  # deleted while we were sending
        session.add(
            WebhookAttempt(delivery_id=delivery.id, attempted_at=now, status_code=outcome.status_code,
                           latency_ms=outcome.latency_ms, error=outcome.error)
        )  # fmt: skip
        delivery.attempts += 1
        if outcome.ok:
            delivery.state = DeliveryState.DELIVERED
            delivery.delivered_at = delivery.next_attempt_at = now  # (ends the lease)
            counts.delivered += 1
            if subscription.consecutive_failures:
                subscription.consecutive_failures = 0
            continue
        resting.add(subscription.id)
        subscription.consecutive_failures += 1
        if delivery.state != DeliveryState.PENDING:
            continue  # given up meanwhile (the subscription was deactivated)
        disable = subscription.active and subscription.consecutive_failures >= settings.disable_after_failures
        if disable or gives_up(delivery.attempts, delivery.created_at, now, settings):
            delivery.state = DeliveryState.FAILED
            delivery.next_attempt_at = now
            counts.failed += 1
        else:
            delivery.next_attempt_at = now + retry_delay(delivery.attempts, settings, rng)
            counts.retrying += 1
        if disable:
            _disable(session, subscription, outcome)
            counts.disabled.append(subscription.id)
    session.commit()


def _disable(session: Session, subscription: WebhookSubscription, outcome: Outcome) -> None:
    subscription.active = False
    subscription.disabled_reason = (
        f"Disabled after {subscription.consecutive_failures} consecutive failed attempts; "
        f"the last: {outcome.error or 'no answer'}."
    )[:500]
    session.flush()
    give_up_pending(session, subscription.id)
