"""Telegram Bot API: `sendMessage` with an inline "Acknowledge" button.

The button's `callback_data` is `ack:<key>:<tag>` where `tag` is a truncated
HMAC-SHA256 of the key under the bot token, so a forged callback (any client can
send arbitrary callback data) is rejected by `parse_ack_callback`, which the ack
webhook / getUpdates loop calls on each update. The token is part of every URL
(`/bot<token>/<method>`): errors name the method only.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import aiohttp
from pydantic import Field, SecretStr, model_validator

from alerts.channels.base import (
    ChannelConfig,
    DeliveryResult,
    Page,
    RateLimited,
    http_failure,
    http_request,
)
from monitord.clock import Clock, SystemClock
from monitord.errors import DeliveryError, Reason

CALLBACK_MAX_BYTES = 64
TAG_HEX = 12
MAX_TEXT = 4096


class TelegramConfig(ChannelConfig):
    EXAMPLE: ClassVar[dict[str, Any]] = {"token": "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"}

    api_url: str = "https://api.telegram.org"
    token: SecretStr
    allowed_user_ids: frozenset[int] = frozenset()  # who may ack; empty: anyone in the chat
    button_text: str = "✅ Acknowledge"
    # How button presses and "ack" replies reach monitord: `poll` (getUpdates long
    # polling: no inbound port, the default for a daemon behind NAT), `webhook`
    # (Telegram POSTs to /api/v1/paging/telegram/<channel>, checked against
    # `webhook_secret`; register it with setWebhook yourself) or `off`.
    updates: Literal["off", "poll", "webhook"] = "off"
    webhook_secret: SecretStr | None = None
    poll_timeout: float = Field(default=25.0, ge=0, le=50)  # getUpdates long-poll seconds

    @model_validator(mode="after")
    def _webhook_secret(self) -> TelegramConfig:
        if self.updates == "webhook" and self.webhook_secret is None:
            raise ValueError("updates: webhook needs a webhook_secret")
        secret = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
        if secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ValueError("webhook_secret: 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return self


@dataclass(frozen=True, slots=True)
class TelegramAck:
    """A valid "Acknowledge" press: whose, for which incident."""

    dedup_key: str
    user: str  # @username, else first name, else the numeric id
    user_id: int
    callback_query_id: str  # answer it with answerCallbackQuery


def _tag(token: str, key: str) -> str:
    return hmac.new(token.encode(), key.encode(), hashlib.sha256).hexdigest()[:TAG_HEX]


def callback_data(token: str, dedup_key: str) -> str:
    data = f"ack:{dedup_key}:{_tag(token, dedup_key)}"
    if len(data.encode()) > CALLBACK_MAX_BYTES:
        raise DeliveryError(
            "telegram: dedup key too long for callback_data (64 bytes)",
            permanent=True,
            reason=Reason.CLIENT_ERROR,
        )
    return data


def parse_ack_callback(update: Mapping[str, Any], config: TelegramConfig) -> TelegramAck:
    """Validate one Telegram update carrying an "Acknowledge" press; ValueError if not one."""
    query = update.get("callback_query")
    if not isinstance(query, Mapping):
        raise ValueError("update has no callback_query")
    data, query_id, sender = query.get("data"), query.get("id"), query.get("from")
    if (
        not isinstance(data, str)
        or not isinstance(query_id, str)
        or not isinstance(sender, Mapping)
    ):
        raise ValueError("callback_query lacks data, id or from")
    user_id = sender.get("id")
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise ValueError("callback_query.from.id is not an integer")
    prefix, _, rest = data.partition(":")
    key, _, tag = rest.rpartition(":")
    if prefix != "ack" or not key or not tag:
        raise ValueError("callback data is not an acknowledge button")
    expected = _tag(config.token.get_secret_value(), key)
    if not hmac.compare_digest(tag, expected):
        raise ValueError("callback data signature does not match")
    if config.allowed_user_ids and user_id not in config.allowed_user_ids:
        raise ValueError(f"telegram user {user_id} may not acknowledge")
    name = sender.get("username")
    user = (
        f"@{name}" if isinstance(name, str) and name else str(sender.get("first_name") or user_id)
    )
    return TelegramAck(key, user, user_id, query_id)


def message_text(page: Page) -> str:
    verb = {"trigger": "", "acknowledge": "ACKNOWLEDGED ", "resolve": "RESOLVED "}[page.action]
    text = f"<b>{verb}{html.escape(page.priority)}</b> {html.escape(page.title)}"
    if page.body:
        text += "\n" + html.escape(page.body)
    return text[:MAX_TEXT]


class TelegramChannel:
    kind: ClassVar[str] = "telegram"
    Config = TelegramConfig

    def __init__(
        self, config: TelegramConfig, *, session: aiohttp.ClientSession, clock: Clock | None = None
    ) -> None:
        self.config = config
        self.session = session
        self.clock = clock or SystemClock()

    async def call(
        self, method: str, payload: Mapping[str, Any], *, timeout: float | None = None
    ) -> Any:
        """One Bot API call; the `result` on `ok: true`, else a DeliveryError."""
        token = self.config.token.get_secret_value()
        label = f"telegram {method}"
        reply = await http_request(
            self.session,
            "POST",
            f"{self.config.api_url.rstrip('/')}/bot{token}/{method}",
            label=label,
            timeout=timeout or self.config.timeout,
            secrets=[token],
            json=payload,
        )
        try:
            body = json.loads(reply.text)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if reply.status >= 400:
                raise http_failure(label, reply.status)
            raise DeliveryError(
                f"{label}: answer is not JSON", permanent=False, reason=Reason.SERVER_ERROR
            )
        if body.get("ok") is True:
            return body.get("result")
        code = body.get("error_code")
        if isinstance(code, int) and code >= 400:
            status = code
        else:
            status = reply.status if reply.status >= 400 else 500
        description = str(body.get("description", ""))[:200]
        if status == 429:
            params = body.get("parameters")
            after = params.get("retry_after") if isinstance(params, dict) else None
            raise RateLimited(
                f"{label}: {description or 'too many requests'}",
                retry_after=float(after) if isinstance(after, int | float) else None,
            )
        raise http_failure(label, status, description)

    async def send(self, page: Page) -> DeliveryResult:
        payload: dict[str, Any] = {
            "chat_id": page.recipient,
            "text": message_text(page),
            "parse_mode": "HTML",
        }
        if page.action == "trigger":
            data = callback_data(self.config.token.get_secret_value(), page.dedup_key)
            payload["reply_markup"] = {
                "inline_keyboard": [[{"text": self.config.button_text, "callback_data": data}]]
            }
        result = await self.call("sendMessage", payload)
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return DeliveryResult(self.kind, None if message_id is None else str(message_id))

    async def updates(self, offset: int | None, timeout: float) -> list[dict[str, Any]]:
        """One getUpdates long poll for presses and messages; confirms those before `offset`."""
        payload: dict[str, Any] = {
            "timeout": int(timeout),
            "allowed_updates": ["message", "callback_query"],
        }
        if offset is not None:
            payload["offset"] = offset
        # the long poll itself may take `timeout`: allow for it on top of the usual
        result = await self.call("getUpdates", payload, timeout=self.config.timeout + timeout)
        return [u for u in result if isinstance(u, dict)] if isinstance(result, list) else []

    async def answer_callback(self, ack: TelegramAck, text: str = "Acknowledged") -> None:
        """Stop the client's spinner after an accepted press."""
        await self.call(
            "answerCallbackQuery", {"callback_query_id": ack.callback_query_id, "text": text}
        )

    async def replace_button(self, chat_id: int | str, message_id: int, text: str) -> None:
        """Swap a paged message's button for a plain note ("✅ Acknowledged by Jan")."""
        markup = {"inline_keyboard": [[{"text": text, "callback_data": "noop"}]]}
        await self.call(
            "editMessageReplyMarkup",
            {"chat_id": chat_id, "message_id": message_id, "reply_markup": markup},
        )
