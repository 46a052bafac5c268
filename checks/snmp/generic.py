"""The generic `snmp` check: GET scalars and/or walk table columns, judge each value.

A value the agent does not have (noSuchObject/noSuchInstance) is UNKNOWN
"unknown OID …": a config naming an OID the device lacks cannot tell
anything about the device. A `rate` item's first poll only takes a baseline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks.snmp.oids import OID, dotted, format_oid
from checks.snmp.params import Item, Walk
from checks.snmp.profiles import SYS_UPTIME
from checks.snmp.report import Report, judge, number, text
from checks.snmp.values import Missing, Var
from monitord.model import CheckResult, Status

if TYPE_CHECKING:
    from checks.snmp.check import Poll


async def evaluate(poll: Poll) -> CheckResult:
    """Judge the `get` items and the `walk` rows of one poll into one result."""
    p = poll.params
    report = Report()
    if p.get:
        await _get(poll, p.get, report)
    if p.walk is not None:
        await _walk(poll, p.walk, report)
    return report.result()


async def _get(poll: Poll, items: tuple[Item, ...], report: Report) -> None:
    oids = list(poll.params.get_oids)
    wants_uptime = any(item.rate for item in items)
    if wants_uptime:
        oids.append(SYS_UPTIME)
    got = await poll.get(oids)
    uptime = number(got[-1]) if wants_uptime and len(got) > len(items) else None
    for item, var in zip(items, got, strict=False):
        _judge(poll, item, var, item.label, None if uptime is None else int(uptime), report)


async def _walk(poll: Poll, walk: Walk, report: Report) -> None:
    extra = [oid for oid, _ in walk.where] + ([walk.row_name] if walk.row_name else [])
    wanted: list[OID] = list(dict.fromkeys([*(c.oid for c in walk.columns), *extra]))
    wants_uptime = any(c.rate for c in walk.columns)
    scalars, rows = await poll.walk([SYS_UPTIME] if wants_uptime else [], wanted)
    uptime_n = number(scalars.get(SYS_UPTIME))
    uptime = None if uptime_n is None else int(uptime_n)
    indexes = list(dict.fromkeys(i for c in walk.columns for i in rows[c.oid]))
    judged = 0
    for index in indexes:
        if not all(cond.alerts(_plain(rows[oid].get(index))) for oid, cond in walk.where):
            continue
        name = text(rows[walk.row_name].get(index)) if walk.row_name else ""
        name = name or dotted(index)
        judged += 1
        for column in walk.columns:
            var = rows[column.oid].get(index)
            if var is not None:
                _judge(poll, column, var, f"{column.label} {name}", uptime, report)
    if not indexes:
        report.problem(Status.UNKNOWN, f"no rows in {format_oid(walk.columns[0].oid)}")
    report.note(f"{judged} of {len(indexes)} rows judged")


def _plain(var: Var | None) -> int | str | None:
    """A value as a `where` condition sees it (None when the row lacks it)."""
    if var is None or isinstance(var[1], Missing):
        return None
    return var[1] if isinstance(var[1], int | str) else text(var)


def _judge(
    poll: Poll, item: Item, var: Var, label: str, uptime: int | None, report: Report
) -> None:
    oid, value, _ = var
    if isinstance(value, Missing):
        report.problem(Status.UNKNOWN, f"unknown OID {format_oid(oid)} ({value.value})")
        return
    if item.rate:
        rate = poll.rate(oid, var, uptime)
        if rate is None:
            report.note(f"{label}: rate baseline taken")
            return
        shown: str = f"{rate:.0f}/s" if abs(rate) >= 100 else f"{rate:.3g}/s"
        judged: float | int | str = rate
    else:
        numeric = number(var)
        judged = numeric if numeric is not None else text(var)
        shown = text(var)
    status = judge(judged, item.warn, item.crit)
    limit = item.crit if status is Status.CRITICAL else item.warn
    if status is not Status.OK and limit is not None:
        report.problem(status, f"{label} = {shown} ({limit.text})")
    else:
        report.note(f"{label} = {shown}")
    if isinstance(judged, float | int):
        report.add_perf(label, judged, "", item.warn, item.crit)
