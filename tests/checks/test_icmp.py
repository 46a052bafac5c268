"""The `icmp` check against real kernels: loopback, a veth namespace, ping sockets.

Every 127.0.0.0/8 address answers echo requests (the kernel does it), so the
loopback tests need no setup. 0.0.0.0 serves as a target that never answers:
Linux delivers a ping to it locally but the reply comes from 127.0.0.1, which
a pinger matching on the source address (this one, like fping) ignores.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
import uvloop
from icmplib import NameLookupError

from checks import icmp as icmp_module
from checks.base import CheckType, load_check_class
from checks.icmp import NO_PERMISSION, IcmpCheck, IcmpParams, evaluate
from monitord.model import CheckResult, Status, Target
from tests.conftest import LATE
from tests.netns import UncontainedRoute, VethNamespace, ip, require_netns, veth_namespace

REPO = Path(__file__).resolve().parents[2]
SILENT = "0.0.0.0"  # answered from 127.0.0.1, so never matched: every request is lost
OK_MESSAGE = re.compile(r"^PING OK - Packet loss = 0%, RTA = \d+\.\d\d ms$")
FAST = IcmpParams(count=3, packet_interval=0.01)


def need(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def loopback(i: int) -> str:
    """The i-th of many distinct 127.x.y.z addresses (none a network or broadcast)."""
    return f"127.{1 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}"


def perf(result: CheckResult) -> dict[str, Any]:
    return {p.label: p for p in result.perfdata}


@pytest.fixture
async def icmp() -> AsyncIterator[IcmpCheck]:
    check = IcmpCheck()
    await check.start()
    try:
        need("ipv4" in check.socket_kinds, f"no ICMP socket here: {check.socket_errors}")
        yield check
    finally:
        await check.close()


def record_timers(monkeypatch: pytest.MonkeyPatch) -> list[asyncio.TimerHandle]:
    """Every timer the icmp module schedules on the running loop from now on."""
    loop = asyncio.get_running_loop()
    handles: list[asyncio.TimerHandle] = []
    real_call_at = loop.call_at

    def call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        handle = real_call_at(when, callback, *args, **kwargs)
        if getattr(callback, "__module__", None) == icmp_module.__name__:
            handles.append(handle)
        return handle

    monkeypatch.setattr(loop, "call_at", call_at)
    return handles


def pending_timers(timers: list[asyncio.TimerHandle]) -> list[asyncio.TimerHandle]:
    """Those of `timers` neither cancelled nor already run."""
    now = asyncio.get_running_loop().time()
    return [t for t in timers if not t.cancelled() and t.when() > now]


def check_timers(timers: list[asyncio.TimerHandle]) -> list[asyncio.TimerHandle]:
    """The pending timers the ICMP check itself armed (sends, tick, deadline)."""
    return [t for t in pending_timers(timers) if "_Endpoint" in repr(t) or "_Probe" in repr(t)]


async def until_sent(check: IcmpCheck) -> None:
    """Wait until a request is out on the wire and waiting for its reply."""
    endpoint = check._endpoints[socket.AF_INET]  # type: ignore[index]
    for _ in range(1000):
        if endpoint.pending:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("no request went out")


# ------------------------------------------------------------------ params


def test_registered_and_satisfies_the_protocol() -> None:
    cls = load_check_class("icmp")
    assert cls is IcmpCheck
    assert isinstance(IcmpCheck(), CheckType)
    assert IcmpParams().default_name("icmp") == "icmp"


def test_params_defaults_are_check_pings() -> None:
    p = IcmpParams()
    assert (p.count, p.packet_interval, p.size) == (3, 0.2, 56)
    assert (p.warn_rta_ms, p.warn_loss_pct, p.crit_rta_ms, p.crit_loss_pct) == (200, 20, 500, 60)


def test_params_accept_check_ping_shorthand() -> None:
    p = IcmpParams.model_validate({"warn": "100,20%", "crit": "500.5,60%"})
    assert (p.warn_rta_ms, p.warn_loss_pct, p.crit_rta_ms, p.crit_loss_pct) == (100, 20, 500.5, 60)


@pytest.mark.parametrize(
    "data",
    [
        {"count": 0},
        {"size": 70000},
        {"packet_interval": -1},
        {"warn": "100"},
        {"warn": 100},
        {"warn": "100,20%", "warn_rta_ms": 50},
        {"warn_rta_ms": 600},  # above the default crit
        {"crit": "100,10%"},  # below the default warn
        {"crit_loss_pct": 101},
        {"timeout": 3},
    ],
)
def test_params_reject(data: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        IcmpParams.model_validate(data)


def test_params_are_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        IcmpParams().count = 5  # type: ignore[misc]


# --------------------------------------------------------------- verdicts


def test_evaluate_loss_thresholds_like_check_ping() -> None:
    ms = 1_000_000
    p = IcmpParams()  # warn 200 ms / 20 %, crit 500 ms / 60 %
    assert evaluate(p, [ms, ms, ms]).status is Status.OK
    one_lost = evaluate(p, [ms, ms])
    assert one_lost.status is Status.WARNING
    assert one_lost.message == "PING WARNING - Packet loss = 33%, RTA = 1.00 ms"
    two_lost = evaluate(p, [ms])
    assert two_lost.status is Status.CRITICAL
    assert two_lost.message == "PING CRITICAL - Packet loss = 66%, RTA = 1.00 ms"
    # at the threshold counts, like check_ping's >=
    assert evaluate(IcmpParams(count=5), [ms] * 4).status is Status.WARNING  # 20 %
    assert evaluate(p, [200 * ms] * 3).status is Status.WARNING
    assert evaluate(p, [100 * ms, 900 * ms, 500 * ms]).status is Status.CRITICAL  # RTA 500


def test_evaluate_all_lost() -> None:
    result = evaluate(IcmpParams(), [], "sendto: Network is unreachable")
    assert result.status is Status.CRITICAL
    assert result.message == (
        "PING CRITICAL - host unreachable (100% loss): sendto: Network is unreachable"
    )
    assert [(p.label, p.value, p.uom) for p in result.perfdata] == [("pl", 100.0, "%")]


# ------------------------------------------------------ loopback, for real


async def test_ping_localhost(icmp: IcmpCheck) -> None:
    result = await icmp.run(Target("lo", "127.0.0.1"), FAST, 2.0)
    assert result.status is Status.OK, result
    assert OK_MESSAGE.match(result.message), result.message
    data = perf(result)
    assert data["rta"].uom == "ms" and 0 < data["rta"].value < 50
    assert (data["rta"].warn, data["rta"].crit) == ("200", "500")
    assert (data["pl"].value, data["pl"].uom, data["pl"].max) == (0.0, "%", 100.0)
    assert icmp.in_flight() == 0


@pytest.mark.parametrize("size", [0, 1, 7, 8, 57, 1473, 9001])
async def test_payload_sizes_including_odd_ones(icmp: IcmpCheck, size: int) -> None:
    # a wrong checksum (raw sockets compute it here) makes the kernel drop the request
    params = IcmpParams(count=2, packet_interval=0, size=size)
    result = await icmp.run(Target("lo", "127.0.0.1"), params, 2.0)
    assert result.status is Status.OK, result


async def test_ipv4_mapped_ipv6_address_is_pinged_over_ipv4(icmp: IcmpCheck) -> None:
    result = await icmp.run(Target("lo", "::ffff:127.0.0.1"), FAST, 2.0)
    assert result.status is Status.OK, result


async def test_many_addresses_concurrently_share_one_socket(icmp: IcmpCheck) -> None:
    targets = [Target(f"d{i}", loopback(i)) for i in range(1000)]
    results = await asyncio.gather(*(icmp.run(t, IcmpParams(count=1), 5.0) for t in targets))
    assert [r.status for r in results] == [Status.OK] * 1000, {r.message for r in results}
    assert all(perf(r)["rta"].value > 0 for r in results)
    many = await asyncio.gather(*(icmp.run(t, FAST, 5.0) for t in targets[:200]))
    assert {r.status for r in many} == {Status.OK}
    assert icmp.in_flight() == 0


async def test_two_instances_do_not_take_each_others_replies() -> None:
    first, second = IcmpCheck(), IcmpCheck()
    await first.start()
    await second.start()
    try:
        need("ipv4" in first.socket_kinds, f"no ICMP socket here: {first.socket_errors}")
        target = Target("lo", "127.0.0.1")
        params = IcmpParams(count=5, packet_interval=0.01)
        results = await asyncio.gather(
            *(check.run(target, params, 2.0) for _ in range(20) for check in (first, second))
        )
        assert [r.message.split(" - ")[1].split(",")[0] for r in results] == [
            "Packet loss = 0%"
        ] * 40
    finally:
        await first.close()
        await second.close()


async def test_ping_ipv6_loopback(icmp: IcmpCheck) -> None:
    need("ipv6" in icmp.socket_kinds, f"no ICMPv6 socket here: {icmp.socket_errors}")
    result = await icmp.run(Target("lo6", "::1"), FAST, 2.0)
    assert result.status is Status.OK, result
    assert OK_MESSAGE.match(result.message)


async def test_host_name_is_resolved(icmp: IcmpCheck) -> None:
    result = await icmp.run(Target("lo", "localhost"), FAST, 2.0)
    assert result.status is Status.OK, result


async def test_unresolvable_name_is_unknown(
    icmp: IcmpCheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_such_name(name: str) -> list[str]:  # no real DNS query leaves the host
        raise NameLookupError(name)

    monkeypatch.setattr(icmp_module, "async_resolve", no_such_name)
    result = await icmp.run(Target("x", "no-such-host.invalid"), FAST, 2.0)
    assert result.status is Status.UNKNOWN
    assert result.message == "PING UNKNOWN - cannot resolve 'no-such-host.invalid'"


async def test_rta_above_crit_is_critical(icmp: IcmpCheck) -> None:
    params = IcmpParams(count=2, packet_interval=0.01, warn_rta_ms=0.0000005, crit_rta_ms=0.000001)
    result = await icmp.run(Target("lo", "127.0.0.1"), params, 2.0)
    assert result.status is Status.CRITICAL, result
    assert result.message.startswith("PING CRITICAL - Packet loss = 0%, RTA = ")
    assert perf(result)["rta"].crit == "1e-06"


async def test_rta_above_warn_is_warning(icmp: IcmpCheck) -> None:
    params = IcmpParams(count=2, packet_interval=0.01, warn_rta_ms=0.000001, crit_rta_ms=10_000)
    result = await icmp.run(Target("lo", "127.0.0.1"), params, 2.0)
    assert result.status is Status.WARNING, result
    assert result.message.startswith("PING WARNING - Packet loss = 0%, RTA = ")


async def test_unanswered_requests_are_lost_at_the_timeout(icmp: IcmpCheck) -> None:
    started = time.monotonic()
    result = await icmp.run(Target("silent", SILENT), FAST, 0.3)
    elapsed = time.monotonic() - started
    assert result.status is Status.CRITICAL
    assert result.message == "PING CRITICAL - host unreachable (100% loss)"
    assert 0.25 < elapsed < 0.3 + LATE
    assert icmp.in_flight() == 0


async def test_send_error_is_critical_with_the_reason(icmp: IcmpCheck) -> None:
    # The limited broadcast address: sendto fails (EACCES without SO_BROADCAST).
    started = time.monotonic()
    result = await icmp.run(Target("bcast", "255.255.255.255"), IcmpParams(count=1), 5.0)
    assert time.monotonic() - started < 5.0 - LATE  # no waiting for replies that cannot come
    assert result.status is Status.CRITICAL
    assert result.message.startswith("PING CRITICAL - host unreachable (100% loss): sendto: ")


async def test_sequence_wraps_and_skips_pairs_in_flight(icmp: IcmpCheck) -> None:
    endpoint = icmp._endpoints[socket.AF_INET]  # type: ignore[index]
    endpoint._seq = 0xFFFE
    blocker = object()
    endpoint.pending["127.0.0.1", 0] = blocker  # type: ignore[assignment]
    try:
        result = await icmp.run(
            Target("lo", "127.0.0.1"), IcmpParams(count=4, packet_interval=0), 2.0
        )
    finally:
        del endpoint.pending["127.0.0.1", 0]
    assert result.status is Status.OK, result
    assert perf(result)["pl"].value == 0
    assert endpoint._seq == 3  # 0xFFFF, (0 skipped), 1, 2, 3
    assert icmp.in_flight() == 0


async def test_cancelled_run_leaves_nothing_behind(
    icmp: IcmpCheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    timers = record_timers(monkeypatch)
    task = asyncio.create_task(
        icmp.run(Target("silent", SILENT), IcmpParams(count=3, packet_interval=5), 30.0)
    )
    await until_sent(icmp)
    # Only the check's own timers: the test's short sleeps may still look pending
    # on uvloop, whose clock is read at the start of a loop iteration.
    assert len(check_timers(timers)) == 3  # two sends still to come and the deadline
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert icmp.in_flight() == 0
    assert not check_timers(timers)


async def test_engine_deadline_leaves_nothing_behind(
    icmp: IcmpCheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    timers = record_timers(monkeypatch)
    many = [Target(f"s{i}", SILENT) for i in range(50)] + [Target("lo", "127.0.0.1")]
    runs = [icmp.run(t, IcmpParams(count=5, packet_interval=0.05), 10.0) for t in many]
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.12):
            await asyncio.gather(*runs)
    await asyncio.sleep(0)  # let the cancelled runs unwind
    assert icmp.in_flight() == 0
    assert timers and not pending_timers(timers)
    # the socket still works afterwards
    assert (await icmp.run(Target("lo", "127.0.0.1"), FAST, 2.0)).status is Status.OK


async def test_close_ends_waiting_runs_with_unknown(icmp: IcmpCheck) -> None:
    task = asyncio.create_task(icmp.run(Target("silent", SILENT), FAST, 30.0))
    await until_sent(icmp)
    await icmp.close()
    result = await asyncio.wait_for(task, 1)
    assert result.status is Status.UNKNOWN
    assert "closed" in result.message


async def test_not_started_is_unknown() -> None:
    result = await IcmpCheck().run(Target("lo", "127.0.0.1"), FAST, 1.0)
    assert result.status is Status.UNKNOWN


async def test_no_permission_is_unknown_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    real_socket = socket.socket
    icmp_protocols = {socket.IPPROTO_ICMP, socket.IPPROTO_ICMPV6}

    def denied(family: int = -1, type: int = -1, proto: int = -1, *args: Any) -> socket.socket:
        if proto in icmp_protocols:  # as for a user without CAP_NET_RAW or ping group
            raise PermissionError(1, "Operation not permitted")
        return real_socket(family, type, proto, *args)

    monkeypatch.setattr(socket, "socket", denied)
    check = IcmpCheck()
    await check.start()
    try:
        assert check.socket_kinds == {}
        assert check.socket_errors == {"ipv4": NO_PERMISSION, "ipv6": NO_PERMISSION}
        for address in ("127.0.0.1", "::1"):
            result = await check.run(Target("lo", address), FAST, 1.0)
            assert result.status is Status.UNKNOWN
            assert result.message == f"PING UNKNOWN - {NO_PERMISSION}"
    finally:
        await check.close()


def test_runs_on_uvloop() -> None:
    async def main() -> list[CheckResult]:
        check = IcmpCheck()
        await check.start()
        try:
            need("ipv4" in check.socket_kinds, f"no ICMP socket here: {check.socket_errors}")
            targets = [Target(f"d{i}", loopback(i)) for i in range(500)]
            results = await asyncio.gather(*(check.run(t, FAST, 5.0) for t in targets))
            lost = await check.run(Target("silent", SILENT), FAST, 0.2)
            assert check.in_flight() == 0
            return [*results, lost]
        finally:
            await check.close()

    *results, lost = uvloop.run(main())
    assert {r.status for r in results} == {Status.OK}
    assert lost.status is Status.CRITICAL


async def test_reply_demultiplexing_rejects_foreign_packets() -> None:
    """Feed crafted raw-socket datagrams (IP header + ICMP) through a UDP stand-in."""
    loop = asyncio.get_running_loop()
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    endpoint = icmp_module._Endpoint(loop, receiver, socket.AF_INET, raw=True)
    try:
        probe = icmp_module._Probe("127.0.0.1", "127.0.0.1", 1, 56, loop.create_future())
        probe.nsent = 1
        probe.outstanding[7] = time.monotonic_ns()
        endpoint.pending["127.0.0.1", 7] = probe
        cookie = endpoint._cookie

        def reply(
            kind: int = 0, ident: int = endpoint.ident, seq: int = 7, data: bytes = cookie
        ) -> bytes:
            ip_header = bytes([0x45]) + bytes(19)
            return ip_header + struct.pack("!BBHHH", kind, 0, 0, ident, seq) + data + bytes(48)

        foreign = [
            reply(kind=8),  # our own echo request, looped back
            reply(kind=3),  # destination unreachable
            reply(ident=endpoint.ident ^ 1),  # another pinger's reply
            reply(data=bytes(8)),  # same identifier, not our cookie
            reply(seq=8),  # nothing waits for this sequence
            bytes([0x45]) + bytes(10),  # truncated
        ]
        for packet in foreign:
            sender.sendto(packet, receiver.getsockname())
        await asyncio.sleep(0.05)
        assert not probe.fut.done() and not probe.rtts
        sender.sendto(reply(), receiver.getsockname())
        await asyncio.wait_for(probe.fut, 1)
        assert len(probe.rtts) == 1 and not endpoint.pending
    finally:
        endpoint.close("test over")
        sender.close()


# ------------------------------------------ kernels we configure ourselves


def _isolated_python(*, allow_ping_group: bool) -> dict[str, Any]:
    """Run a probe in a fresh network namespace without CAP_NET_RAW.

    The namespace has only `lo` and its own net.ipv4.ping_group_range
    (kernel default "1 0": nobody); with `allow_ping_group` it is opened to
    gid 0, as distributions do for unprivileged ping.
    """
    require_netns()
    for tool in ("unshare", "setpriv"):
        need(shutil.which(tool) is not None, f"util-linux's {tool} is missing")
    script = """
