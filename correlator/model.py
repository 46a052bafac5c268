"""The correlator's in-memory records: incidents, their members, and what a batch changed.

The correlator keeps open (and recently resolved) incidents in memory for
speed and writes every change, and the reason for it, to the database in the
writer's transaction; on start it loads them back, so a restart neither
forgets a suppression nor repeats a notification.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from correlator.events import Event

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"


@dataclass(slots=True)
class Member:
    """A check (or device) attached to an outage or storm incident."""

    key: str  # check id, or "device:<id>" for events without a check
    device_id: str | None
    state: str  # failing | unreachable | recovered
    since: float
    message: str = ""


@dataclass(slots=True)
class Incident:
    id: int
    fingerprint: str
    kind: str  # check | outage | storm | unknown-device | event | internal
    state: str
    priority: str
    severity: int
    title: str
    customer: str | None
    site: str | None
    device_id: str | None
    check_id: str | None
    category: str
    opened_at: float
    updated_at: float
    resolved_at: float | None = None
    notify_at: float | None = None  # when its grouped notification is due
    wait_started: float | None = None  # first time a suspect parent held it back
    notified: bool = False  # a trigger went out, so a resolve must go out too
    ever_notified: bool = False  # notified once: a return is a "reopen", not a new trigger
    told_members: int = 0  # affected devices the last notification told of
    told_at: float | None = None  # when an "update" about members last went out
    parent_id: int | None = None  # folded into an outage or storm incident
    muted_by: str = ""
    flapping: bool = False
    reason: str = ""
    acked_by: str | None = None
    acked_at: float | None = None
    members: dict[str, Member] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.state != RESOLVED


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One decision on an incident's timeline: what acted on it and why."""

    incident_id: int
    ts: float
    actor: str
    action: str
    detail: str


@dataclass(frozen=True, slots=True)
class Notification:
    """A ticket/page operation the correlator asks for (queued in the outbox)."""

    incident: int
    action: str  # trigger | reopen | update | resolve | acknowledge
    ts: float
    priority: str
    title: str
    customer: str | None
    device_id: str | None
    message: str
    changes: tuple[str, ...] = ()  # update: what changed (priority, members, verdict)


@dataclass
class Changes:
    """Everything one batch changed, for the store to write in one transaction."""

    incidents: dict[int, Incident] = field(default_factory=dict)  # dirty, by id
    members: list[tuple[int, Member]] = field(default_factory=list)
    log: list[LogEntry] = field(default_factory=list)
    events: list[tuple[Event, int | None]] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    rechecks: set[str] = field(default_factory=set)  # device ids whose checks to run now

    def touch(self, incident: Incident) -> None:
        self.incidents[incident.id] = incident

    def __bool__(self) -> bool:
        return bool(self.incidents or self.log or self.events or self.notifications)
