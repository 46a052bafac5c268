"""Fixtures for the lab tests: free ports, a small fleet, a running lab."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from monitord.lab import Fleet, Lab, generate_fleet
from tests.lab.probes import Ports


def _free_port() -> int:
    # A wildcard bind (never listened on: no traffic, nothing exposed) gets a
    # port that no address on this machine uses, so the lab can bind it on
    # every 127.x device address even while other labs run.
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def ports() -> Ports:
    """Per-test device ports, so parallel runs and a running demo lab never collide."""
    tcp = _free_port()
    http = _free_port()
    while http == tcp:
        http = _free_port()
    return Ports(tcp, http)


@pytest.fixture(scope="session")
def small_fleet() -> Fleet:
    return generate_fleet(devices=40, customers=4, seed=3)


@pytest.fixture
async def lab(small_fleet: Fleet, ports: Ports) -> AsyncIterator[Lab]:
    async with Lab(
        small_fleet, control_port=0, tcp_port=ports.tcp, http_port=ports.http, shards=1
    ) as running:
        yield running
