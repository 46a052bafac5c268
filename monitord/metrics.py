"""Prometheus metrics, built against a registry passed in (no global registry).

Per-check state is exported by a scrape-time collector reading the engine's
state map (one series per check, like blackbox_exporter's probe_success), so
the check path pays nothing for it. Histograms carry no device labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitord import __version__
from monitord.model import Status

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True, slots=True)
class CheckRow:
    customer: str
    site: str
    device: str
    check: str
    kind: str
    status: int  # -1 while pending (no result yet)
    hard_status: int
    flapping: bool


class CheckStateCollector(Collector):
    def __init__(self, rows: Callable[[], Iterable[CheckRow]]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["customer", "site", "device", "check", "kind"]
        status = GaugeMetricFamily(
            "monitord_check_status",
            "Latest check status: 0 ok, 1 warning, 2 critical, 3 unknown, -1 pending",
            labels=labels,
        )
        hard = GaugeMetricFamily(
            "monitord_check_hard_status", "Confirmed (hard) check status, 0-3", labels=labels
        )
        flapping = GaugeMetricFamily(
            "monitord_check_flapping", "1 while the check is flapping", labels=labels
        )
        for r in self.rows():
            values = [r.customer, r.site, r.device, r.check, r.kind]
            status.add_metric(values, r.status)
            hard.add_metric(values, r.hard_status)
            if r.flapping:
                flapping.add_metric(values, 1)
        yield status
        yield hard
        yield flapping


class Metrics:
    def __init__(self, registry: CollectorRegistry, kinds: Iterable[str]) -> None:
        self.registry = registry
        Info("monitord_build", "Build information", registry=registry).info(
            {"version": __version__}
        )
        self.checks_total = Counter(
            "monitord_checks_executed_total",
            "Checks executed, by kind and result",
            ["kind", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "monitord_check_duration_seconds",
            "Check execution time by kind",
            ["kind"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.lag = Histogram(
            "monitord_scheduler_lag_seconds",
            "How late checks started against their due time",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge("monitord_checks_in_flight", "Checks running now", registry=registry)
        self.hard_changes = Counter(
            "monitord_state_hard_changes_total",
            "Hard state changes (events)",
            ["kind"],
            registry=registry,
        )
        self.incidents_open = Gauge(
            "monitord_incidents_open",
            "Open (unresolved) incidents",
            ["priority"],
            registry=registry,
        )
        self.flush_seconds = Histogram(
            "monitord_storage_flush_seconds",
            "Time to write one batch",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.flush_errors = Counter(
            "monitord_storage_flush_errors_total",
            "Batches the database refused (retried)",
            registry=registry,
        )
        self.pending_rows = Gauge(
            "monitord_storage_pending_rows", "Rows buffered for the next write", registry=registry
        )
        self.outbox_delivered = Counter(
            "monitord_outbox_delivered_total",
            "Ticket and page operations delivered",
            ["kind", "target"],
            registry=registry,
        )
        self.outbox_pending = Gauge(
            "monitord_outbox_pending", "Ticket and page operations waiting", registry=registry
        )
        self.reload_ok = Gauge(
            "monitord_config_last_reload_successful",
            "1 if the last reload succeeded",
            registry=registry,
        )
        self.config_hash = Gauge(
            "monitord_config_hash", "Hash of the loaded config files", ["hash"], registry=registry
        )
        self.scheduler_up = Gauge(
            "monitord_scheduler_last_tick_age_seconds",
            "Seconds since the scheduler loop last ran",
            registry=registry,
        )
        # Pre-create every kind×status series at zero (closed label set).
        self.counters: dict[tuple[str, int], Counter] = {}
        self.durations: dict[str, Histogram] = {}
        for kind in kinds:
            self.ensure_kind(kind)

    def ensure_kind(self, kind: str) -> None:
        for status in Status:
            key = (kind, int(status))
            if key not in self.counters:
                self.counters[key] = self.checks_total.labels(kind, status.label)
        self.durations[kind] = self.duration.labels(kind)
