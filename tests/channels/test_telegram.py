"""Telegram: sendMessage with the inline Acknowledge button, error JSON, callback parsing."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from alerts.channels.base import RateLimited
from alerts.channels.telegram import TelegramChannel, TelegramConfig, parse_ack_callback
from monitord.errors import DeliveryError, Reason
from tests.channels import emulators as e
from tests.channels.cases import build, page
from tests.channels.emulators import HttpEmulators


async def test_request_shape(emu: HttpEmulators, session: aiohttp.ClientSession) -> None:
    result = await build("telegram", session, emu.base_url).send(page("telegram"))
    assert result.remote_id == "42"
    (req,) = emu.of("telegram")
    assert req.path == f"/telegram/bot{e.TELEGRAM_TOKEN}/sendMessage"
    assert req.headers["Content-Type"].startswith("application/json")
    body = req.json
    assert body["chat_id"] == "987654321"
    assert body["parse_mode"] == "HTML"
    assert body["text"] == "<b>P1</b> srv-db01 (Customer A) DOWN\nping loss 100% since 02:14 UTC"
    (row,) = body["reply_markup"]["inline_keyboard"]
    (button,) = row
    assert button["text"] == "✅ Acknowledge"
    assert button["callback_data"].startswith("ack:monitord-incident-17:")
    assert len(button["callback_data"].encode()) <= 64


async def test_resolve_has_no_button_and_escapes_html(
    emu: HttpEmulators, session: aiohttp.ClientSession
) -> None:
    p = page("telegram", "resolve", title="a<b>&c")
    await build("telegram", session, emu.base_url).send(p)
    (req,) = emu.of("telegram")
    assert "reply_markup" not in req.json
    assert req.json["text"].startswith("<b>RESOLVED P1</b> a&lt;b&gt;&amp;c")


async def test_429_retry_after(emu: HttpEmulators, session: aiohttp.ClientSession) -> None:
    emu.modes["telegram"] = "rate_limited"
    with pytest.raises(RateLimited) as info:
        await build("telegram", session, emu.base_url).send(page("telegram"))
    assert info.value.retry_after == 7.0
    assert (info.value.permanent, info.value.reason) == (False, Reason.RATE_LIMITED)


@pytest.mark.parametrize(
    ("overrides", "recipient", "match", "reason"),
    [
        ({"token": "1:wrong"}, "987654321", "Unauthorized", Reason.AUTH),
        ({}, "111", "chat not found", Reason.CLIENT_ERROR),
    ],
)
async def test_permanent_errors(
    emu: HttpEmulators,
    session: aiohttp.ClientSession,
    overrides: dict[str, Any],
    recipient: str,
    match: str,
    reason: Reason,
) -> None:
    channel = build("telegram", session, emu.base_url, **overrides)
    with pytest.raises(DeliveryError, match=match) as info:
        await channel.send(page("telegram", recipient=recipient))
    assert (info.value.permanent, info.value.reason) == (True, reason)
    assert e.TELEGRAM_TOKEN not in str(info.value) and "1:wrong" not in str(info.value)


async def test_bad_gateway_html_is_retryable(
    emu: HttpEmulators, session: aiohttp.ClientSession
) -> None:
    emu.modes["telegram"] = "retryable"
    with pytest.raises(DeliveryError) as info:
        await build("telegram", session, emu.base_url).send(page("telegram"))
    assert (info.value.permanent, info.value.reason) == (False, Reason.SERVER_ERROR)


async def test_key_too_long_for_callback_data(
    emu: HttpEmulators, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(DeliveryError) as info:
        await build("telegram", session, emu.base_url).send(page("telegram", dedup_key="k" * 60))
    assert info.value.permanent
    assert emu.of("telegram") == []


def _update(data: str, user_id: int = 987654321) -> dict[str, Any]:
    return {
        "update_id": 500123,
        "callback_query": {
            "id": "4382bfdwdsb323b2d9",
            "chat_instance": "-8712345",
            "from": {"id": user_id, "is_bot": False, "first_name": "Jan", "username": "jan"},
            "message": {"message_id": 42, "chat": {"id": user_id, "type": "private"}},
            "data": data,
        },
    }


async def test_callback_round_trip(emu: HttpEmulators, session: aiohttp.ClientSession) -> None:
    channel = build("telegram", session, emu.base_url)
    assert isinstance(channel, TelegramChannel)
    await channel.send(page("telegram", dedup_key="mon:key:with:colons"))
    data = emu.of("telegram")[0].json["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    ack = parse_ack_callback(_update(data), channel.config)
    assert (ack.dedup_key, ack.user, ack.user_id) == ("mon:key:with:colons", "@jan", 987654321)
    await channel.answer_callback(ack)
    answer = emu.of("telegram")[-1]
    assert answer.path.endswith("/answerCallbackQuery")
    assert answer.json == {"callback_query_id": "4382bfdwdsb323b2d9", "text": "Acknowledged"}


def test_callback_rejections() -> None:
    config = TelegramConfig(token=e.TELEGRAM_TOKEN, allowed_user_ids=frozenset({1}))
    good = "ack:k1:" + parse_tag(config, "k1")
    assert parse_ack_callback(_update(good, 1), config).dedup_key == "k1"
    for update in (
        {"update_id": 1, "message": {"text": "hi"}},
        _update("ack:k1:000000000000", 1),  # forged tag
        _update("ack:k2:" + parse_tag(config, "k1"), 1),  # tag of another key
        _update("other:k1", 1),
        _update(good, 2),  # not on the roster
        {"callback_query": {"id": "x", "data": good, "from": {"id": "1"}}},
    ):
        with pytest.raises(ValueError):
            parse_ack_callback(update, config)


def parse_tag(config: TelegramConfig, key: str) -> str:
    from alerts.channels.telegram import callback_data

    return callback_data(config.token.get_secret_value(), key).rsplit(":", 1)[1]
