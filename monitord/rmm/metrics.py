"""Prometheus metrics of the RMM feed, on the App's registry.

Gauges that describe stored state (open observations by verdict, accuracy per
customer, open conflicts) are refreshed from the database by the feed's tick;
feed freshness is computed at scrape time from the last good poll, so it keeps
growing while the feed is stuck.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, func, select

from monitord.rmm.verdicts import BLIND_SPOT, CONFIRMED, VERDICTS
from monitord.storage.schema import rmm_conflicts, rmm_feeds, rmm_observations

ACCURACY_WINDOW = 30 * 86400.0
SYNC_CHANGES = ("added", "linked", "updated", "missing", "retired", "conflict", "unmapped")


class _Freshness(Collector):
    def __init__(
        self, last_good: Callable[[], Mapping[str, float | None]], now: Callable[[], float]
    ):
        self.last_good = last_good
        self.now = now

    def collect(self) -> Iterator[Metric]:
        age = GaugeMetricFamily(
            "monitord_rmm_feed_age_seconds",
            "Seconds since the last good poll of each RMM source (since start if none)",
            labels=["source"],
        )
        now = self.now()
        for source, last in sorted(self.last_good().items()):
            if last is not None:
                age.add_metric([source], max(0.0, now - last))
        yield age


class RmmMetrics:
    def __init__(self, registry: CollectorRegistry, now: Callable[[], float]) -> None:
        self.last_good: dict[str, float | None] = {}
        self.observations = Gauge(
            "monitord_rmm_observations",
            "Open RMM observations (failures and blind spots) by source and verdict",
            ["source", "verdict"],
            registry=registry,
        )
        self.verdicts = Counter(
            "monitord_rmm_verdicts_total",
            "Verdicts given on RMM failures (each change counts), by source and verdict",
            ["source", "verdict"],
            registry=registry,
        )
        self.accuracy = Gauge(
            "monitord_rmm_accuracy_ratio",
            "RMM failures monitord confirmed / RMM failures judged, per customer "
            "(first seen within the last 30 days)",
            ["customer"],
            registry=registry,
        )
        self.feed_up = Gauge(
            "monitord_rmm_feed_up",
            "1 when the last poll of the RMM source succeeded, else 0",
            ["source"],
            registry=registry,
        )
        self.stale = Gauge(
            "monitord_rmm_feed_stale",
            "1 while the RMM source's feed is stale (no good poll for rmm.stale_after)",
            ["source"],
            registry=registry,
        )
        self.poll_errors = Counter(
            "monitord_rmm_poll_errors_total",
            "Failed RMM calls, by source, operation and reason",
            ["source", "op", "reason"],
            registry=registry,
        )
        self.sync = Counter(
            "monitord_rmm_sync_devices_total",
            "RMM devices by what an inventory sync did to them",
            ["source", "change"],
            registry=registry,
        )
        self.conflicts = Gauge(
            "monitord_rmm_sync_conflicts",
            "Open sync conflicts (and unmapped clients), by source and kind",
            ["source", "kind"],
            registry=registry,
        )
        self.skipped = Counter(
            "monitord_rmm_failures_skipped_total",
            "RMM failures not observed, by source and reason (unmapped client)",
            ["source", "reason"],
            registry=registry,
        )
        registry.register(_Freshness(lambda: self.last_good, now))

    def init_source(self, source: str) -> None:
        self.last_good.setdefault(source, None)
        self.feed_up.labels(source)
        self.stale.labels(source)
        for verdict in VERDICTS:
            self.verdicts.labels(source, verdict)
            self.observations.labels(source, verdict)
        for change in SYNC_CHANGES:
            self.sync.labels(source, change)

    def drop_source(self, source: str) -> None:
        """A source removed by a reload: its feed gauges go (counters stay until restart)."""
        self.last_good.pop(source, None)
        for gauge in (self.feed_up, self.stale):
            with contextlib.suppress(KeyError):
                gauge.remove(source)

    def refresh(self, counts: dict[str, Any]) -> None:
        """Set the stored-state gauges from `read_counts`."""
        self.observations.clear()
        for source in self.last_good:
            for verdict in VERDICTS:
                self.observations.labels(source, verdict).set(0)
        for (source, verdict), n in counts["observations"].items():
            self.observations.labels(source, verdict or "pending").set(n)
        self.accuracy.clear()
        for customer, ratio in counts["accuracy"].items():
            self.accuracy.labels(customer).set(ratio)
        self.conflicts.clear()
        for (source, kind), n in counts["conflicts"].items():
            self.conflicts.labels(source, kind).set(n)
        for source, (last_good, stale) in counts["feeds"].items():
            if source in self.last_good:
                self.last_good[source] = last_good
                self.stale.labels(source).set(1 if stale else 0)


def read_counts(conn: Connection, now: float) -> dict[str, Any]:
    """What `RmmMetrics.refresh` shows, read in one connection."""
    o = rmm_observations
    observations = {
        (r.source, r.verdict): r[2]
        for r in conn.execute(
            select(o.c.source, o.c.verdict, func.count())
            .where(o.c.cleared_at.is_(None))
            .group_by(o.c.source, o.c.verdict)
        )
    }
    judged: dict[str, list[int]] = {}
    for r in conn.execute(
        select(o.c.customer, o.c.verdict, func.count())
        .where(
            o.c.first_seen >= now - ACCURACY_WINDOW,
            o.c.verdict.is_not(None),
            o.c.verdict != BLIND_SPOT,
            o.c.customer.is_not(None),
        )
        .group_by(o.c.customer, o.c.verdict)
    ):
        total = judged.setdefault(r.customer, [0, 0])
        total[1] += r[2]
        if r.verdict == CONFIRMED:
            total[0] += r[2]
    conflicts = {
        (r.source, r.kind): r[2]
        for r in conn.execute(
            select(rmm_conflicts.c.source, rmm_conflicts.c.kind, func.count())
            .where(rmm_conflicts.c.resolved_at.is_(None))
            .group_by(rmm_conflicts.c.source, rmm_conflicts.c.kind)
        )
    }
    feeds = {
        r.source: (
            r.last_good_at if r.last_good_at is not None else r.created_at,
            r.stale_since is not None,
        )
        for r in conn.execute(select(rmm_feeds))
    }
    return {
        "observations": observations,
        "accuracy": {c: ok / total for c, (ok, total) in judged.items() if total},
        "conflicts": conflicts,
        "feeds": feeds,
    }
