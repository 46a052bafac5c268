"""Events: the one shape every source feeds into the correlator."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from monitord.model import Status


class EventKind(StrEnum):
    PROBLEM = "problem"
    RECOVERY = "recovery"
    FLAP_START = "flap_start"
    FLAP_STOP = "flap_stop"
    INFO = "info"  # recorded on the timeline, never opens an incident (a reboot trap)


@dataclass(frozen=True, slots=True)
class Event:
    ts: float
    source: str  # check | rmm | trap | heartbeat | ingest | monitord (internal)
    kind: EventKind
    fingerprint: str
    customer: str | None
    device_id: str | None
    check_id: str | None
    status: Status
    message: str
    category: str = ""  # open set: host-down, service-down, backup-failed, disk-full, ...


def fingerprint(customer: str | None, device_id: str | None, problem: str) -> str:
    """Source-independent identity of a problem: the same fault reported by two
    sources (or twice by one) yields the same fingerprint."""
    raw = f"{customer or '-'}\x1f{device_id or '-'}\x1f{problem}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def check_fingerprint(customer: str | None, device_id: str, check_name: str) -> str:
    """The identity of the problem one of monitord's checks reports. Another source
    that has verified it sees the same fault (an RMM failure confirmed by this
    check) uses it too, so both land on one incident."""
    return fingerprint(customer, device_id, f"check:{check_name}")


INTERNAL = "internal"
"""The category of monitord's own problems (a ticket system or an RMM feed gone)."""


def internal_event(key: str, message: str, *, ok: bool, ts: float) -> Event:
    """A problem (or its recovery) of monitord itself, identified by `key`
    ("ticket-system:zammad"): raising it again while open changes nothing, and a
    recovery of one that is not open is a no-op."""
    return Event(
        ts,
        "monitord",
        EventKind.RECOVERY if ok else EventKind.PROBLEM,
        fingerprint(None, None, f"{INTERNAL}:{key}"),
        None,
        None,
        None,
        Status.OK if ok else Status.CRITICAL,
        message,
        category=INTERNAL,
    )
