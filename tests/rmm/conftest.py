"""Fixtures of the RMM feed's tests: the fake RMM kind, a daemon config around it."""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from monitord.sources import rmm as rmm_sources

if TYPE_CHECKING:
    from tests.rmm.daemon import Fleet


@pytest.fixture
def fake_kind() -> Iterator[str]:
    """Registers `tests.rmm.fakes.FakeSource` as RMM kind "fake"."""
    rmm_sources.REGISTRY["fake"] = "tests.rmm.fakes.FakeSource"
    try:
        yield "fake"
    finally:
        rmm_sources.REGISTRY.pop("fake", None)


def rmm_section(**extra: Any) -> dict[str, Any]:
    """An `rmm:` section with one fake source "fake1" and Acme mapped."""
    section: dict[str, Any] = {
        "sources": [{"name": "fake1", "kind": "fake", "account": "demo"}],
        "clients": [{"client": "Acme Corporation", "customer": "acme"}],
        "stale_after": "1s",
        "blind_spot_after": "0s",
    }
    section.update(extra)
    return section


def service_port() -> int:
    """A free port below the ephemeral range. A check connecting to a closed port in
    that range can connect to itself (Linux picks the same source port on loopback),
    which would make a device taken down look up again."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


@pytest.fixture
async def fleet(tmp_path: Path, fake_kind: str) -> AsyncIterator[Fleet]:
    """A running daemon with the fake RMM source (see tests/rmm/daemon.py)."""
    from tests.rmm.daemon import running_fleet

    async with running_fleet(tmp_path) as running:
        yield running
