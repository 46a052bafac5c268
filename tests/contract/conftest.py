"""Run the check contract on both event loops the daemon may use."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

from tests.checks.loopback import loop_factories


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    module = getattr(item, "module", None)
    if module is not None and module.__name__.endswith(".test_checks"):
        return loop_factories()
    return {"asyncio": asyncio.new_event_loop}
