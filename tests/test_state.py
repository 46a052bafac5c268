"""The soft/hard state machine and flap detection, table-tested."""

from __future__ import annotations

import pytest

from monitord.model import Status
from monitord.state import (
    Change,
    CheckState,
    Policy,
    StateType,
    next_delay,
    percent_state_change,
    step,
)

OK, W, C, U = Status.OK, Status.WARNING, Status.CRITICAL, Status.UNKNOWN
SOFT, HARD = StateType.SOFT, StateType.HARD


def run(
    statuses: list[Status], max_attempts: int = 3
) -> list[tuple[CheckState, tuple[Change, ...]]]:
    state = CheckState()
    out = []
    for i, status in enumerate(statuses):
        state, changes = step(state, status, float(i), Policy(max_attempts, 20, 30))
        out.append((state, tuple(c.change for c in changes)))
    return out


@pytest.mark.parametrize(
    ("statuses", "max_attempts", "expected"),
    [
        # OK -> SOFT 1/3 -> SOFT 2/3 -> HARD on the third failure
        ([C, C, C], 3, [(C, SOFT, OK, 1), (C, SOFT, OK, 2), (C, HARD, C, 3)]),
        # soft recovery: never hard, so no hard change
        ([C, C, OK], 3, [(C, SOFT, OK, 1), (C, SOFT, OK, 2), (OK, HARD, OK, 1)]),
        # one attempt: the first failure is hard at once
        ([W], 1, [(W, HARD, W, 1)]),
        # hard recovery
        ([C, C, OK], 2, [(C, SOFT, OK, 1), (C, HARD, C, 2), (OK, HARD, OK, 1)]),
        # severity change while hard stays hard
        ([C, C, W], 2, [(C, SOFT, OK, 1), (C, HARD, C, 2), (W, HARD, W, 2)]),
        # unknown is a problem state like the others
        ([U, U], 2, [(U, SOFT, OK, 1), (U, HARD, U, 2)]),
    ],
)
def test_soft_hard_sequences(
    statuses: list[Status], max_attempts: int, expected: list[tuple[Status, StateType, Status, int]]
) -> None:
    got = [
        (s.status, s.state_type, s.hard_status, s.attempt) for s, _ in run(statuses, max_attempts)
    ]
    assert got == expected


def test_only_hard_changes_are_hard_transitions() -> None:
    changes = [c for _, c in run([C, C, C, C, OK])]
    assert changes == [(Change.SOFT,), (), (Change.HARD,), (), (Change.HARD,)]


def test_soft_recovery_makes_no_hard_transition() -> None:
    changes = [c for _, c in run([C, OK, C, OK])]
    assert Change.HARD not in {x for c in changes for x in c}


def test_retry_interval_applies_while_soft() -> None:
    states = [s for s, _ in run([C, C, C])]
    assert [next_delay(s, 60, 15) for s in states] == [15, 15, 60]


def test_percent_state_change_bounds() -> None:
    steady = [s for s, _ in run([OK] * 21)][-1]
    assert percent_state_change(steady.history, steady.samples) == 0.0
    alternating = [s for s, _ in run([OK, C] * 11)][-1]
    assert percent_state_change(alternating.history, alternating.samples) == pytest.approx(100.0)


def test_recent_changes_weigh_more() -> None:
    old = [s for s, _ in run([OK, C, OK] + [OK] * 18)][-1]
    new = [s for s, _ in run([OK] * 18 + [OK, C, OK])][-1]
    assert percent_state_change(new.history, new.samples) > percent_state_change(
        old.history, old.samples
    )


def test_flapping_starts_above_high_and_stops_below_low() -> None:
    seq = [OK, C] * 8 + [OK] * 30
    results = run(seq, max_attempts=1)
    starts = [i for i, (_, c) in enumerate(results) if Change.FLAP_START in c]
    stops = [i for i, (_, c) in enumerate(results) if Change.FLAP_STOP in c]
    assert len(starts) == 1 and len(stops) == 1 and starts[0] < stops[0]
    # hysteresis: between start and stop it stays flapping though the rate falls below high
    for i in range(starts[0], stops[0]):
        assert results[i][0].flapping


def test_history_is_bounded_to_the_window() -> None:
    state = [s for s, _ in run([C] * 100)][-1]
    assert state.samples == 21
    assert state.history < (1 << 42)
