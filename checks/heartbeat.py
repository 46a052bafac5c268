"""Heartbeat (passive) check: a job pings us, we notice when it stops.

Modelled on healthchecks.io: a check expects a success ping every `period`
(or at every run of a cron `schedule` in a time zone) and allows `grace` on
top before it is late. `/start` opens a run that must finish (success or
fail) within `grace`; `/fail` is CRITICAL until the next success. A check
that has never been pinged gets one period (or cron run) plus grace from its
creation, so adding a check does not page at once.

The check does no I/O: the daemon's heartbeat book (`services["heartbeats"]`,
filled by the HTTP endpoint and the database) holds what was received, and
`evaluate` is a pure function of (params, record, now), table-tested. Cron
runs are computed in the job's local zone and compared in UTC, so DST days
(23 or 25 hours) move the deadline exactly as the job's own cron does.

The token is a secret: it is never put into a message, and it is looked up
by its SHA-256 (`token_key`), which is also the only form logs may show.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Protocol, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from checks.base import BaseCheck, CheckContext, CheckParams
from monitord.config.types import Duration, Secret
from monitord.model import CheckResult, Perf, Target, critical, ok, unknown

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{20,200}")
DEFAULT_TZ = "Europe/Prague"
# How much of a fail body goes into the one-line check message (the stored
# excerpt is longer; the message ends up in tickets and pages).
MESSAGE_EXCERPT = 160
# Any fixed aware instant serves to validate a cron expression at config load.
_PROBE = datetime(2000, 1, 1, tzinfo=UTC)


def token_key(token: str) -> str:
    """The SHA-256 hex digest of a token: the book's index key, and the only
    form of a token that may appear in a log line (shortened)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _check_token(value: SecretStr) -> SecretStr:
    # The message must not echo the value: config errors are printed and logged.
    if not TOKEN_PATTERN.fullmatch(value.get_secret_value()):
        raise ValueError(
            "token must be 20 to 200 characters of letters, digits, '_' or '-' "
            "(e.g. from `openssl rand -hex 20`)"
        )
    return value


Token = Annotated[Secret, AfterValidator(_check_token)]


class PingKind(StrEnum):
    """The three signals a job sends; the values are stored, never renamed."""

    SUCCESS = "success"
    START = "start"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Ping:
    """One received signal: what, when (UTC epoch seconds), the body excerpt."""

    kind: PingKind
    at: float
    body: str = ""


@dataclass(frozen=True, slots=True)
class HeartbeatRecord:
    """What is known about one heartbeat check, as kept by the book.

    `last` is the newest signal of any kind, `outcome` the newest success or
    fail (it decides failed vs ok), `last_success_at` is where lateness is
    measured from, and `started_at` is an open `/start` not yet finished.
    """

    created_at: float
    last: Ping | None = None
    outcome: Ping | None = None
    last_success_at: float | None = None
    started_at: float | None = None


def apply_ping(record: HeartbeatRecord, ping: Ping) -> HeartbeatRecord:
    """The record after `ping` (pure). Success and fail close an open start."""
    if ping.kind is PingKind.START:
        return replace(record, last=ping, started_at=ping.at)
    if ping.kind is PingKind.SUCCESS:
        return replace(record, last=ping, outcome=ping, last_success_at=ping.at, started_at=None)
    return replace(record, last=ping, outcome=ping, started_at=None)


class HeartbeatSource(Protocol):
    """What the check needs from the daemon's heartbeat book."""

    def record(self, key: str) -> HeartbeatRecord | None:
        """The record of the check whose token hashes to `key`, if registered."""
        ...


