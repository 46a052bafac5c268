"""The `snmp` check type: one client per instance, profiles or generic get/walk."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from checks.base import BaseCheck, CheckContext, CheckParams
from checks.snmp.client import Progress, Session, SnmpClient
from checks.snmp.counters import COUNTER32, COUNTER64, CounterBook, Sample
from checks.snmp.errors import SnmpError
from checks.snmp.oids import OID
from checks.snmp.params import SnmpParams
from checks.snmp.report import failed
from checks.snmp.values import Var
from monitord.errors import Reason
from monitord.model import CheckResult, Status, Target

# How a failure's reason maps to a status: the device (or its agent) failing
# is CRITICAL; a request this config should not make, or credentials the
# agent rejects, is UNKNOWN: nothing is known about the device then.
REASON_STATUS = {
    Reason.TIMEOUT: Status.CRITICAL,
    Reason.NETWORK: Status.CRITICAL,
    Reason.SERVER_ERROR: Status.CRITICAL,
    Reason.AUTH: Status.UNKNOWN,
    Reason.CLIENT_ERROR: Status.UNKNOWN,
    Reason.RATE_LIMITED: Status.UNKNOWN,
}
# pysnmp's v3 engine checks request timeouts on a 0.1 s timer, so each try may
# run that much late. The tries share what is left of the check's timeout after
# that and a 10 % margin, so that "no response after N tries" (which knows
# more) normally comes before the check's own deadline.
TIMER_SLACK = 0.1
MIN_TRY = 0.05


def try_timeout(timeout: float, retries: int) -> float:
    """Seconds to wait for each of the `retries + 1` tries within `timeout`."""
    tries = retries + 1
    return max(MIN_TRY, (timeout * 0.9 - TIMER_SLACK * tries) / tries)


@dataclass(slots=True)
class Poll:
    """One check execution: what profiles and the generic evaluator work with."""

    client: SnmpClient
    session: Session
    progress: Progress
    params: SnmpParams
    counters: CounterBook
    device: tuple[str, str, int, int]  # device id, address, port, params state key
    now: float  # monotonic seconds, taken once per poll

    async def get(self, oids: Sequence[OID]) -> list[Var]:
        """GET `oids` in one request."""
        return await self.client.get(self.session, oids, self.progress)

    async def walk(
        self, scalars: Sequence[OID], columns: Sequence[OID]
    ) -> tuple[dict[OID, Var], dict[OID, dict[OID, Var]]]:
        """Walk `columns`; fetch the `.0` instances `scalars` in the same request.

        Returns scalars by OID (absent when the agent has none) and, per
        column OID, row index → var.
        """
        asked = [oid[:-1] for oid in scalars]
        got, rows = await self.client.walk(
            self.session, asked, columns, self.params.max_repetitions, self.progress
        )
        found = {var[0]: var for var in got if var[0] in scalars}
        by_column = {col: dict(cells) for col, cells in rows.items()}
        return found, by_column

    def rate(self, oid: OID, var: Var | None, uptime: int | None) -> float | None:
        """Per-second increase of counter `var` since this check's last poll."""
        if var is None or not isinstance(var[1], int):
            return None
        modulus = COUNTER64 if var[2] == "Counter64" else COUNTER32
        return self.counters.rate((self.device, oid), Sample(var[1], self.now, uptime), modulus)


Evaluator = Callable[[Poll], Awaitable[CheckResult]]


class SnmpCheck(BaseCheck):
    """Polls SNMP agents (v1, v2c, v3) and judges values, rates and table rows.

    One instance serves every `snmp` check of the daemon: it owns the UDP
    transport (v1/v2c) and the pysnmp engine (v3), bound to the loop `start`
    runs in, the in-flight bound and the per-device counter state. Never
    raises for SNMP failures: they are CRITICAL (no answer, agent error) or
    UNKNOWN (rejected credentials, unknown OID) results saying which.
    """

    kind: ClassVar[str] = "snmp"
    Params: ClassVar[type[CheckParams]] = SnmpParams

    def __init__(
        self, max_in_flight: int = 64, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = SnmpClient(max_in_flight)
        self.counters = CounterBook()
        self._clock = clock
        self._evaluators: dict[str | None, Evaluator] = {}

    async def start(self, context: CheckContext | None = None) -> None:
        if self.client.loop is None:
            await self.client.open()
        if not self._evaluators:
            from checks.snmp.generic import evaluate
            from checks.snmp.profiles import PROFILES

            self._evaluators = {None: evaluate, **PROFILES}

    async def close(self) -> None:
        await self.client.close()

    async def run(self, target: Target, params: Any, timeout: float) -> CheckResult:
        p: SnmpParams = params
        if self.client.loop is not asyncio.get_running_loop():
            if self.client.loop is not None:
                return failed(Status.UNKNOWN, "SNMP check was started in another event loop")
            await self.start()
        progress = Progress()
        session: Session | None = None
        try:
            async with asyncio.timeout(timeout):
                session = await self.client.session(
                    target.address, p.port, p.creds, try_timeout(timeout, p.retries), p.retries
                )
                device = (target.device_id, target.address, p.port, p.state_key)
                poll = Poll(self.client, session, progress, p, self.counters, device, self._clock())
                return await self._evaluators[p.profile](poll)
        except SnmpError as exc:
            status = REASON_STATUS[exc.reason]
            return failed(status, str(exc))
        except TimeoutError:
            if progress.waiting_for_slot:
                return failed(
                    Status.UNKNOWN,
                    f"no SNMP request slot within {timeout:g} s (poller overloaded: "
                    f"{self.client.max_in_flight} requests in flight)",
                )
            if session is None:
                return failed(Status.CRITICAL, f"cannot resolve {target.address!r} in time")
            hint = self.client.timeout_hint(session)
            answered = progress.requests - 1
            more = f" ({answered} answered before)" if answered > 0 else ""
            return failed(
                Status.CRITICAL,
                f"no response from {session.where} within {timeout:g} s{more} — {hint}",
            )
