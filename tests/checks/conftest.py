"""Run the socket-level check tests on both event loops the daemon may use."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

from tests.checks.loopback import loop_factories

# Modules written against both loops; a new check test opts in here.
BOTH_LOOPS = frozenset({"test_tcp", "test_http", "test_tls", "test_dns", "test_icmp", "test_snmp"})


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    module = getattr(item, "module", None)
    if module is not None and module.__name__.rsplit(".", 1)[-1] in BOTH_LOOPS:
        return loop_factories()
    return {"asyncio": asyncio.new_event_loop}
