"""Local host checks: the machine monitord itself runs on (support server, small agent).

`metric` picks one of: cpu, load, memory, swap, disk, process, listening,
systemd. The percentage metrics and load take `warn`/`crit` upper bounds
(defaults in DEFAULTS; load is per core, one number or one per 1/5/15-minute
average) and report perfdata with them.

Nothing here blocks the event loop. Reading /proc (cpu, load, memory, swap)
is done inline; calls that can hang or walk every process (statvfs of a dead
NFS mount, the process table, the socket table) run in a daemon thread of
their own, one per call. Not `asyncio.to_thread`: its pool is shared with
the rest of the daemon and joined at exit, so one statvfs stuck on a dead
server would occupy a worker for good and hang shutdown. A call still in
flight (stuck since an earlier check) is joined, not started again, and a
timeout message names the call it waited for and how long that has run.

CPU percent is measured against the previous sample kept in this instance
(taken at start, then at each cpu check), not psutil.cpu_percent's
module-wide one that any other caller in the process would reset; when that
window is shorter than CPU_MIN_WINDOW the check waits (asynchronously) for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import shutil
import sys
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, ClassVar, Literal, Self, TypeVar

import psutil
from pydantic import Field, field_validator, model_validator

from checks.base import BaseCheck, CheckContext, CheckParams, valid_regex
from checks.plugin import BASE_ENV, one_line, run_process
from monitord.model import CheckResult, Perf, Status, Target

T = TypeVar("T")
Metric = Literal["cpu", "load", "memory", "swap", "disk", "process", "listening", "systemd"]
Threshold = float | tuple[float, float, float]

# (warn, crit) when not configured: percent used, or load per core.
DEFAULTS: dict[str, tuple[float, float]] = {
    "cpu": (90.0, 95.0),
    "load": (2.0, 4.0),
    "memory": (90.0, 95.0),
    "swap": (60.0, 80.0),
    "disk": (85.0, 95.0),
}
_APPLIES: dict[str, frozenset[str]] = {
    **{m: frozenset({"warn", "crit"}) for m in DEFAULTS},
    "disk": frozenset({"warn", "crit", "mounts"}),
    "process": frozenset({"process", "cmdline", "min_count", "max_count"}),
    "listening": frozenset({"port", "protocol"}),
    "systemd": frozenset({"unit"}),
}
CPU_MIN_WINDOW = 0.5  # seconds; a shorter CPU sample is mostly noise
# Read-only images are always 100% full (snap packages are squashfs loop mounts).
_ALWAYS_FULL = frozenset({"squashfs", "iso9660", "udf", "erofs"})
_UNIT = re.compile(r"[A-Za-z0-9:_.@\\-]+")


class LocalParams(CheckParams):
    """Parameters of a `local` check; each metric takes only its own keys.

    disk: `mounts` (default every real filesystem; a listed path that is not a
    mount point is CRITICAL); process: `process` (exact name) and/or
    `cmdline` (regex searched in the joined command line), found between
    `min_count` and `max_count` times; listening: `port` and `protocol`;
    systemd: `unit`.
    """

    metric: Metric
    warn: Threshold | None = None
    crit: Threshold | None = None
    mounts: tuple[str, ...] = ()
    process: str | None = Field(default=None, min_length=1)
    cmdline: str | None = Field(default=None, min_length=1)
    min_count: int = Field(default=1, ge=0)
    max_count: int | None = Field(default=None, ge=0)
    port: int | None = Field(default=None, ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    unit: str | None = None

    @field_validator("cmdline")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return valid_regex(v)

    @field_validator("unit")
    @classmethod
    def _unit_name(cls, v: str | None) -> str | None:
        if v is not None and (not _UNIT.fullmatch(v) or v.startswith("-")):
            raise ValueError(f"{v!r} is not a systemd unit name")
        return v

    @field_validator("mounts")
    @classmethod
    def _absolute(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for mount in v:
            if not mount.startswith("/"):
                raise ValueError(f"mount {mount!r} must be an absolute path")
        return v

    @model_validator(mode="after")
    def _fits_metric(self) -> Self:
        extra = self.model_fields_set - _APPLIES[self.metric] - {"metric"}
        if extra:
            raise ValueError(f"{sorted(extra)[0]!r} does not apply to metric {self.metric!r}")
        needs = {"process": ("process", "cmdline"), "listening": ("port",), "systemd": ("unit",)}
        wanted = needs.get(self.metric, ())
        if wanted and not any(getattr(self, k) is not None for k in wanted):
            raise ValueError(f"metric {self.metric!r} needs {' or '.join(wanted)}")
        if self.max_count is not None and self.max_count < self.min_count:
            raise ValueError("max_count must not be below min_count")
        self._check_thresholds()
        return self

    def _check_thresholds(self) -> None:
        warn, crit = self.thresholds()
        if self.metric != "load" and (len(warn) > 1 or len(crit) > 1):
            raise ValueError("three thresholds (1/5/15 minutes) are for metric 'load' only")
        if min(warn + crit) < 0:
            raise ValueError("thresholds must not be negative")
        for w, c in zip(warn, crit, strict=False):
            if c < w:
                raise ValueError(f"crit ({c:g}) must not be below warn ({w:g})")

    def thresholds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(warn, crit), each one value per judged number (three for load)."""
        default = DEFAULTS.get(self.metric, (float("inf"), float("inf")))
        n = 3 if self.metric == "load" else 1

        def spread(value: Threshold | None, fallback: float) -> tuple[float, ...]:
            if value is None:
                return (fallback,) * n
            return value if isinstance(value, tuple) else (value,) * n

        return spread(self.warn, default[0]), spread(self.crit, default[1])

    def default_name(self, kind: str) -> str:
        what = {
            "disk": ",".join(self.mounts),
            "process": self.process or self.cmdline or "",
            "listening": f"{self.protocol}/{self.port}",
            "systemd": self.unit or "",
        }.get(self.metric, "")
        return f"{kind}:{self.metric}" + (f":{what}" if what else "")


