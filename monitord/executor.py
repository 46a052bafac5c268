"""Check execution behind one interface, so a remote poller can take its place.

`LocalExecutor` runs checks in this process with one instance per check type.
A later Celery/queue poller implements the same `Executor` protocol: it needs
nothing but the `CheckSpec` (kind + frozen params) and the `Target`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from checks.base import CheckContext, CheckType, load_check_class
from monitord.inventory import CheckSpec
from monitord.model import CheckResult, Status, Target, unknown

log = logging.getLogger(__name__)

# Extra time the engine allows past a check's own timeout before it cancels it;
# checks are expected to time out by themselves and say what hung.
GRACE = 0.5


class Executor(Protocol):
    async def execute(self, spec: CheckSpec, target: Target) -> CheckResult:
        """Run one check; never raises (failures are UNKNOWN results)."""
        ...


class LocalExecutor:
    def __init__(self, context: CheckContext | None = None) -> None:
        self.context = context or CheckContext()
        self.types: dict[str, CheckType] = {}
        self.errors = 0

    async def ensure(self, kinds: set[str]) -> None:
        """Instantiate and start the check types in `kinds` not yet running."""
        for kind in sorted(kinds - self.types.keys()):
            instance = load_check_class(kind)()
            await instance.start(self.context)
            self.types[kind] = instance

    async def close(self) -> None:
        for instance in self.types.values():
            try:
                await instance.close()
            except Exception:  # shutdown must go on whatever one plugin does
                log.exception("closing check type failed")
        self.types.clear()

    async def execute(self, spec: CheckSpec, target: Target) -> CheckResult:
        check = self.types.get(spec.kind)
        if check is None:
            return unknown(f"check type {spec.kind!r} is not loaded")
        try:
            async with asyncio.timeout(spec.timeout + GRACE):
                result = await check.run(target, spec.params, spec.timeout)
        except TimeoutError:
            return unknown(f"check did not finish within {spec.timeout:g}s (cancelled)")
        except Exception as exc:  # the per-check boundary: a plugin bug is a result
            self.errors += 1
            return unknown(f"check raised {type(exc).__name__}: {str(exc)[:200]}")
        if not isinstance(result, CheckResult) or not isinstance(result.status, Status):
            self.errors += 1
            return unknown(f"check returned {type(result).__name__}, not a CheckResult")
        return result
