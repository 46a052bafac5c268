"""A live lab of a small fleet, observed through real sockets."""

from __future__ import annotations

import asyncio

import pytest

from monitord.lab import BANNER, Fleet, Lab, LabError
from tests.lab.probes import Ports, http_get, read_answer, read_banner, refused

SLOW_MS = 300


async def state_of(address: str, ports: Ports) -> str:
    """What a monitoring check would conclude about one device."""
    if await refused(address, ports.tcp):
        return "down" if await refused(address, ports.http) else "tcp_only_down?"
    assert await read_banner(address, ports.tcp) == BANNER
    if await refused(address, ports.http):
        return "service_down"
    answer = await http_get(address, ports.http)
    if answer.status == 503:
        return "http_error"
    assert answer.status == 200
    return "slow" if answer.seconds >= SLOW_MS / 1000 * 0.9 else "ok"


async def states(addresses: list[str], ports: Ports) -> set[str]:
    return set(await asyncio.gather(*(state_of(a, ports) for a in addresses)))


async def test_tcp_banner_and_http(lab: Lab, small_fleet: Fleet, ports: Ports) -> None:
    device = small_fleet.devices[3]
    assert await read_banner(device.address, ports.tcp) == b"SSH-2.0-OpenSSH_9.2p1 lab\r\n"
    answer = await http_get(device.address, ports.http)
    assert answer.status == 200
    assert answer.body == f"ok {device.name}".encode()
    assert answer.headers["content-length"] == str(len(answer.body))
    assert answer.headers["connection"] == "close"


async def test_http_keep_alive_and_pipelining(lab: Lab, small_fleet: Fleet, ports: Ports) -> None:
    device = small_fleet.devices[0]
    reader, writer = await asyncio.open_connection(device.address, ports.http)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        first = await read_answer(reader)
        assert first.headers["connection"] == "keep-alive"
        # two pipelined requests, the first with a body to skip, the second closing
        writer.write(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        writer.write(b"HEAD / HTTP/1.1\r\nConnection: close\r\n\r\n")
        second = await read_answer(reader)
        assert (second.status, second.body) == (200, f"ok {device.name}".encode())
        head = await asyncio.wait_for(reader.read(), 5)  # HEAD: headers only, then close
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    finally:
        writer.close()
        await writer.wait_closed()


async def test_http_1_0_closes_unless_keep_alive(
    lab: Lab, small_fleet: Fleet, ports: Ports
) -> None:
    address = small_fleet.devices[0].address
    plain = await http_get(address, ports.http, b"GET / HTTP/1.0\r\n\r\n")
    assert plain.headers["connection"] == "close"
    kept = await http_get(address, ports.http, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert kept.headers["connection"] == "keep-alive"


async def test_malformed_request_gets_400(lab: Lab, small_fleet: Fleet, ports: Ports) -> None:
    answer = await http_get(small_fleet.devices[0].address, ports.http, b"NONSENSE\r\n\r\n")
    assert answer.status == 400


@pytest.mark.parametrize("scope", ["device", "site"])
@pytest.mark.parametrize("kind", ["down", "service_down", "http_error", "slow"])
async def test_fault_is_observed_then_healed(
    lab: Lab, small_fleet: Fleet, ports: Ports, kind: str, scope: str
) -> None:
    site = small_fleet.sites[1]
    target = site.devices[-1].name if scope == "device" else site.name
    covered = [d.address for d in site.devices] if scope == "site" else [site.devices[-1].address]
    bystanders = [small_fleet.sites[0].devices[0].address]
    if scope == "device":
        bystanders.append(site.gateway.address)

    fault = await lab.inject(scope, target, kind, delay_ms=SLOW_MS)
    assert await states(covered, ports) == {kind}
    assert await states(bystanders, ports) == {"ok"}

    await lab.heal(fault.id)
    assert await states(covered + bystanders, ports) == {"ok"}
    inject, heal = lab.events()
    assert (inject.action, heal.action) == ("inject", "heal")
    assert inject.fault == heal.fault == fault
    assert inject.at <= heal.at


async def test_customer_down(lab: Lab, small_fleet: Fleet, ports: Ports) -> None:
    customer, other = small_fleet.customers[1], small_fleet.customers[2]
    await lab.inject("customer", customer.name, "down")
    assert await states([d.address for d in customer.devices()], ports) == {"down"}
    assert await states([d.address for d in other.devices()], ports) == {"ok"}
    await lab.heal_all()
    assert await states([d.address for d in customer.devices()], ports) == {"ok"}


async def test_going_down_closes_open_keep_alive_connections(
    lab: Lab, small_fleet: Fleet, ports: Ports
) -> None:
    # a pooled client must not keep talking to a device whose service went away
    device = small_fleet.devices[5]
    reader, writer = await asyncio.open_connection(device.address, ports.http)
    try:
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        assert (await read_answer(reader)).status == 200
        await lab.inject("device", device.name, "service_down")
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()
        await writer.wait_closed()


async def test_keep_alive_sees_error_and_slow_switch(
    lab: Lab, small_fleet: Fleet, ports: Ports
) -> None:
    device = small_fleet.devices[6]
    reader, writer = await asyncio.open_connection(device.address, ports.http)
    try:
        error = await lab.inject("device", device.name, "http_error")
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        answer = await read_answer(reader)
        assert (answer.status, answer.body) == (503, f"unavailable {device.name}".encode())
        await lab.heal(error.id)
        await lab.inject("device", device.name, "slow", delay_ms=SLOW_MS)
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        answer = await read_answer(reader)
        assert answer.status == 200 and answer.seconds >= SLOW_MS / 1000 * 0.9
    finally:
        writer.close()
        await writer.wait_closed()


async def test_overlapping_faults_heal_independently(
    lab: Lab, small_fleet: Fleet, ports: Ports
) -> None:
    site = small_fleet.sites[2]
    device = site.devices[-1]
    whole_site = await lab.inject("site", site.name, "down")
    broken = await lab.inject("device", device.name, "http_error")
    assert await state_of(device.address, ports) == "down"
    await lab.heal(whole_site.id)
    assert await state_of(device.address, ports) == "http_error"
    assert await state_of(site.gateway.address, ports) == "ok"
    assert [f.id for f in lab.faults()] == [broken.id]
    await lab.heal(broken.id)
    assert await state_of(device.address, ports) == "ok"


async def test_stats_count_requests(lab: Lab, small_fleet: Fleet, ports: Ports) -> None:
    for _ in range(3):
        await http_get(small_fleet.devices[0].address, ports.http)
    await read_banner(small_fleet.devices[0].address, ports.tcp)
    stats = await lab.stats()
    assert stats["devices"] == len(small_fleet.devices)
    assert stats["listeners"] == 2 * len(small_fleet.devices)
    assert stats["http_requests"] == 3 and stats["tcp_connections"] == 1


async def test_taken_port_fails_start_cleanly(small_fleet: Fleet, ports: Ports) -> None:
    device = small_fleet.devices[7]
    blocker = await asyncio.start_server(lambda r, w: None, device.address, ports.http)
    try:
        lab = Lab(small_fleet, control_port=0, tcp_port=ports.tcp, http_port=ports.http)
        with pytest.raises(LabError, match=f"cannot listen on {device.address}:{ports.http}: "):
            await lab.start()
        # nothing is left listening
        assert await refused(small_fleet.devices[0].address, ports.tcp)
    finally:
        blocker.close()
        await blocker.wait_closed()