def level(value: float, warn: float, crit: float) -> Status:
    """CRITICAL above `crit`, WARNING above `warn`, else OK."""
    if value > crit:
        return Status.CRITICAL
    return Status.WARNING if value > warn else Status.OK


def _pct(label: str, value: float, warn: float, crit: float) -> Perf:
    return Perf(label, round(value, 2), "%", _g(warn), _g(crit), 0.0, 100.0)


def _g(x: float) -> str | None:
    return None if x == float("inf") else format(x, "g")


def size(n: float) -> str:
    """Bytes in binary units, e.g. `1.5 GiB`."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _result(name: str, status: Status, text: str, *perf: Perf) -> CheckResult:
    return CheckResult(status, one_line(f"{name} {status.name} - {text}"), perf)


class LocalCheck(BaseCheck):
    """Checks the local machine with psutil; see the module docstring.

    Never raises for what it finds: a missing systemctl, a systemd that cannot
    be reached, a hung mount or a denied socket table are UNKNOWN results.
    """

    kind: ClassVar[str] = "local"
    Params: ClassVar[type[CheckParams]] = LocalParams

    def __init__(self) -> None:
        self.systemctl: str | None = shutil.which("systemctl", path=BASE_ENV["PATH"])
        # key → (the call's future, loop time it started)
        self._inflight: dict[str, tuple[asyncio.Future[Any], float]] = {}
        self._waiting: dict[asyncio.Task[Any] | None, str] = {}  # run's task → key it awaits
        self._proc_lock = threading.Lock()  # psutil's process cache is not thread-safe
        self._cpu_last = (psutil.cpu_times(), 0.0)
        self._handlers: dict[str, Callable[[LocalParams, float], Awaitable[CheckResult]]] = {
            "cpu": self._cpu,
            "load": self._load,
            "memory": self._memory,
            "swap": self._swap,
            "disk": self._disk,
            "process": self._process,
            "listening": self._listening,
            "systemd": self._systemd,
        }

    async def start(self, context: CheckContext | None = None) -> None:
        self._cpu_last = (psutil.cpu_times(), asyncio.get_running_loop().time())

    async def run(self, target: Target, params: Any, timeout: float) -> CheckResult:
        p: LocalParams = params
        task = asyncio.current_task()
        try:
            async with asyncio.timeout(timeout):
                return await self._handlers[p.metric](p, timeout)
        except TimeoutError:
            return CheckResult(
                Status.UNKNOWN,
                f"local {p.metric} check did not finish within {timeout:g}s"
                + self._stuck(self._waiting.get(task)),
            )
        except (psutil.Error, OSError) as exc:
            return CheckResult(Status.UNKNOWN, f"local {p.metric} check failed: {exc}")
        finally:
            self._waiting.pop(task, None)

    async def _blocking(self, key: str, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a daemon thread of its own; `key` names the call and its args.

        A call with the same key still in flight (another check, or one hung
        since an earlier check) is joined instead of started again, so a dead
        mount costs one thread, not one per check.
        """
        loop = asyncio.get_running_loop()
        if key not in self._inflight:
            fut: asyncio.Future[Any] = loop.create_future()
            self._inflight[key] = (fut, loop.time())

            def finish(deliver: Callable[[], None]) -> None:
                del self._inflight[key]
                if not fut.done():
                    deliver()

            def work() -> None:
                try:
                    value = fn(*args)
                except Exception as exc:  # handed to the awaiting coroutine
                    deliver = partial(fut.set_exception, exc)
                else:
                    deliver = partial(fut.set_result, value)
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                    loop.call_soon_threadsafe(finish, deliver)

            threading.Thread(target=work, name=f"monitord-local {key}", daemon=True).start()
        # Shielded: one caller timing out must not cancel the call for the others.
        task = asyncio.current_task()
        self._waiting[task] = key  # left in place if we time out, for run's message
        result: T = await asyncio.shield(self._inflight[key][0])
        del self._waiting[task]
        return result

    def _stuck(self, key: str | None) -> str:
        if key is None or key not in self._inflight:
            return ""
        age = asyncio.get_running_loop().time() - self._inflight[key][1]
        return f" (waiting for {key}, running for {age:.1f}s)"

    # -------------------------------------------------------------- metrics

    async def _cpu(self, p: LocalParams, timeout: float) -> CheckResult:
        loop = asyncio.get_running_loop()
        then, since = self._cpu_last
        wait = CPU_MIN_WINDOW - (loop.time() - since)
        if wait > 0:
            await asyncio.sleep(min(wait, timeout / 2))
        now = psutil.cpu_times()
        self._cpu_last = (now, loop.time())
        total = _cpu_total(now) - _cpu_total(then)
        if total <= 0:  # under one clock tick (10 ms): a timeout too short to sample
            return _result("CPU", Status.UNKNOWN, "no CPU time passed within the sample window")
        share = {
            name: 100.0 * (getattr(now, name, 0.0) - getattr(then, name, 0.0)) / total
            for name in ("idle", "iowait", "user", "system")
        }
        busy = max(0.0, min(100.0, 100.0 - share["idle"] - share["iowait"]))
        (warn,), (crit,) = p.thresholds()
        text = (
            f"{busy:.1f}% busy (user {share['user']:.1f}%, system {share['system']:.1f}%, "
            f"iowait {share['iowait']:.1f}%)"
        )
        perf = [_pct("cpu", busy, warn, crit)]
        perf += [
            _pct(k, share[k], float("inf"), float("inf")) for k in ("user", "system", "iowait")
        ]
        return _result("CPU", level(busy, warn, crit), text, *perf)

    async def _load(self, p: LocalParams, timeout: float) -> CheckResult:
        cores = psutil.cpu_count() or 1
        loads = [x / cores for x in psutil.getloadavg()]
        warn, crit = p.thresholds()
        status = max(level(x, w, c) for x, w, c in zip(loads, warn, crit, strict=True))
        text = f"load per core {', '.join(f'{x:.2f}' for x in loads)} ({cores} cores)"
        perf = (
            Perf(f"load{m}", round(x, 3), "", _g(w), _g(c), 0.0)
            for m, x, w, c in zip((1, 5, 15), loads, warn, crit, strict=True)
        )
        return _result("LOAD", status, text, *perf)

    async def _memory(self, p: LocalParams, timeout: float) -> CheckResult:
        vm = psutil.virtual_memory()
        (warn,), (crit,) = p.thresholds()
        text = f"{vm.percent:.1f}% used ({size(vm.available)} available of {size(vm.total)})"
        perf = Perf("available", float(vm.available), "B", None, None, 0.0, float(vm.total))
        return _result(
            "MEMORY",
            level(vm.percent, warn, crit),
            text,
            _pct("used", vm.percent, warn, crit),
            perf,
        )

    async def _swap(self, p: LocalParams, timeout: float) -> CheckResult:
        sm = psutil.swap_memory()
        if sm.total == 0:
            return _result("SWAP", Status.OK, "no swap configured")
        (warn,), (crit,) = p.thresholds()
        text = f"{sm.percent:.1f}% used ({size(sm.free)} free of {size(sm.total)})"
        perf = Perf("free", float(sm.free), "B", None, None, 0.0, float(sm.total))
        used = _pct("used", sm.percent, warn, crit)
        return _result("SWAP", level(sm.percent, warn, crit), text, used, perf)

    async def _disk(self, p: LocalParams, timeout: float) -> CheckResult:
        listed = bool(p.mounts)
        mounts = list(p.mounts) if listed else await self._blocking("partitions", _real_mounts)
        (warn,), (crit,) = p.thresholds()
        parts: list[tuple[Status, str]] = []
        perf: list[Perf] = []
        for mount in mounts:
            usage = await self._blocking(f"statvfs of {mount}", _usage, mount)
            if usage is None:
                parts.append((Status.CRITICAL, f"{mount} not mounted"))
                continue
            percent, free, total = usage
            parts.append(
                (level(percent, warn, crit), f"{mount} {percent:.1f}% used ({size(free)} free)")
            )
            perf.append(_pct(mount, percent, warn, crit))
            perf.append(Perf(f"{mount} free", float(free), "B", None, None, 0.0, float(total)))
        worst = max((status for status, _ in parts), default=Status.OK)
        parts.sort(key=lambda part: -part[0])
        shown = [text for status, text in parts if status is not Status.OK or worst is Status.OK]
        return _result("DISK", worst, "; ".join(shown[:5]) or "no filesystems", *perf)

    async def _process(self, p: LocalParams, timeout: float) -> CheckResult:
        key = f"processes {p.process!r} {p.cmdline!r}"
        count = await self._blocking(key, self._count, p.process, p.cmdline)
        what = " and ".join(
            x
            for x in (
                f"named {p.process!r}" if p.process else "",
                f"matching /{p.cmdline}/" if p.cmdline else "",
            )
            if x
        )
        limits = f"{p.min_count}:" + ("" if p.max_count is None else str(p.max_count))
        too_few = count < p.min_count
        ok = not too_few and (p.max_count is None or count <= p.max_count)
        expected = f"at least {p.min_count}" if too_few else f"at most {p.max_count}"
        text = f"{count} processes {what}" + ("" if ok else f" (expected {expected})")
        perf = Perf("procs", float(count), "", None, limits, 0.0)
        return _result("PROCS", Status.OK if ok else Status.CRITICAL, text, perf)

    def _count(self, name: str | None, pattern: str | None) -> int:
        with self._proc_lock:
            n = 0
            for proc in psutil.process_iter(["name", "cmdline"]):
                info = proc.info
                if name is not None and info["name"] != name:
                    continue
                if pattern is not None and not re.search(pattern, " ".join(info["cmdline"] or ())):
                    continue
                n += 1
            return n

    async def _listening(self, p: LocalParams, timeout: float) -> CheckResult:
        assert p.port is not None
        key = f"sockets {p.protocol}/{p.port}"
        addresses = await self._blocking(key, _listeners, p.protocol, p.port)
        where = f"{p.protocol} port {p.port}"
        if not addresses:
            return _result("LISTEN", Status.CRITICAL, f"nothing listens on {where}")
        return _result("LISTEN", Status.OK, f"{where} is open on {', '.join(addresses)}")

    async def _systemd(self, p: LocalParams, timeout: float) -> CheckResult:
        assert p.unit is not None
        if self.systemctl is None:
            return _result("SYSTEMD", Status.UNKNOWN, "systemctl not found on this machine")
        argv = [self.systemctl, "show", "-p", "LoadState,ActiveState,SubState", "--", p.unit]
        o = await run_process(argv, BASE_ENV, timeout * 0.9, 16384)
        if o.timed_out:
            return _result("SYSTEMD", Status.UNKNOWN, f"systemctl gave no answer in {timeout:g}s")
        if o.returncode != 0:
            why = (o.stderr or o.stdout).decode("utf-8", "replace").strip().split("\n")[0]
            return _result("SYSTEMD", Status.UNKNOWN, f"cannot ask systemd: {why or o.returncode}")
        props = dict(
            line.partition("=")[::2] for line in o.stdout.decode("utf-8", "replace").splitlines()
        )
        active, sub = props.get("ActiveState", "?"), props.get("SubState", "?")
        if props.get("LoadState") == "not-found":
            return _result("SYSTEMD", Status.CRITICAL, f"unit {p.unit} not found")
        status = {"active": Status.OK, "reloading": Status.WARNING, "activating": Status.WARNING}
        return _result(
            "SYSTEMD", status.get(active, Status.CRITICAL), f"{p.unit} is {active} ({sub})"
        )


