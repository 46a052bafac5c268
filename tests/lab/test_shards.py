"""The fleet served by worker processes: faults must reach every shard."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import psutil
import pytest

from monitord.lab import BANNER, Fleet, Lab, LabClient, LabError, default_shards
from tests.lab.probes import Ports, http_get, read_banner, refused


def shard_processes() -> list[psutil.Process]:
    """Live shard workers of this process (a zombie's command line cannot be read)."""
    out = []
    for p in psutil.Process().children():
        try:
            if "monitord.lab.shards" in " ".join(p.cmdline()):
                out.append(p)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return out


@pytest.fixture
async def sharded(small_fleet: Fleet, ports: Ports) -> AsyncIterator[Lab]:
    async with Lab(
        small_fleet, control_port=0, tcp_port=ports.tcp, http_port=ports.http, shards=2
    ) as lab:
        yield lab
    assert shard_processes() == []


def test_default_shards() -> None:
    assert [default_shards(n) for n in (40, 1200, 5000, 5001, 12_000)] == [1, 1, 1, 2, 3]


async def test_devices_split_over_two_processes(
    sharded: Lab, small_fleet: Fleet, ports: Ports
) -> None:
    assert len(shard_processes()) == 2
    assert {sharded.shard_of(d.name) for d in small_fleet.devices} == {0, 1}
    stats = await sharded.stats()
    assert stats["shards"] == 2
    assert stats["listeners"] == 2 * len(small_fleet.devices)
    for device in small_fleet.devices[:4]:
        assert await read_banner(device.address, ports.tcp) == BANNER
        assert (await http_get(device.address, ports.http)).body == f"ok {device.name}".encode()


async def test_site_fault_reaches_both_shards(
    sharded: Lab, small_fleet: Fleet, ports: Ports
) -> None:
    site = small_fleet.sites[0]
    assert {sharded.shard_of(d.name) for d in site.devices} == {0, 1}
    async with LabClient(sharded.control_url) as client:
        down = await client.inject("site", site.name, "down")
        for device in site.devices:
            assert await refused(device.address, ports.tcp)
            assert await refused(device.address, ports.http)
        await client.heal(down)
        broken = await client.inject("site", site.name, "http_error")
        answers = await asyncio.gather(*(http_get(d.address, ports.http) for d in site.devices))
        assert {a.status for a in answers} == {503}
        await client.heal(broken)
    answers = await asyncio.gather(*(http_get(d.address, ports.http) for d in site.devices))
    assert {a.status for a in answers} == {200}
    assert (await sharded.stats())["http_requests"] == 2 * len(site.devices)


async def test_dead_shard_is_reported_not_hung(sharded: Lab, small_fleet: Fleet) -> None:
    victim = next(d for d in small_fleet.devices if sharded.shard_of(d.name) == 1)
    for proc in shard_processes():
        os.kill(proc.pid, signal.SIGKILL)
    with pytest.raises(LabError, match=r"shard \d exited \(code -9\) during 'apply'"):
        await sharded.inject("device", victim.name, "down")


async def test_shard_start_failure_is_reported(small_fleet: Fleet, ports: Ports) -> None:
    device = small_fleet.devices[1]
    blocker = await asyncio.start_server(lambda r, w: None, device.address, ports.tcp)
    try:
        lab = Lab(small_fleet, control_port=0, tcp_port=ports.tcp, http_port=ports.http, shards=2)
        with pytest.raises(LabError, match=f"cannot listen on {device.address}:{ports.tcp}"):
            await lab.start()
        assert shard_processes() == []
    finally:
        blocker.close()
        await blocker.wait_closed()
