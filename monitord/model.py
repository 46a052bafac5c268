"""Pure value types shared by every stage of the pipeline.

Nothing here does I/O. Results and targets are slotted frozen dataclasses, not
pydantic models, because thousands of them are created per second on the
check path and pydantic validation would dominate its cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Status(IntEnum):
    """Nagios-compatible check status; the integer is the plugin exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Perf:
    """One performance datum, as in `'label'=value[UOM];warn;crit;min;max`.

    `warn` and `crit` are Nagios range strings (`10`, `10:20`, `@5:`), kept
    verbatim because their grammar is richer than a single number.
    """

    label: str
    value: float
    uom: str = ""
    warn: str | None = None
    crit: str | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one check execution found. Duration is measured by the engine."""

    status: Status
    message: str
    perfdata: tuple[Perf, ...] = ()


@dataclass(frozen=True, slots=True)
class Target:
    """The device a check runs against: its stable id and network address."""

    device_id: str
    address: str
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


def ok(message: str, *perf: Perf) -> CheckResult:
    return CheckResult(Status.OK, message, perf)


def warning(message: str, *perf: Perf) -> CheckResult:
    return CheckResult(Status.WARNING, message, perf)


def critical(message: str, *perf: Perf) -> CheckResult:
    return CheckResult(Status.CRITICAL, message, perf)


def unknown(message: str, *perf: Perf) -> CheckResult:
    return CheckResult(Status.UNKNOWN, message, perf)
