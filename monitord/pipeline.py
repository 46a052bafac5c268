"""Results → state → events: the step between a check result and the correlator.

`ResultPipeline.handle` is called once per check result on the event loop; it
is the hot path of the daemon, so it does only dictionary work and appends to
the writer's buffers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from correlator.events import Event, EventKind, check_fingerprint
from monitord.inventory import CheckSpec, Device
from monitord.metrics import Metrics
from monitord.model import CheckResult, Status
from monitord.state import Change, CheckState, Policy, next_delay, step
from monitord.writer import Writer

log = logging.getLogger(__name__)


class ResultPipeline:
    def __init__(
        self,
        emit: Callable[[Event], None],
        writer: Writer,
        metrics: Metrics,
        time: Callable[[], float],
        flap_low: float,
        flap_high: float,
    ) -> None:
        self.emit = emit
        self.writer = writer
        self.metrics = metrics
        self.time = time  # Clock.time, injected
        self.flap = (flap_low, flap_high)
        self.states: dict[str, CheckState] = {}
        self.outputs: dict[str, str] = {}
        self.last_check: dict[str, float] = {}
        self.devices: Mapping[str, Device] = {}
        self._policies: dict[int, Policy] = {}

    def policy(self, max_attempts: int) -> Policy:
        p = self._policies.get(max_attempts)
        if p is None:
            p = self._policies[max_attempts] = Policy(max_attempts, *self.flap)
        return p

    def handle(self, spec: CheckSpec, result: CheckResult, duration: float, lag: float) -> float:
        now = self.time()
        prev = self.states.get(spec.id) or CheckState(last_change=now, last_hard_change=now)
        state, changes = step(prev, result.status, now, self.policy(spec.max_attempts))
        self.states[spec.id] = state
        self.outputs[spec.id] = result.message
        self.last_check[spec.id] = now
        self.writer.add_result(spec.id, now, result, duration, state)
        for change in changes:
            self.writer.add_transition(spec.id, now, change, result.message)
            kind = _EVENT_KIND.get(change.change)
            if kind is None:
                continue
            if kind is EventKind.PROBLEM and change.current == Status.OK:
                kind = EventKind.RECOVERY
            self._event(spec, kind, result, now)
        m = self.metrics
        m.counters[(spec.kind, result.status)].inc()
        m.durations[spec.kind].observe(duration)
        m.lag.observe(lag)
        return next_delay(state, spec.interval, spec.retry_interval)

    def _event(self, spec: CheckSpec, kind: EventKind, result: CheckResult, now: float) -> None:
        device = self.devices.get(spec.device_id)
        customer = device.customer if device else None
        self.metrics.hard_changes.labels(kind.value).inc()
        log.info(
            "hard state change",
            extra={"check": spec.id, "event": kind.value, "status": result.status.name},
        )
        self.emit(
            Event(
                ts=now,
                source="check",
                kind=kind,
                fingerprint=check_fingerprint(customer, spec.device_id, spec.name),
                customer=customer,
                device_id=spec.device_id,
                check_id=spec.id,
                status=result.status,
                message=result.message,
                category=CATEGORY_BY_KIND.get(spec.kind, spec.kind),
            )
        )


# What a failing check of each kind means, for priority rules and reports.
CATEGORY_BY_KIND = {
    "icmp": "host-down",
    "tcp": "service-down",
    "http": "service-down",
    "dns": "service-down",
    "tls": "certificate-expiry",
    "heartbeat": "job-missed",
}

_EVENT_KIND = {
    Change.HARD: EventKind.PROBLEM,
    Change.FLAP_START: EventKind.FLAP_START,
    Change.FLAP_STOP: EventKind.FLAP_STOP,
}
