"""Counter rates between polls, and the per-target state they need.

SNMP counters (Counter32, Counter64) only grow, wrap at 2^32 or 2^64, and
start again from zero when the agent restarts. A rate is the increase
between two polls divided by the local time between them. The agent's
sysUpTime, fetched in the same request, tells a restart (it went back) from a
wrap; after a restart the new sample becomes the baseline instead of
producing a huge or negative rate.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

COUNTER32 = 2**32
COUNTER64 = 2**64
TIMETICKS = 2**32  # sysUpTime wraps after 497 days


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a counter: its value, the local monotonic time it was
    taken (seconds) and the agent's sysUpTime then (centiseconds, or None)."""

    value: int
    at: float
    uptime: int | None = None


def counter_rate(prev: Sample | None, cur: Sample, modulus: int = COUNTER32) -> float | None:
    """Increase per second from `prev` to `cur`, or None when there is no baseline.

    None means "take `cur` as the new baseline": no previous sample, the agent
    restarted (sysUpTime went back), no time passed, or the counter went back
    by more than half its range, which a wrap cannot explain in one interval
    (a counter reset such as `clear counters`). A smaller step back is a wrap
    at `modulus` (2^32 for Counter32, 2^64 for Counter64).
    """
    if prev is None:
        return None
    if cur.uptime is not None and prev.uptime is not None and cur.uptime < prev.uptime:
        return None
    elapsed = cur.at - prev.at
    if elapsed <= 0:
        return None
    delta = cur.value - prev.value
    if delta < 0:
        delta += modulus
        if delta >= modulus // 2:
            return None
    return delta / elapsed


class CounterBook:
    """The last sample per (target, counter), kept by the check instance.

    Keys are whatever identifies one counter of one device for one check
    (the check builds them from device, port, params and OID). Entries not
    updated for `max_age` seconds are dropped by `sweep`, which `rate` calls
    at most every `max_age / 4` seconds, so removed devices do not pile up.
    """

    def __init__(self, max_age: float = 6 * 3600.0) -> None:
        self._last: dict[Hashable, Sample] = {}
        self._max_age = max_age
        self._next_sweep: float | None = None

    def __len__(self) -> int:
        return len(self._last)

    def rate(self, key: Hashable, cur: Sample, modulus: int = COUNTER32) -> float | None:
        """Store `cur` for `key` and return the rate since the previous sample."""
        prev = self._last.get(key)
        self._last[key] = cur
        if self._next_sweep is None:
            self._next_sweep = cur.at + self._max_age / 4
        elif cur.at >= self._next_sweep:
            self.sweep(cur.at)
        return counter_rate(prev, cur, modulus)

    def sweep(self, now: float) -> None:
        """Forget samples older than `max_age` seconds."""
        horizon = now - self._max_age
        self._last = {k: s for k, s in self._last.items() if s.at >= horizon}
        self._next_sweep = now + self._max_age / 4

    def previous(self, key: Hashable) -> Sample | None:
        """The stored sample for `key` (used by reboot detection)."""
        return self._last.get(key)

    def remember(self, key: Hashable, sample: Sample) -> None:
        """Store `sample` for `key` without computing a rate."""
        self._last[key] = sample
