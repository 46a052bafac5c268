"""Generic webhook: a JSON POST signed like monitord's own ingest endpoint.

Headers `X-Monitord-Timestamp: <unix seconds>` and
`X-Monitord-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`
over the exact body bytes (docs/ingest.md). Any 2xx is success.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import aiohttp
from pydantic import Field, SecretStr, field_validator

from alerts.channels.base import (
    ChannelConfig,
    DeliveryResult,
    Page,
    RateLimited,
    http_failure,
    http_request,
    retry_after,
)
from monitord.clock import Clock, SystemClock
from monitord.signing import signature_header


class WebhookConfig(ChannelConfig):
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "url": "https://hooks.msp.example/monitord",
        "secret": "0123456789abcdef0123456789abcdef",
    }

    url: str
    secret: SecretStr = Field(min_length=16)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("url must be an http(s) URL")
        return v


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return signature_header(secret, timestamp, body)


def payload(page: Page, sent_at: int) -> bytes:
    doc = {
        "dedup_key": page.dedup_key,
        "action": page.action,
        "recipient": page.recipient,
        "title": page.title,
        "body": page.body,
        "priority": page.priority,
        "ack_url": page.ack_url,
        "sent_at": sent_at,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookChannel:
    kind: ClassVar[str] = "webhook"
    Config = WebhookConfig

    def __init__(
        self, config: WebhookConfig, *, session: aiohttp.ClientSession, clock: Clock | None = None
    ) -> None:
        self.config = config
        self.session = session
        self.clock = clock or SystemClock()

    async def send(self, page: Page) -> DeliveryResult:
        secret = self.config.secret.get_secret_value()
        ts = int(self.clock.time())
        body = payload(page, ts)
        sig = signature(secret, str(ts), body)
        reply = await http_request(
            self.session,
            "POST",
            self.config.url,
            label="webhook",
            timeout=self.config.timeout,
            secrets=[secret, sig],
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Monitord-Timestamp": str(ts),
                "X-Monitord-Signature": sig,
            },
        )
        if reply.status == 429:
            raise RateLimited("webhook: HTTP 429", retry_after=retry_after(reply.headers))
        if not 200 <= reply.status < 300:
            raise http_failure("webhook", reply.status)
        return DeliveryResult(self.kind)
