"""What the paging stages share: the decisions' inputs (`Env`), what a transaction
decided for the event loop to apply (`Outcome`), and the incident timeline entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, insert

from correlator.calendar import Calendars
from monitord.config.model import Config
from monitord.config.oncall import OncallConfig
from monitord.storage.schema import incident_log

ACTOR = "paging"


def engineer_target(name: str) -> str:
    return f"engineer:{name}"


@dataclass
class Outcome:
    """What a transaction decided that the daemon applies on its event loop."""

    internal: list[tuple[str, str, bool]] = field(default_factory=list)  # key, message, ok
    unack: list[tuple[int, str]] = field(default_factory=list)  # incident, why
    escalations: list[str] = field(default_factory=list)  # policies that escalated a step
    acked: list[float] = field(default_factory=list)  # seconds from first page to ack
    summaries: int = 0
    paged: bool = False  # outbox rows were written

    def merge(self, other: Outcome) -> None:
        self.internal += other.internal
        self.unack += other.unack
        self.escalations += other.escalations
        self.acked += other.acked
        self.summaries += other.summaries
        self.paged = self.paged or other.paged


@dataclass(frozen=True)
class Env:
    """What the paging decisions read: the running config, the effective on-call
    (config + stored overrides), business calendars, and why an incident is muted."""

    config: Config
    oncall: OncallConfig
    calendars: Calendars
    muted: Callable[[int, float], str]
    public_url: str | None


def log_entry(conn: Connection, incident_id: int, now: float, action: str, detail: str) -> None:
    conn.execute(
        insert(incident_log).values(
            incident_id=incident_id, ts=now, actor=ACTOR, action=action, detail=detail[:2000]
        )
    )


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
