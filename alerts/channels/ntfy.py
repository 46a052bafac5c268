"""ntfy: JSON publish to the server's root URL with the topic in the body.

A trigger carries an `http` action "Acknowledge" (POST to the page's ack URL,
cleared on success) and `click` opens the ack URL (or the configured link). Errors
are JSON `{"code": 42901, "http": 429, "error": …}`: 429 and 5xx retryable, other
4xx permanent.
"""

from __future__ import annotations

import base64
import json
from typing import Any, ClassVar

import aiohttp
from pydantic import SecretStr, field_validator, model_validator

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

PRIORITY = {"P1": 5, "P2": 4, "P3": 3, "P4": 2}
TAGS = {"trigger": "rotating_light", "acknowledge": "eyes", "resolve": "white_check_mark"}
MAX_MESSAGE_BYTES = 4096


class NtfyConfig(ChannelConfig):
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "server": "https://ntfy.msp.example",
        "token": "tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2",
    }

    server: str
    token: SecretStr | None = None  # Authorization: Bearer tk_…
    username: str | None = None  # or Basic auth
    password: SecretStr | None = None
    click_url: str | None = None  # opened on tap when the page has no ack URL

    @field_validator("server")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("server must be an http(s) URL")
        return v.rstrip("/") + "/"

    @model_validator(mode="after")
    def _one_auth(self) -> NtfyConfig:
        if self.token is not None and self.username is not None:
            raise ValueError("give token or username/password, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


def message(page: Page, config: NtfyConfig) -> dict[str, Any]:
    text = page.body or page.title
    raw = text.encode()
    if len(raw) > MAX_MESSAGE_BYTES:
        text = raw[:MAX_MESSAGE_BYTES].decode(errors="ignore")
    verb = {"trigger": "", "acknowledge": "ACK ", "resolve": "RESOLVED "}[page.action]
    doc: dict[str, Any] = {
        "topic": page.recipient,
        "title": f"{verb}{page.priority} {page.title}",
        "message": text,
        "priority": PRIORITY.get(page.priority, 4) if page.action == "trigger" else 3,
        "tags": [TAGS[page.action]],
    }
    click = page.ack_url or config.click_url
    if click:
        doc["click"] = click
    if page.ack_url and page.action == "trigger":
        doc["actions"] = [
            {
                "action": "http",
                "label": "Acknowledge",
                "url": page.ack_url,
                "method": "POST",
                "clear": True,
            }
        ]
    return doc


def _error_text(text: str) -> str:
    try:
        doc = json.loads(text)
    except ValueError:
        return ""
    if isinstance(doc, dict) and "error" in doc:
        return f"{doc.get('code', '')} {doc['error']}".strip()[:200]
    return ""


class NtfyChannel:
    kind: ClassVar[str] = "ntfy"
    Config = NtfyConfig

    def __init__(
        self, config: NtfyConfig, *, session: aiohttp.ClientSession, clock: Clock | None = None
    ) -> None:
        self.config = config
        self.session = session
        self.clock = clock or SystemClock()

    async def send(self, page: Page) -> DeliveryResult:
        cfg = self.config
        headers: dict[str, str] = {}
        secrets: list[str] = []
        if cfg.token is not None:
            secrets.append(cfg.token.get_secret_value())
            headers["Authorization"] = f"Bearer {secrets[-1]}"
        if cfg.username is not None and cfg.password is not None:
            secrets.append(cfg.password.get_secret_value())
            basic = base64.b64encode(f"{cfg.username}:{secrets[-1]}".encode()).decode()
            secrets.append(basic)
            headers["Authorization"] = f"Basic {basic}"
        reply = await http_request(
            self.session,
            "POST",
            cfg.server,
            label="ntfy publish",
            timeout=cfg.timeout,
            secrets=secrets,
            json=message(page, cfg),
            headers=headers,
        )
        if reply.status == 429:
            raise RateLimited(
                f"ntfy publish: HTTP 429 {_error_text(reply.text)}".rstrip(),
                retry_after=retry_after(reply.headers),
            )
        if reply.status != 200:
            raise http_failure("ntfy publish", reply.status, _error_text(reply.text))
        try:
            doc = json.loads(reply.text)
        except ValueError:
            doc = {}
        msg_id = doc.get("id") if isinstance(doc, dict) else None
        return DeliveryResult(self.kind, msg_id if isinstance(msg_id, str) else None)