import asyncio, json, socket
from checks.icmp import IcmpCheck, IcmpParams
from monitord.model import Target

async def main():
    check = IcmpCheck()
    await check.start()
    try:
        out = {"kinds": check.socket_kinds, "errors": check.socket_errors, "results": {}}
        endpoint = (check._endpoints or {}).get(socket.AF_INET)
        if endpoint is not None:
            endpoint._seq = 0xFFFD  # the first run wraps the 16-bit sequence
        params = IcmpParams(count=5, packet_interval=0.01)
        for address in ("127.0.0.1", "127.8.9.10", "::1", "0.0.0.0"):
            result = await check.run(Target("d", address), params, 1.0)
            out["results"][address] = [result.status.name, result.message]
        out["in_flight"] = check.in_flight()
    finally:
        await check.close()
    print(json.dumps(out))

asyncio.run(main())
"""
    setup = "ip link set lo up"
    if allow_ping_group:
        setup += " && echo '0 0' > /proc/sys/net/ipv4/ping_group_range"
    command = [
        "unshare",
        "--net",
        "sh",
        "-c",
        f'{setup} && exec setpriv --bounding-set -net_raw "$0" -c "$1"',
        sys.executable,
        script,
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.netns
def test_unprivileged_ping_socket_is_used_when_the_group_may() -> None:
    out = _isolated_python(allow_ping_group=True)
    assert out["kinds"] == {"ipv4": "dgram", "ipv6": "dgram"}, out
    for address in ("127.0.0.1", "127.8.9.10", "::1"):
        status, message = out["results"][address]
        assert status == "OK", message
        assert message.startswith("PING OK - Packet loss = 0%")
    assert out["results"]["0.0.0.0"][0] == "CRITICAL"
    assert out["in_flight"] == 0


@pytest.mark.netns
def test_without_raw_or_ping_socket_every_run_is_unknown() -> None:
    out = _isolated_python(allow_ping_group=False)
    assert out["kinds"] == {}
    assert out["errors"] == {"ipv4": NO_PERMISSION, "ipv6": NO_PERMISSION}
    assert {tuple(r) for r in out["results"].values()} == {
        ("UNKNOWN", f"PING UNKNOWN - {NO_PERMISSION}")
    }


@pytest.fixture
def lab() -> Iterator[VethNamespace]:
    require_netns()
    with veth_namespace() as namespace:
        yield namespace


@pytest.mark.netns
async def test_namespace_address_answers_then_goes_silent(
    icmp: IcmpCheck, lab: VethNamespace
) -> None:
    target = Target("lab", lab.peer_addr)
    lab.assert_routed_via_veth()
    up = await icmp.run(target, FAST, 2.0)
    assert up.status is Status.OK, up
    assert OK_MESSAGE.match(up.message)

    lab.set_peer_link(up=False)
    lab.assert_routed_via_veth()  # our end keeps the route: packets die on the veth
    down = await icmp.run(target, FAST, 0.5)
    assert down.status is Status.CRITICAL
    assert down.message == "PING CRITICAL - host unreachable (100% loss)"
    assert icmp.in_flight() == 0


@pytest.mark.netns
async def test_namespace_link_lost_mid_check_is_partial_loss(
    icmp: IcmpCheck, lab: VethNamespace
) -> None:
    lab.assert_routed_via_veth()
    task = asyncio.create_task(
        icmp.run(Target("lab", lab.peer_addr), IcmpParams(count=4, packet_interval=0.3), 1.8)
    )
    await asyncio.sleep(0.15)  # the first reply is in; the second request leaves at 0.3 s
    try:
        lab.set_peer_link(up=False)
        lab.assert_routed_via_veth()
    except BaseException:
        task.cancel()
        raise
    result = await task
    assert result.status is Status.CRITICAL
    assert re.match(r"^PING CRITICAL - Packet loss = 75%, RTA = \d+\.\d\d ms$", result.message)


@pytest.mark.netns
def test_route_guard_refuses_uncontained_addresses() -> None:
    require_netns()
    with veth_namespace() as lab:
        lab.assert_routed_via_veth()
        with pytest.raises(UncontainedRoute, match="outside"):
            lab.assert_routed_via_veth("192.0.2.1")
        ip("link", "del", lab.host_if)  # the connected route goes with it
        with pytest.raises(UncontainedRoute):  # default route, or none at all
            lab.assert_routed_via_veth()
    assert lab.name not in ip("netns", "list").stdout
