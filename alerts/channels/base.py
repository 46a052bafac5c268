"""The paging channel interface, shared by every module in `alerts.channels`.

A channel turns one `Page` (trigger, acknowledge or resolve of one incident, for one
recipient) into one call to an external service and answers a `DeliveryResult`, or
raises `DeliveryError(permanent, reason)`. Every HTTP channel uses the one
`aiohttp.ClientSession` it is given and puts every request under the configured
timeout. Secrets are `SecretStr` and never reach a message, a log line or an
exception: `http_request` builds its errors from a caller-given label, never the URL.

Constructors are uniform so the registry can build any channel:
`ChannelClass(config, session=session, clock=clock)`; `ChannelClass.Config` is the
channel's pydantic config model and `ChannelClass.Config.EXAMPLE` a valid example.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from monitord.errors import DeliveryError, Reason, classify_http

Action = Literal["trigger", "acknowledge", "resolve"]
REDACTED = "<redacted>"


@dataclass(frozen=True, slots=True)
class Page:
    """One page to one recipient, independent of the channel."""

    dedup_key: str  # stable per incident; the external idempotency key
    action: Action
    recipient: str  # phone number, chat id, e-mail address or topic, per channel
    title: str
    body: str
    priority: str  # P1 … P4
    ack_url: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What the service answered on success (`remote_id` when it gives one)."""

    channel: str
    remote_id: str | None = None
    detail: str = ""


class RateLimited(DeliveryError):
    """Retryable; `retry_after` seconds when the service said how long to wait."""

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(message, permanent=False, reason=Reason.RATE_LIMITED)
        self.retry_after = retry_after


class ChannelConfig(BaseModel):
    """Common settings; each channel's config model extends this one."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    EXAMPLE: ClassVar[Mapping[str, Any]] = {}

    timeout: float = Field(default=10.0, gt=0, le=120)


class Channel(Protocol):
    kind: ClassVar[str]

    @property
    def config(self) -> ChannelConfig: ...

    async def send(self, page: Page) -> DeliveryResult: ...


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    text: str
    headers: Mapping[str, str]


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every non-empty secret value replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def external_key(dedup_key: str, limit: int) -> str:
    """`dedup_key` if it fits in `limit` bytes, else a stable short hash of it."""
    if len(dedup_key.encode()) <= limit:
        return dedup_key
    return "mon-" + hashlib.sha256(dedup_key.encode()).hexdigest()[:24]


def http_failure(label: str, status: int, detail: str = "") -> DeliveryError:
    """The DeliveryError for an HTTP error status, per `classify_http`."""
    permanent, reason = classify_http(status)
    suffix = f": {detail}" if detail else ""
    return DeliveryError(f"{label}: HTTP {status}{suffix}", permanent=permanent, reason=reason)


def retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


async def http_request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    label: str,
    timeout: float,
    secrets: Iterable[str] = (),
    **kwargs: Any,
) -> HttpReply:
    """One request under `timeout`; transport failures become retryable DeliveryErrors.

    `label` names the call in errors ("telegram sendMessage"); the URL never does,
    because some services (Telegram) carry the token in it.
    """
    secrets = tuple(secrets)
    try:
        async with session.request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout), **kwargs
        ) as resp:
            text = await resp.text(errors="replace")
            return HttpReply(resp.status, redact(text, secrets), dict(resp.headers))
    except TimeoutError:
        raise DeliveryError(
            f"{label}: no answer within {timeout:g} s", permanent=False, reason=Reason.TIMEOUT
        ) from None
    except aiohttp.ClientError as exc:
        # the library's text may quote the URL (and a token in it): keep only the class
        raise DeliveryError(
            f"{label}: {type(exc).__name__}", permanent=False, reason=Reason.NETWORK
        ) from None
