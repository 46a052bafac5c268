"""Fixtures: the HTTP emulators, an SMTP server on loopback, one shared client session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.channels.emulators import HttpEmulators, SmtpEmulator
from tests.conftest import free_port


@pytest.fixture
async def emu() -> AsyncIterator[HttpEmulators]:
    emulators = HttpEmulators()
    await emulators.start()
    try:
        yield emulators
    finally:
        await emulators.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpEmulator]:
    server = SmtpEmulator()
    server.start(free_port())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
