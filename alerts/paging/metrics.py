"""Paging metrics, registered on the daemon's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

ACK_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0)


class PagingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.pages = Counter(
            "monitord_pages",
            "Page deliveries by channel and result (sent, failed, fallback: moved on to the "
            "engineer's next channel, recovered: an interrupted attempt found sent)",
            ["channel", "result"],
            registry=registry,
        )
        self.ack_seconds = Histogram(
            "monitord_page_ack_seconds",
            "Time from an escalation's first page to its acknowledgement",
            buckets=ACK_BUCKETS,
            registry=registry,
        )
        self.escalations = Counter(
            "monitord_page_escalations",
            "Escalation steps past the first (nobody acknowledged in time), by policy",
            ["policy"],
            registry=registry,
        )
        self.summaries = Counter(
            "monitord_page_summaries",
            "Pages that summarise several incidents (a storm, or the per-engineer rate limit)",
            registry=registry,
        )
        self.link_refusals = Counter(
            "monitord_ack_link_refusals",
            "Acknowledgement links refused, by reason (forged, expired, malformed)",
            ["reason"],
            registry=registry,
        )
        self.acks = Counter(
            "monitord_page_acks",
            "Acknowledgements by how they came in (link, telegram, reply, api, cli)",
            ["via"],
            registry=registry,
        )
