"""Soft/hard state and flap detection, as pure functions.

Semantics follow Nagios/Icinga: a problem is re-checked at the retry interval
`max_attempts` times (SOFT states) before it becomes HARD; only HARD changes
are events. Recovery from a SOFT problem is silent. A change of severity
while HARD (WARNING → CRITICAL) is a hard change too.

Flap detection is Nagios's: the last 21 results, the share of state changes
between them weighted from 0.8 (oldest) to 1.2 (newest), with start/stop
thresholds (hysteresis). The history is packed into one integer (2 bits a
result) so it is cheap to keep per check and to store in one column.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from monitord.model import Status

WINDOW = 21
_MASK = (1 << (2 * WINDOW)) - 1
# Weight of change k (k = 0 oldest … 19 newest) from 0.8 to 1.2, summing to 20.
_WEIGHTS = tuple(0.8 + 0.4 * k / (WINDOW - 2) for k in range(WINDOW - 1))
_WEIGHT_SUM = sum(_WEIGHTS)


class StateType(IntEnum):
    SOFT = 0
    HARD = 1


@dataclass(frozen=True, slots=True)
class CheckState:
    """What monitord currently believes about one check."""

    status: Status = Status.OK
    state_type: StateType = StateType.HARD
    hard_status: Status = Status.OK
    attempt: int = 1
    last_change: float = 0.0  # any status change
    last_hard_change: float = 0.0
    history: int = 0  # last WINDOW statuses, 2 bits each, newest in the low bits
    samples: int = 0  # how many results the history holds (≤ WINDOW)
    flapping: bool = False
    version: int = 0  # bumped on every write, for compare-and-set in the store


@dataclass(frozen=True, slots=True)
class Policy:
    max_attempts: int
    flap_low: float = 20.0
    flap_high: float = 30.0


class Change(IntEnum):
    """What a step did that the rest of the pipeline must hear about."""

    NONE = 0
    SOFT = 1  # a soft state change (recorded, not an event)
    HARD = 2  # a hard state change: an event
    FLAP_START = 3
    FLAP_STOP = 4


@dataclass(frozen=True, slots=True)
class Transition:
    change: Change
    previous: Status
    current: Status
    state_type: StateType
    attempt: int


def percent_state_change(history: int, samples: int) -> float:
    """Weighted share (0–100) of changes between consecutive results in `history`."""
    if samples < 2:
        return 0.0
    changes = 0.0
    prev = (history >> (2 * (samples - 1))) & 3
    for k in range(samples - 2, -1, -1):
        cur = (history >> (2 * k)) & 3
        if cur != prev:
            changes += _WEIGHTS[WINDOW - 2 - k]
        prev = cur
    return 100.0 * changes / _WEIGHT_SUM


def step(
    prev: CheckState, status: Status, now: float, policy: Policy
) -> tuple[CheckState, tuple[Transition, ...]]:
    """Apply one result. Returns the new state and what changed (possibly nothing)."""
    history = ((prev.history << 2) | int(status)) & _MASK
    samples = min(prev.samples + 1, WINDOW)
    flapping = _flapping(prev.flapping, percent_state_change(history, samples), policy)
    state_type, hard, attempt = _classify(prev, status, policy)
    state = CheckState(
        status=status,
        state_type=state_type,
        hard_status=hard,
        attempt=attempt,
        last_change=now if status != prev.status else prev.last_change,
        last_hard_change=now if hard != prev.hard_status else prev.last_hard_change,
        history=history,
        samples=samples,
        flapping=flapping,
        version=prev.version + 1,
    )
    changes: list[Transition] = []
    if hard != prev.hard_status:
        changes.append(Transition(Change.HARD, prev.hard_status, hard, state_type, attempt))
    elif status != prev.status:
        changes.append(Transition(Change.SOFT, prev.status, status, state_type, attempt))
    if flapping != prev.flapping:
        kind = Change.FLAP_START if flapping else Change.FLAP_STOP
        changes.append(Transition(kind, prev.status, status, state_type, attempt))
    return state, tuple(changes)


def _classify(prev: CheckState, status: Status, policy: Policy) -> tuple[StateType, Status, int]:
    if status == Status.OK:
        # Soft or hard recovery: either way the state is a hard OK again.
        return StateType.HARD, Status.OK, 1
    if prev.state_type == StateType.HARD and prev.hard_status != Status.OK:
        # Already a hard problem: stays hard, severity may change.
        return StateType.HARD, status, policy.max_attempts
    attempt = prev.attempt + 1 if prev.status != Status.OK else 1
    if attempt >= policy.max_attempts:
        return StateType.HARD, status, policy.max_attempts
    return StateType.SOFT, prev.hard_status, attempt


def _flapping(was: bool, pct: float, policy: Policy) -> bool:
    if was:
        return pct >= policy.flap_low
    return pct > policy.flap_high


def next_delay(state: CheckState, interval: float, retry_interval: float) -> float:
    """Seconds until the next run: retry quickly while a problem is unconfirmed."""
    return retry_interval if state.state_type == StateType.SOFT else interval
