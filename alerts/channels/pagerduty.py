"""PagerDuty Events API v2: trigger / acknowledge / resolve by `dedup_key`.

202 `{"status": "success", "dedup_key": …}` is success (queued, not yet an
incident); 400 "invalid event" is permanent; 429 and 5xx are retryable. The
routing key travels in the body, never in an error or log line.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import aiohttp
from pydantic import SecretStr

from alerts.channels.base import (
    ChannelConfig,
    DeliveryResult,
    Page,
    RateLimited,
    external_key,
    http_failure,
    http_request,
    retry_after,
)
from monitord.clock import Clock, SystemClock

SEVERITY = {"P1": "critical", "P2": "error", "P3": "warning", "P4": "info"}
MAX_SUMMARY = 1024
MAX_DEDUP = 255


class PagerDutyConfig(ChannelConfig):
    EXAMPLE: ClassVar[dict[str, Any]] = {"routing_key": "R0ABCDEF0123456789ABCDEF01234567"}

    url: str = "https://events.pagerduty.com/v2/enqueue"  # EU: events.eu.pagerduty.com
    routing_key: SecretStr
    source: str = "monitord"
    client: str = "monitord"


def event(page: Page, config: PagerDutyConfig) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": config.routing_key.get_secret_value(),
        "event_action": page.action,
        "dedup_key": external_key(page.dedup_key, MAX_DEDUP),
    }
    if page.action == "trigger":
        details: dict[str, Any] = {"body": page.body, "priority": page.priority}
        body["payload"] = {
            "summary": page.title[:MAX_SUMMARY] or page.dedup_key,
            "source": config.source,
            "severity": SEVERITY.get(page.priority, "error"),
            "custom_details": details,
        }
        body["client"] = config.client
        if page.ack_url:
            body["links"] = [{"href": page.ack_url, "text": "Acknowledge"}]
    return body


def _errors(text: str) -> str:
    try:
        doc = json.loads(text)
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    errors = doc.get("errors")
    parts = [str(doc.get("message", ""))]
    if isinstance(errors, list):
        parts.extend(str(e) for e in errors)
    return "; ".join(p for p in parts if p)[:300]


class PagerDutyChannel:
    kind: ClassVar[str] = "pagerduty"
    Config = PagerDutyConfig

    def __init__(
        self, config: PagerDutyConfig, *, session: aiohttp.ClientSession, clock: Clock | None = None
    ) -> None:
        self.config = config
        self.session = session
        self.clock = clock or SystemClock()

    async def send(self, page: Page) -> DeliveryResult:
        key = self.config.routing_key.get_secret_value()
        reply = await http_request(
            self.session,
            "POST",
            self.config.url,
            label="pagerduty enqueue",
            timeout=self.config.timeout,
            secrets=[key],
            json=event(page, self.config),
        )
        if reply.status == 429:
            raise RateLimited(
                "pagerduty enqueue: HTTP 429 rate limited", retry_after=retry_after(reply.headers)
            )
        if reply.status not in (200, 201, 202):
            raise http_failure("pagerduty enqueue", reply.status, _errors(reply.text))
        try:
            doc = json.loads(reply.text)
        except ValueError:
            doc = {}
        dedup = doc.get("dedup_key") if isinstance(doc, dict) else None
        return DeliveryResult(self.kind, dedup if isinstance(dedup, str) else None)