class HeartbeatParams(CheckParams):
    """Parameters of a `heartbeat` check.

    Exactly one of `period` (a job every N) or `schedule` (a 5-field cron
    expression, evaluated in `tz`, default Europe/Prague). `grace` is the
    slack after each expected ping, and also how long a started run may take.
    """

    token: Token
    period: Duration | None = Field(default=None, gt=0)
    schedule: str | None = None
    tz: str = DEFAULT_TZ
    grace: Duration = Field(default=3600.0, ge=0)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value.split()) != 5:
            raise ValueError(f"schedule must be a 5-field cron expression, got {value!r}")
        try:
            next(CronSim(value, _PROBE))
        except CronSimError as exc:
            raise ValueError(f"bad cron expression {value!r}: {str(exc).lower()}") from None
        except StopIteration:
            raise ValueError(f"cron expression {value!r} never fires") from None
        return value

    @field_validator("tz")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (expected e.g. 'Europe/Prague')"
            ) from None
        return value

    @model_validator(mode="after")
    def _one_timing(self) -> Self:
        if (self.period is None) == (self.schedule is None):
            raise ValueError("give either period (e.g. '1d') or schedule (a cron expression)")
        if self.period is not None and "tz" in self.model_fields_set:
            raise ValueError("tz applies only to a cron schedule, not to period")
        return self

    def exclusive_key(self) -> tuple[str, str]:
        """(field, key) no other check may share: the token, by its hash (the
        config validator reports a token used twice without printing it)."""
        return "token", token_key(self.token.get_secret_value())

    def next_due(self, after: float) -> float:
        """When the next ping is expected after one at `after` (epoch seconds):
        `after + period`, or the schedule's next run strictly after `after`,
        found on the local wall clock of `tz` (so DST is the job's DST)."""
        if self.period is not None:
            return after + self.period
        assert self.schedule is not None
        local = datetime.fromtimestamp(after, tz=ZoneInfo(self.tz))
        return next(CronSim(self.schedule, local)).timestamp()

    def expectation(self) -> str:
        """`every 1d` or `at '0 3 * * *' Europe/Prague`, for messages."""
        if self.period is not None:
            return f"every {format_duration(self.period)}"
        return f"at {self.schedule!r} {self.tz}"


def format_duration(seconds: float) -> str:
    """Seconds in the config's own notation: 86400 → `1d`, 5400 → `90m`."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def iso(ts: float) -> str:
    """UTC epoch seconds as `2026-03-29T01:00:00Z`."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def excerpt(body: str, limit: int = MESSAGE_EXCERPT) -> str:
    """A body squeezed onto one line and cut to `limit` characters."""
    flat = " ".join(body.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def evaluate(params: HeartbeatParams, record: HeartbeatRecord, now: float) -> CheckResult:
    """The check's verdict at `now` (pure). In order: a reported failure, a
    start that did not finish within grace, lateness, and otherwise OK."""
    perf = _perf(params, record, now)
    grace = format_duration(params.grace)
    outcome = record.outcome
    if outcome is not None and outcome.kind is PingKind.FAIL:
        detail = excerpt(outcome.body)
        message = f"job reported failure at {iso(outcome.at)}" + (f": {detail}" if detail else "")
        return critical(message, *perf)
    started = record.started_at
    if started is not None and now >= started + params.grace:
        return critical(f"started at {iso(started)} but never finished (grace {grace})", *perf)
    reference = record.last_success_at
    due = params.next_due(record.created_at if reference is None else reference)
    deadline = due + params.grace
    if now >= deadline:
        since = (
            f"the check was created at {iso(record.created_at)}"
            if reference is None
            else iso(reference)
        )
        return critical(
            f"no heartbeat since {since}, expected {params.expectation()} (+{grace} grace)", *perf
        )
    return ok(_ok_message(record, now, due, deadline), *perf)


def _ok_message(record: HeartbeatRecord, now: float, due: float, deadline: float) -> str:
    if record.started_at is not None:
        return f"job running since {iso(record.started_at)}"
    if now >= due:
        return f"heartbeat late since {iso(due)}, within grace until {iso(deadline)}"
    if record.last_success_at is None:
        return f"waiting for the first heartbeat, expected by {iso(due)}"
    return f"last heartbeat at {iso(record.last_success_at)}, next expected by {iso(due)}"


def _perf(params: HeartbeatParams, record: HeartbeatRecord, now: float) -> tuple[Perf, ...]:
    if record.last is None:
        return ()
    crit = None if params.period is None else format(params.period + params.grace, "g")
    return (Perf("since_last_ping", max(0.0, now - record.last.at), "s", None, crit, 0.0),)


class HeartbeatCheck(BaseCheck):
    """Judges pings the daemon received; see the module docstring."""

    kind: ClassVar[str] = "heartbeat"
    Params: ClassVar[type[CheckParams]] = HeartbeatParams
    # A missing heartbeat is already confirmed by its grace time: no retries,
    # and a 30 s look is enough to notice a deadline passing.
    timing_defaults: ClassVar[Mapping[str, Any]] = {"max_attempts": 1, "interval": 30.0}

    def __init__(self) -> None:
        self._now: Callable[[], float] = CheckContext().now
        self._book: HeartbeatSource | None = None

    async def start(self, context: CheckContext | None = None) -> None:
        context = context or CheckContext()
        self._now = context.now
        self._book = context.services.get("heartbeats")

    async def run(self, target: Target, params: Any, timeout: float) -> CheckResult:
        if self._book is None:
            return unknown("the daemon provides no heartbeat book to this check")
        record = self._book.record(token_key(params.token.get_secret_value()))
        if record is None:
            return unknown("heartbeat not registered with the daemon (reload pending?)")
        return evaluate(params, record, self._now())
