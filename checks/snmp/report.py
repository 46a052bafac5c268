"""Turning judged values into one CheckResult: status, one-line message, perfdata."""

from __future__ import annotations

from fnmatch import fnmatchcase

from checks.snmp.conditions import Condition
from checks.snmp.values import Missing, Var
from monitord.model import CheckResult, Perf, Status

# A message lists at most this many problems, worst first, then "and N more".
MAX_PROBLEMS = 6
MAX_PERF = 64


def judge(value: float | str | None, warn: Condition | None, crit: Condition | None) -> Status:
    """CRITICAL if `crit` alerts, else WARNING if `warn` alerts, else OK."""
    if crit is not None and crit.alerts(value):
        return Status.CRITICAL
    if warn is not None and warn.alerts(value):
        return Status.WARNING
    return Status.OK


def number(var: Var | None) -> float | None:
    """A varbind's value as a number, or None (absent, text, exception value)."""
    if var is None:
        return None
    value = var[1]
    if isinstance(value, int):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def text(var: Var | None) -> str:
    """A varbind's value for a message: text as is, bytes as hex, OIDs dotted."""
    if var is None:
        return ""
    value = var[1]
    if isinstance(value, str):
        return value.strip("\x00").strip()
    if isinstance(value, bytes):
        return value.hex(":")
    if isinstance(value, tuple):
        return ".".join(map(str, value))
    if isinstance(value, Missing):
        return value.value
    return "" if value is None else str(value)


def selected(name: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """Glob filter on a row name: in `include` (when given) and not in `exclude`."""
    if include and not any(fnmatchcase(name, pattern) for pattern in include):
        return False
    return not any(fnmatchcase(name, pattern) for pattern in exclude)


def nagios(condition: Condition | None) -> str | None:
    return None if condition is None else condition.nagios()


class Report:
    """Collects problems (status + text), OK notes and perfdata for one result."""

    __slots__ = ("notes", "perf", "problems")

    def __init__(self) -> None:
        self.problems: list[tuple[Status, str]] = []
        self.notes: list[str] = []
        self.perf: list[Perf] = []

    def problem(self, status: Status, message: str) -> None:
        if status is not Status.OK:
            self.problems.append((status, message))

    def note(self, message: str) -> None:
        self.notes.append(message)

    def add_perf(
        self,
        label: str,
        value: float,
        uom: str = "",
        warn: Condition | None = None,
        crit: Condition | None = None,
        lo: float | None = None,
        hi: float | None = None,
    ) -> None:
        if len(self.perf) < MAX_PERF:
            self.perf.append(Perf(label, value, uom, nagios(warn), nagios(crit), lo, hi))

    def result(self) -> CheckResult:
        """Worst status; the message lists the problems (worst first) or the notes."""
        if not self.problems:
            body = ", ".join(self.notes) or "no data"
            return CheckResult(Status.OK, f"SNMP OK - {body}", tuple(self.perf))
        ordered = sorted(self.problems, key=lambda p: -p[0])
        status = ordered[0][0]
        shown = [m for _, m in ordered[:MAX_PROBLEMS]]
        more = len(ordered) - len(shown)
        body = "; ".join(shown) + (f"; and {more} more" if more else "")
        return CheckResult(status, f"SNMP {status.name} - {body}", tuple(self.perf))


def failed(status: Status, message: str) -> CheckResult:
    """A result for a poll that produced nothing to judge."""
    return CheckResult(status, f"SNMP {status.name} - {message}")
