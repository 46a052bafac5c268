"""Helpers of the RMM adapter tests: where the shared N-sight fixtures are, and
running emulators (imported by test_nsight, test_rmm_emulator, test_tactical)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from monitord.lab.rmm_nsight import Account, FixtureAccount, NsightEmulator
from tests.conftest import need, shared_dir

KEY = "nsight-test-key-5f0e1d2c3b4a"


def fixtures_dir() -> Path:
    """shared/fixtures/rmm/nsight beside the checkout (MONITORD_SHARED overrides
    the shared directory); skips the test (fails it in CI) when absent."""
    found = shared_dir() / "fixtures" / "rmm" / "nsight"
    need(found.is_dir(), f"N-sight fixtures not found at {found} (set MONITORD_SHARED)")
    return found


@asynccontextmanager
async def nsight(account: Account | None = None, **kwargs: object) -> AsyncIterator[NsightEmulator]:
    emulator = NsightEmulator(account or FixtureAccount(fixtures_dir()), api_key=KEY, **kwargs)  # type: ignore[arg-type]
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.close()
