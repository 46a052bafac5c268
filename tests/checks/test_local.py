"""The `local` kind against the real machine the tests run on.

Values are whatever this machine has, so each test asserts that the status
agrees with the value and the thresholds, not a fixed status. systemd is
asked for real: in a container without systemd the check must say so
(UNKNOWN), and a fake systemctl written by the test covers the state mapping.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from pydantic import ValidationError

from checks.local import CPU_MIN_WINDOW, LocalCheck, LocalParams, level
from monitord.model import CheckResult, Perf, Status, Target

TARGET = Target("support/monitord-host", "127.0.0.1")


def params(**kw: Any) -> LocalParams:
    return LocalParams.model_validate(kw)


async def run(timeout: float = 5.0, check: LocalCheck | None = None, **kw: Any) -> CheckResult:
    own = check is None
    check = check or LocalCheck()
    if own:
        await check.start()
    try:
        result = await check.run(TARGET, params(**kw), timeout)
    finally:
        if own:
            await check.close()
    assert result.message and "\n" not in result.message
    return result


def perf(result: CheckResult) -> dict[str, Perf]:
    return {p.label: p for p in result.perfdata}


# -------------------------------------------------------------------- params


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"metric": "process", "process": "sshd", "warn": 1}, "'warn' does not apply to metric"),
        ({"metric": "cpu", "port": 22}, "'port' does not apply to metric 'cpu'"),
        ({"metric": "process"}, "metric 'process' needs process or cmdline"),
        ({"metric": "listening"}, "metric 'listening' needs port"),
        ({"metric": "systemd"}, "metric 'systemd' needs unit"),
        ({"metric": "systemd", "unit": "--all"}, "'--all' is not a systemd unit name"),
        ({"metric": "systemd", "unit": "a b.service"}, "is not a systemd unit name"),
        ({"metric": "cpu", "warn": [1, 2, 3]}, "three thresholds"),
        ({"metric": "cpu", "warn": 97}, r"crit \(95\) must not be below warn \(97\)"),
        ({"metric": "load", "warn": [1, 2, 3], "crit": [2, 1, 4]}, r"crit \(1\) must not be"),
        ({"metric": "memory", "warn": -1}, "must not be negative"),
        ({"metric": "process", "process": "x", "min_count": 3, "max_count": 2}, "max_count"),
        ({"metric": "process", "cmdline": "("}, "invalid regular expression"),
        ({"metric": "disk", "mounts": ["var"]}, "must be an absolute path"),
        ({"metric": "uptime"}, "Input should be 'cpu'"),
    ],
)
def test_params_reject(kw: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        params(**kw)


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"metric": "cpu"}, "local:cpu"),
        ({"metric": "disk", "mounts": ["/", "/var"]}, "local:disk:/,/var"),
        ({"metric": "process", "process": "sshd"}, "local:process:sshd"),
        ({"metric": "listening", "port": 53, "protocol": "udp"}, "local:listening:udp/53"),
        ({"metric": "systemd", "unit": "nginx.service"}, "local:systemd:nginx.service"),
    ],
)
def test_default_names(kw: dict[str, Any], name: str) -> None:
    assert params(**kw).default_name("local") == name


# ------------------------------------------------------------------- metrics


async def test_cpu_is_measured_against_the_previous_sample() -> None:
    check = LocalCheck()
    await check.start()
    started = time.monotonic()
    first = await run(check=check, metric="cpu")
    # Right after start the window is too short: the check waits (without blocking).
    assert time.monotonic() - started >= CPU_MIN_WINDOW * 0.9
    busy = perf(first)["cpu"]
    assert (busy.uom, busy.warn, busy.crit, busy.min, busy.max) == ("%", "90", "95", 0, 100)
    assert 0 <= busy.value <= 100
    assert first.status is level(busy.value, 90, 95)
    assert set(perf(first)) == {"cpu", "user", "system", "iowait"}
    await asyncio.sleep(CPU_MIN_WINDOW)
    started = time.monotonic()
    second = await run(check=check, metric="cpu", warn=0, crit=100)
    assert time.monotonic() - started < CPU_MIN_WINDOW / 2  # the window has passed: no wait
    value = perf(second)["cpu"].value
    if value > 0:
        assert second.status is Status.WARNING
    else:  # perfdata is rounded to 0.01 %: a busy share below that still warns at warn=0
        assert second.status in (Status.OK, Status.WARNING)
    assert re.fullmatch(r"CPU \w+ - [\d.]+% busy \(user [\d.]+%, system .*\)", second.message)


async def test_cpu_sees_a_busy_core() -> None:
    check = LocalCheck()
    await check.start()
    stop = time.monotonic() + 1.0

    def spin() -> None:
        while time.monotonic() < stop:
            pass

    spinner = threading.Thread(target=spin)
    spinner.start()
    await asyncio.sleep(0.9)
    result = await run(check=check, metric="cpu")
    spinner.join()
    # One core of psutil.cpu_count() spun the whole window.
    assert perf(result)["cpu"].value >= 100 / (psutil.cpu_count() or 1) * 0.7


async def test_load_per_core() -> None:
    cores = psutil.cpu_count() or 1
    result = await run(metric="load", warn=[1000, 1000, 1000], crit=[2000, 2000, 2000])
    assert result.status is Status.OK
    loads = perf(result)
    assert list(loads) == ["load1", "load5", "load15"]
    for got, raw in zip(loads.values(), os.getloadavg(), strict=True):
        assert math.isclose(got.value, raw / cores, abs_tol=0.5)
        assert (got.warn, got.crit) == ("1000", "2000")
    assert result.message.endswith(f"({cores} cores)")


async def test_memory() -> None:
    result = await run(metric="memory", warn=0, crit=100)
    used = perf(result)["used"]
    assert math.isclose(used.value, psutil.virtual_memory().percent, abs_tol=5)
    assert result.status is Status.WARNING
    assert perf(result)["available"].uom == "B"
    assert re.fullmatch(
        r"MEMORY WARNING - [\d.]+% used \([\d.]+ \w+ available of .*\)", result.message
    )


async def test_swap() -> None:
    result = await run(metric="swap")
    if psutil.swap_memory().total == 0:
        assert (result.status, result.message) == (Status.OK, "SWAP OK - no swap configured")
        assert result.perfdata == ()
    else:
        assert result.status is level(perf(result)["used"].value, 60, 80)


async def test_disk_of_root() -> None:
    result = await run(metric="disk", mounts=["/"])
    root = perf(result)["/"]
    expected = psutil.disk_usage("/")
    assert math.isclose(root.value, expected.percent, abs_tol=1)
    assert result.status is level(root.value, 85, 95)
    free = perf(result)["/ free"]
    assert (free.uom, free.max) == ("B", expected.total)
    assert result.message.startswith(f"DISK {result.status.name} - / ")


async def test_disk_of_all_real_filesystems_includes_root() -> None:
    result = await run(metric="disk", warn=0, crit=100)
    assert "/" in perf(result)
    assert result.status is Status.WARNING


async def test_a_listed_path_that_is_not_mounted_is_critical(tmp_path: Path) -> None:
    result = await run(metric="disk", mounts=["/", str(tmp_path)])
    assert result.status is Status.CRITICAL
    assert result.message == f"DISK CRITICAL - {tmp_path} not mounted"
    assert "/" in perf(result)


async def test_a_hung_statvfs_is_unknown_and_not_started_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A dead NFS server, at the psutil seam: statvfs never returns.
    release = threading.Event()
    calls: list[str] = []

    def hung_disk_usage(path: str) -> Any:
        calls.append(path)
        release.wait(10)
        raise OSError("released")

    monkeypatch.setattr(psutil, "disk_usage", hung_disk_usage)
    check = LocalCheck()
    await check.start()
    try:
        first, second = await asyncio.gather(
            run(0.3, check, metric="disk", mounts=["/"]),
            run(0.3, check, metric="disk", mounts=["/"]),
        )
        third = await run(0.2, check, metric="disk", mounts=["/"])
    finally:
        release.set()
    assert calls == ["/"]  # one thread for all three checks
    for result in (first, second):
        assert result.status is Status.UNKNOWN
        assert re.fullmatch(
            r"local disk check did not finish within 0.3s \(waiting for statvfs of /, "
            r"running for 0\.\ds\)",
            result.message,
        ), result.message
    assert re.fullmatch(
        r"local disk check did not finish within 0.2s \(waiting for statvfs of /, "
        r"running for \d\.\ds\)",
        third.message,
    ), third.message
    await asyncio.sleep(0.1)  # the released call comes back (failing) and is forgotten
    after = await run(check=check, metric="disk", mounts=["/"])
    assert after.message == "local disk check failed: released"
    assert calls == ["/", "/"]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "987.654"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


async def test_process_by_cmdline_and_name(sleeper: subprocess.Popen[bytes]) -> None:
    one = await run(metric="process", cmdline=r"^sleep 987\.654$")
    assert (one.status, one.message) == (
        Status.OK,
        r"PROCS OK - 1 processes matching /^sleep 987\.654$/",
    )
    assert perf(one)["procs"] == Perf("procs", 1.0, "", None, "1:", 0.0)
    me = psutil.Process().name()
    mine = await run(metric="process", process=me, min_count=0, max_count=0)
    assert mine.status is Status.CRITICAL
    assert re.fullmatch(
        rf"PROCS CRITICAL - \d+ processes named '{me}' \(expected at most 0\)", mine.message
    )
    both = await run(metric="process", process="sleep", cmdline="987")
    assert both.message == "PROCS OK - 1 processes named 'sleep' and matching /987/"
    none = await run(metric="process", process="no-such-daemon")
    assert (
        none.message == "PROCS CRITICAL - 0 processes named 'no-such-daemon' (expected at least 1)"
    )
    absent = await run(metric="process", process="no-such-daemon", min_count=0, max_count=0)
    assert absent.status is Status.OK


async def test_listening_tcp_udp_and_ipv6() -> None:
    with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        tcp_port, udp_port = tcp.getsockname()[1], udp.getsockname()[1]
        ok = await run(metric="listening", port=tcp_port)
        udp_ok = await run(metric="listening", port=udp_port, protocol="udp")
        wrong_protocol = await run(metric="listening", port=tcp_port, protocol="udp")
    closed = await run(metric="listening", port=tcp_port)
    assert (ok.status, ok.message) == (
        Status.OK,
        f"LISTEN OK - tcp port {tcp_port} is open on 127.0.0.1",
    )
    assert udp_ok.message == f"LISTEN OK - udp port {udp_port} is open on 127.0.0.1"
    assert wrong_protocol.status is Status.CRITICAL
    assert (closed.status, closed.message) == (
        Status.CRITICAL,
        f"LISTEN CRITICAL - nothing listens on tcp port {tcp_port}",
    )


async def test_listening_on_ipv6_loopback() -> None:
    try:
        six = socket.socket(socket.AF_INET6)
        six.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with six:
        six.listen()
        result = await run(metric="listening", port=six.getsockname()[1])
    assert result.message.endswith("is open on ::1")


async def test_a_bound_but_not_listening_tcp_socket_is_not_listening() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        result = await run(metric="listening", port=sock.getsockname()[1])
    assert result.status is Status.CRITICAL


# ------------------------------------------------------------------- systemd


async def test_systemd_for_real() -> None:
    check = LocalCheck()
    if check.systemctl is None:
        result = await run(check=check, metric="systemd", unit="systemd-journald.service")
        assert result.message == "SYSTEMD UNKNOWN - systemctl not found on this machine"
        return
    result = await run(check=check, metric="systemd", unit="systemd-journald.service")
    if result.status is Status.UNKNOWN:
        # A container without systemd as PID 1: the check says why, in systemctl's words.
        assert result.message.startswith("SYSTEMD UNKNOWN - cannot ask systemd: "), result.message
        assert len(result.message) > len("SYSTEMD UNKNOWN - cannot ask systemd: ") + 5
    else:
        assert (
            result.message.startswith("SYSTEMD ")
            and "systemd-journald.service is" in result.message
        )


async def test_without_systemctl() -> None:
    check = LocalCheck()
    check.systemctl = None
    result = await run(check=check, metric="systemd", unit="cron.service")
    assert (result.status, result.message) == (
        Status.UNKNOWN,
        "SYSTEMD UNKNOWN - systemctl not found on this machine",
    )


def fake_systemctl(tmp_path: Path, body: str) -> LocalCheck:
    path = tmp_path / "systemctl"
    path.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\n{body}')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    check = LocalCheck()
    check.systemctl = str(path)
    return check


@pytest.mark.parametrize(
    ("active", "sub", "status"),
    [
        ("active", "running", Status.OK),
        ("active", "exited", Status.OK),
        ("reloading", "reload", Status.WARNING),
        ("activating", "start-pre", Status.WARNING),
        ("deactivating", "stop-sigterm", Status.CRITICAL),
        ("inactive", "dead", Status.CRITICAL),
        ("failed", "failed", Status.CRITICAL),
    ],
)
async def test_systemd_states(tmp_path: Path, active: str, sub: str, status: Status) -> None:
    check = fake_systemctl(
        tmp_path, f"printf 'LoadState=loaded\\nActiveState={active}\\nSubState={sub}\\n'\n"
    )
    result = await run(check=check, metric="systemd", unit="nginx.service")
    assert (result.status, result.message) == (
        status,
        f"SYSTEMD {status.name} - nginx.service is {active} ({sub})",
    )
    args = (tmp_path / "args").read_text().split()
    assert args == ["show", "-p", "LoadState,ActiveState,SubState", "--", "nginx.service"]


async def test_systemd_unit_not_found(tmp_path: Path) -> None:
    body = "printf 'LoadState=not-found\\nActiveState=inactive\\nSubState=dead\\n'\n"
    result = await run(check=fake_systemctl(tmp_path, body), metric="systemd", unit="nope.service")
    assert result.message == "SYSTEMD CRITICAL - unit nope.service not found"


async def test_systemd_hanging_or_failing_systemctl(tmp_path: Path) -> None:
    hung = await run(
        0.5, fake_systemctl(tmp_path, "sleep 30\n"), metric="systemd", unit="a.service"
    )
    assert hung.message == "SYSTEMD UNKNOWN - systemctl gave no answer in 0.5s"
    body = "echo 'Failed to connect to bus: No such file or directory' >&2\nexit 1\n"
    failed = await run(check=fake_systemctl(tmp_path, body), metric="systemd", unit="a.service")
    assert failed.message == (
        "SYSTEMD UNKNOWN - cannot ask systemd: Failed to connect to bus: No such file or directory"
    )
