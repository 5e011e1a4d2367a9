"""What a connector should do: the desired state of each mapped service, as moves. Pure.

The rules (README "Connecting the booking system"):
- a treatment that is not bookable has its service switched off for online booking, and the
  connector remembers that it did so (`HIDE`);
- a service the connector switched off that is on again, while the treatment is still not
  bookable, is switched off again and the drift recorded (`CORRECT_DRIFT`);
- a service the connector switched off is switched back on when the treatment is bookable again
  (`RESTORE`); if someone already switched it on, the connector only forgets it (`FORGET`);
- a service the connector did not switch off is never switched on: staff switched it off, or it
  never was on;
- a treatment with no mapping, a mapping to nothing, and a service the connector hid whose mapping
  was since removed, are reported and left alone (the last stays off: fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Move(StrEnum):
    HIDE = "hide"
    CORRECT_DRIFT = "correct_drift"
    RESTORE = "restore"
    FORGET = "forget"


SWITCH_TO = {Move.HIDE: False, Move.CORRECT_DRIFT: False, Move.RESTORE: True}  # FORGET sends nothing


@dataclass(frozen=True)
class Wanted:
    """A treatment as the connector sees it: its mapped service id (None: unmapped) and its bookability."""

    slug: str
    external_id: str | None
    bookable: bool


@dataclass(frozen=True)
class Step:
    move: Move
    slug: str
    external_id: str


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    in_step: list[str] = field(default_factory=list)  # slugs already as they should be
    unmapped: list[str] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (slug, id) naming no service
    orphaned: list[tuple[str, str]] = field(default_factory=list)  # hidden by us, mapping since removed


def plan(wanted: Sequence[Wanted], online: Mapping[str, bool], hidden: Mapping[str, str]) -> Plan:
    """Moves for `wanted`, given which services are `online` now (id → offered online; an id left
    out names no service) and which the connector `hidden` (id → slug) and still remembers.
    `hidden` holds only the entries for the treatments in `wanted`."""
    result = Plan()
    mapped: set[str] = set()
    for treatment in wanted:
        service_id = treatment.external_id
        if service_id is None:
            result.unmapped.append(treatment.slug)
            continue
        mapped.add(service_id)
        if service_id not in online:
            result.missing.append((treatment.slug, service_id))
            continue
        ours, on = service_id in hidden, online[service_id]
        move = _move(treatment.bookable, on, ours)
        if move is None:
            result.in_step.append(treatment.slug)
        else:
            result.steps.append(Step(move, treatment.slug, service_id))
    result.orphaned = [(slug, service_id) for service_id, slug in hidden.items() if service_id not in mapped]
    return result


def _move(bookable: bool, online: bool, ours: bool) -> Move | None:
    if not bookable:
        if online:
            return Move.CORRECT_DRIFT if ours else Move.HIDE
        return None  # off already: by us (remembered) or by staff (never ours to switch on)
    if ours:
        return Move.RESTORE if not online else Move.FORGET
    return None