def _cpu_total(times: Any) -> float:
    # guest time is already counted in user (Linux), as psutil does it.
    return float(sum(times)) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


def _real_mounts() -> list[str]:
    """Mount points of real filesystems, one per device, shortest path first."""
    seen: set[str] = set()
    mounts = []
    parts = psutil.disk_partitions(all=False)
    for part in sorted(parts, key=lambda x: (len(x.mountpoint), x.mountpoint)):
        if part.fstype in _ALWAYS_FULL or part.device in seen:
            continue
        seen.add(part.device)
        mounts.append(part.mountpoint)
    return mounts


def _usage(mount: str) -> tuple[float, int, int] | None:
    """(percent used, free bytes, total bytes), or None when not mounted."""
    if not os.path.ismount(mount):
        return None
    u = psutil.disk_usage(mount)
    return u.percent, u.free, u.total


def _listeners(protocol: str, port: int) -> list[str]:
    """Local addresses with a `protocol` socket listening on (or bound to) `port`.

    On Linux from /proc/net/{tcp,udp}{,6}: psutil.net_connections would also
    map every socket to its process by walking each process's open files,
    which costs a hundred times more and tells us nothing we need.
    """
    if not os.path.exists(f"/proc/net/{protocol}"):
        return _psutil_listeners(protocol, port)
    # TCP_LISTEN, or for UDP TCP_CLOSE: bound and unconnected (connected is ESTABLISHED).
    state = "0A" if protocol == "tcp" else "07"
    found = set()
    for table in (f"/proc/net/{protocol}", f"/proc/net/{protocol}6"):
        # A missing table6 means a kernel without IPv6.
        with contextlib.suppress(FileNotFoundError), open(table, encoding="ascii") as rows:
            next(rows)  # the header
            for row in rows:
                fields = row.split()
                address, _, hex_port = fields[1].partition(":")
                if fields[3] == state and int(hex_port, 16) == port:
                    found.add(_proc_address(address))
    return sorted(found)


def _proc_address(hex_address: str) -> str:
    """An address from /proc/net/*: hex, in 32-bit words of host byte order."""
    raw = bytes.fromhex(hex_address)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(raw))


def _psutil_listeners(protocol: str, port: int) -> list[str]:
    found = []
    for conn in psutil.net_connections(kind=protocol):
        if not conn.laddr or conn.laddr.port != port:
            continue
        if conn.status == psutil.CONN_LISTEN or (protocol == "udp" and not conn.raddr):
            found.append(conn.laddr.ip)
    return sorted(set(found))
