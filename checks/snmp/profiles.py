"""Ready-made profiles: what to fetch from standard MIBs and how to judge it.

Each profile is one coroutine `Poll -> CheckResult` making one round trip
where it can (a GETBULK of only the needed columns, with scalars such as
sysUpTime riding along as non-repeaters). Metrics and their default
thresholds are listed in `checks.snmp.params`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks.snmp.counters import Sample
from checks.snmp.oids import NAMES, OID, dotted
from checks.snmp.report import Report, failed, judge, number, selected, text
from monitord.model import CheckResult, Status

if TYPE_CHECKING:
    from checks.snmp.check import Evaluator, Poll


def _oid(name: str) -> OID:
    return NAMES[name][1]


SYS_UPTIME = (*_oid("sysUpTime"), 0)

IF_DESCR, IF_ADMIN, IF_OPER, IF_IN_ERR, IF_OUT_ERR = (
    _oid(n) for n in ("ifDescr", "ifAdminStatus", "ifOperStatus", "ifInErrors", "ifOutErrors")
)
# ifOperStatus values that mean "should carry traffic but does not".
_DOWN = {2: "down", 7: "lowerLayerDown"}


async def interfaces(poll: Poll) -> CheckResult:
    """Admin-up interfaces that are down (CRITICAL) and error rates per interface."""
    columns = (IF_DESCR, IF_ADMIN, IF_OPER, IF_IN_ERR, IF_OUT_ERR)
    scalars, rows = await poll.walk([SYS_UPTIME], columns)
    descr, admin, oper, in_err, out_err = (rows[c] for c in columns)
    uptime = _int(number(scalars.get(SYS_UPTIME)))
    p = poll.params
    limits = p.limits("errors")
    report = Report()
    total = up = admin_down = 0
    down: list[str] = []
    worst: float | None = None
    for index, var in descr.items():
        name = text(var) or f"ifIndex {dotted(index)}"
        if not selected(name, p.include, p.exclude):
            continue
        total += 1
        if number(admin.get(index)) != 1:
            admin_down += 1
            continue
        state = _int(number(oper.get(index)))
        if state in _DOWN:
            down.append(name if state == 2 else f"{name} ({_DOWN[state]})")
        elif state == 1:
            up += 1
        r_in = poll.rate(IF_IN_ERR + index, in_err.get(index), uptime)
        r_out = poll.rate(IF_OUT_ERR + index, out_err.get(index), uptime)
        if r_in is None or r_out is None:
            continue
        rate = r_in + r_out
        worst = rate if worst is None else max(worst, rate)
        report.problem(judge(rate, limits.warn, limits.crit), f"{name} {rate:.3g} errors/s")
    if total == 0:
        what = "matches include/exclude" if p.include or p.exclude else "in ifTable"
        return failed(Status.UNKNOWN, f"no interface {what}")
    if down:
        shown = ", ".join(down[:8]) + (", …" if len(down) > 8 else "")
        report.problem(Status.CRITICAL, f"{len(down)} of {total} interfaces down: {shown}")
    report.note(
        f"{total} interfaces, {up} up" + (f", {admin_down} admin down" if admin_down else "")
    )
    report.add_perf("up", up, lo=0, hi=total)
    report.add_perf("down", len(down), lo=0, hi=total)
    if worst is not None:
        report.add_perf("errors", worst, "", limits.warn, limits.crit, 0)
    return report.result()


ST_TYPE, ST_DESCR, ST_UNITS, ST_SIZE, ST_USED = (
    _oid(n)
    for n in (
        "hrStorageType",
        "hrStorageDescr",
        "hrStorageAllocationUnits",
        "hrStorageSize",
        "hrStorageUsed",
    )
)
_ST_TYPES = (1, 3, 6, 1, 2, 1, 25, 2, 1)
# hrStorageTypes arcs: Ram 2, VirtualMemory 3, FixedDisk 4, FlashMemory 9, NetworkDisk 10.
# Other (Linux buffers/cache, always "full"), removable media and RAM disks are skipped.
_STORAGE_METRIC = {2: "memory", 3: "memory", 4: "disk", 9: "disk", 10: "disk"}


async def storage(poll: Poll) -> CheckResult:
    """Percent used of every disk and memory area in hrStorageTable."""
    columns = (ST_TYPE, ST_DESCR, ST_UNITS, ST_SIZE, ST_USED)
    _, rows = await poll.walk([], columns)
    kinds, descr, units, size, used = (rows[c] for c in columns)
    p = poll.params
    report = Report()
    fullest: tuple[float, str] | None = None
    for index, var in kinds.items():
        kind = var[1]
        if not isinstance(kind, tuple) or kind[:-1] != _ST_TYPES:
            continue
        metric = _STORAGE_METRIC.get(kind[-1])
        name = text(descr.get(index)) or f"hrStorage {dotted(index)}"
        if metric is None or not selected(name, p.include, p.exclude):
            continue
        unit = number(units.get(index)) or 0.0
        total = _unsigned(number(size.get(index)))
        in_use = _unsigned(number(used.get(index)))
        if total <= 0 or unit <= 0:
            continue  # an empty drive or a pseudo file system
        pct = 100.0 * in_use / total
        limits = p.limits(metric)
        report.problem(
            judge(pct, limits.warn, limits.crit),
            f"{name} {pct:.1f} % used ({_bytes(in_use * unit)} of {_bytes(total * unit)})",
        )
        report.add_perf(name, round(pct, 2), "%", limits.warn, limits.crit, 0, 100)
        if fullest is None or pct > fullest[0]:
            fullest = (pct, name)
    if fullest is None:
        what = "matches include/exclude" if p.include or p.exclude else "in hrStorageTable"
        return failed(Status.UNKNOWN, f"no disk or memory {what}")
    areas = len(report.perf)
    report.note(
        f"{areas} storage area{'' if areas == 1 else 's'}, fullest {fullest[1]} {fullest[0]:.1f} %"
    )
    return report.result()


HR_PROCESSOR_LOAD = _oid("hrProcessorLoad")


async def cpu(poll: Poll) -> CheckResult:
    """Average hrProcessorLoad over all processors (last minute, per RFC 2790)."""
    _, rows = await poll.walk([], [HR_PROCESSOR_LOAD])
    loads = [n for n in map(number, rows[HR_PROCESSOR_LOAD].values()) if n is not None]
    if not loads:
        return failed(Status.UNKNOWN, "no processors in hrProcessorTable")
    limits = poll.params.limits("load")
    average = sum(loads) / len(loads)
    report = Report()
    summary = f"CPU load {average:.0f} % average of {len(loads)} CPUs (max {max(loads):.0f} %)"
    report.problem(judge(average, limits.warn, limits.crit), summary)
    report.note(summary)
    report.add_perf("load", round(average, 1), "%", limits.warn, limits.crit, 0, 100)
    return report.result()


UPS_SOURCE, UPS_BATTERY, UPS_ON_BATTERY, UPS_MINUTES, UPS_CHARGE, UPS_TEMP, UPS_ALARMS = (
    (*_oid(n), 0)
    for n in (
        "upsOutputSource",
        "upsBatteryStatus",
        "upsSecondsOnBattery",
        "upsEstimatedMinutesRemaining",
        "upsEstimatedChargeRemaining",
        "upsBatteryTemperature",
        "upsAlarmsPresent",
    )
)
UPS_LOAD = _oid("upsOutputPercentLoad")
# upsOutputSource: 1 other, 2 none, 3 normal, 4 bypass, 5 battery, 6 booster, 7 reducer
_SOURCE = {2: (Status.CRITICAL, "output off"), 4: (Status.WARNING, "on bypass")}
# upsBatteryStatus: 1 unknown, 2 normal, 3 low, 4 depleted
_BATTERY = {3: (Status.CRITICAL, "battery low"), 4: (Status.CRITICAL, "battery depleted")}


async def ups(poll: Poll) -> CheckResult:
    """UPS-MIB: power source, battery state, charge, runtime, load, alarms."""
    scalars = (UPS_SOURCE, UPS_BATTERY, UPS_ON_BATTERY, UPS_MINUTES, UPS_CHARGE, UPS_TEMP)
    got, rows = await poll.walk([*scalars, UPS_ALARMS], [UPS_LOAD])
    source, battery, seconds, minutes, charge, temp = (number(got.get(o)) for o in scalars)
    if source is None and battery is None and charge is None:
        return failed(Status.UNKNOWN, "no UPS-MIB data (upsOutputSource, upsBatteryStatus)")
    p = poll.params
    report = Report()
    if source == 5:
        report.problem(Status.WARNING, f"on battery for {_duration(seconds or 0)}")
    elif source in _SOURCE:
        report.problem(*_SOURCE[int(source)])
    if battery in _BATTERY:
        report.problem(*_BATTERY[int(battery)])
    alarms = number(got.get(UPS_ALARMS)) or 0
    if alarms > 0:
        report.problem(Status.WARNING, f"{alarms:.0f} alarm{'s' if alarms != 1 else ''} present")
    report.note("on battery" if source == 5 else "on mains")
    loads = [n for n in map(number, rows[UPS_LOAD].values()) if n is not None]
    measured = {
        "charge": (charge, "%", "charge {:.0f} %"),
        "runtime": (minutes, "", "{:.0f} min runtime"),
        "load": (max(loads) if loads else None, "%", "load {:.0f} %"),
        "temperature": (temp, "C", "battery {:.0f} °C"),
    }
    for metric, (value, uom, fmt) in measured.items():
        if value is None:
            continue
        limits = p.limits(metric)
        report.problem(judge(value, limits.warn, limits.crit), fmt.format(value))
        report.note(fmt.format(value))
        report.add_perf(metric, value, uom, limits.warn, limits.crit)
    return report.result()


SUP_DESCR, SUP_CLASS, SUP_MAX, SUP_LEVEL = (
    _oid(n)
    for n in (
        "prtMarkerSuppliesDescription",
        "prtMarkerSuppliesClass",
        "prtMarkerSuppliesMaxCapacity",
        "prtMarkerSuppliesLevel",
    )
)


async def printer(poll: Poll) -> CheckResult:
    """Printer-MIB supplies: percent left of each toner, drum, waste box …"""
    columns = (SUP_DESCR, SUP_CLASS, SUP_MAX, SUP_LEVEL)
    _, rows = await poll.walk([], columns)
    descr, klass, capacity, level = (rows[c] for c in columns)
    p = poll.params
    limits = p.limits("supply")
    report = Report()
    lowest: tuple[float, str] | None = None
    for index, var in descr.items():
        name = text(var) or f"supply {dotted(index)}"
        if not selected(name, p.include, p.exclude):
            continue
        left = _supply_left(
            number(klass.get(index)), number(capacity.get(index)), number(level.get(index))
        )
        if left is None:
            continue  # level unknown or only "some remaining" (-3): nothing to judge
        report.problem(judge(left, limits.warn, limits.crit), f"{name} {left:.0f} % left")
        report.add_perf(name, round(left, 1), "%", limits.warn, limits.crit, 0, 100)
        if lowest is None or left < lowest[0]:
            lowest = (left, name)
    if lowest is None:
        return failed(Status.UNKNOWN, "no supply with a known level in prtMarkerSuppliesTable")
    count = len(report.perf)
    report.note(
        f"{count} suppl{'y' if count == 1 else 'ies'}, lowest {lowest[1]} {lowest[0]:.0f} %"
    )
    return report.result()


def _supply_left(klass: float | None, capacity: float | None, level: float | None) -> float | None:
    """Percent left; a receptacle that fills up (class 4, waste toner) counts down."""
    if capacity is None or level is None or capacity <= 0 or level < 0:
        return None
    filled = min(100.0, 100.0 * level / capacity)
    return 100.0 - filled if klass == 4 else filled


async def uptime(poll: Poll) -> CheckResult:
    """sysUpTime, and a WARNING when it went back since this check's last poll."""
    got = await poll.get([SYS_UPTIME])
    ticks = _int(number(got[0]) if got else None)
    if ticks is None:
        return failed(Status.UNKNOWN, "agent returned no sysUpTime.0")
    key = (poll.device, "uptime")
    prev = poll.counters.previous(key)
    poll.counters.remember(key, Sample(ticks, poll.now))
    report = Report()
    seconds = ticks / 100
    limits = poll.params.limits("uptime")
    if prev is not None and _rebooted(prev.value, prev.at, ticks, poll.now):
        minutes = int(seconds // 60)
        report.problem(
            Status.WARNING, f"rebooted {minutes} minute{'' if minutes == 1 else 's'} ago"
        )
    report.problem(judge(seconds, limits.warn, limits.crit), f"up {_duration(seconds)}")
    report.note(f"up {_duration(seconds)}")
    report.add_perf("uptime", seconds, "s", limits.warn, limits.crit, 0)
    return report.result()


_TICKS_WRAP = 2**32


def _rebooted(prev_ticks: int, prev_at: float, ticks: int, now: float) -> bool:
    """sysUpTime went back, and not because it wrapped at 2^32 (497 days)."""
    if ticks >= prev_ticks:
        return False
    expected = prev_ticks + (now - prev_at) * 100
    # A wrap lands near expected - 2^32; allow a minute of clock disagreement.
    return not (expected >= _TICKS_WRAP and abs(ticks - (expected - _TICKS_WRAP)) < 6000)


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _unsigned(value: float | None) -> float:
    """hrStorageSize/Used are Integer32: agents wrap big disks to negative."""
    if value is None:
        return 0.0
    return value + 2**32 if value < 0 else value


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def _duration(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{int(seconds)} s"


PROFILES: dict[str | None, Evaluator] = {
    "interfaces": interfaces,
    "storage": storage,
    "cpu": cpu,
    "ups": ups,
    "printer": printer,
    "uptime": uptime,
}
