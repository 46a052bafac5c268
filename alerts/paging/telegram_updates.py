"""Acknowledgements from Telegram: the inline button and a reply.

Two kinds of update count, whether they arrive by getUpdates long polling
(`updates: poll`, offset kept in `page_channels.update_offset` so a restart
neither loses nor replays a press) or by the webhook endpoint (`updates: webhook`):

- a press of the page's "Acknowledge" button (`callback_query` whose data is signed
  with the bot token, see `alerts.channels.telegram`): the press is answered and
  the button replaced with who took it;
- a reply to a paged message whose text is `ack` (or `/ack`, `ok`; any case): the
  message is found by its id among the pages sent to that chat.

Either way the sender must be an engineer of the roster (their
`telegram_chat_id` is the sender's id): anyone else is refused and logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select, update

from alerts.channels.telegram import TelegramChannel, parse_ack_callback
from monitord.errors import DeliveryError
from monitord.storage.schema import outbox, page_channels, page_deliveries

log = logging.getLogger(__name__)

REPLY_WORDS = frozenset({"ack", "/ack", "ok", "acknowledge"})
POLL_PAUSE = 5.0  # after a failed poll


def pollers(paging: Any) -> list[asyncio.Task[Any]]:
    out = []
    for name, channel in paging.channels.items():
        if isinstance(channel, TelegramChannel) and channel.config.updates == "poll":
            out.append(asyncio.create_task(poll(paging, name, channel), name=f"telegram:{name}"))
    return out


async def poll(paging: Any, name: str, channel: TelegramChannel) -> None:
    engine = paging.app.engine
    while True:
        offset = await asyncio.to_thread(_offset, engine, name)
        try:
            found = await channel.updates(offset, channel.config.poll_timeout)
        except DeliveryError as exc:
            log.warning("telegram %s: getUpdates failed: %s", name, exc)
            await asyncio.sleep(POLL_PAUSE)
            continue
        for update_ in found:
            await handle(paging, name, channel, update_)
        if found:
            last = max(int(u.get("update_id", 0)) for u in found)
            await asyncio.to_thread(_save_offset, engine, name, last + 1, paging.app.clock.time())
        elif channel.config.poll_timeout == 0:
            await asyncio.sleep(1.0)


async def webhook_update(paging: Any, name: str, update_: Mapping[str, Any]) -> str:
    """Handle one update POSTed by Telegram; duplicates (a retried delivery) are skipped."""
    channel = paging.channels.get(name)
    if not isinstance(channel, TelegramChannel):
        return "no such telegram channel"
    update_id = update_.get("update_id")
    if isinstance(update_id, int):
        engine = paging.app.engine
        seen = await asyncio.to_thread(_offset, engine, name)
        if seen is not None and update_id < seen:
            return "duplicate"
        await asyncio.to_thread(_save_offset, engine, name, update_id + 1, paging.app.clock.time())
    return await handle(paging, name, channel, update_)


async def handle(
    paging: Any, name: str, channel: TelegramChannel, update_: Mapping[str, Any]
) -> str:
    """Act on one update; returns what became of it (for logs and the webhook's answer)."""
    if "callback_query" in update_:
        return await _press(paging, name, channel, update_)
    message = update_.get("message")
    if isinstance(message, Mapping) and isinstance(message.get("reply_to_message"), Mapping):
        return await _reply(paging, name, channel, message)
    return "ignored"


async def _press(
    paging: Any, name: str, channel: TelegramChannel, update_: Mapping[str, Any]
) -> str:
    try:
        ack = parse_ack_callback(update_, channel.config)
    except ValueError as exc:
        log.warning("telegram %s: refused a button press: %s", name, exc)
        return f"refused: {exc}"
    engineer = paging.engineer_for_chat(ack.user_id)
    if engineer is None:
        log.warning("telegram %s: %s (%s) is not on the roster", name, ack.user, ack.user_id)
        await _quietly(channel.answer_callback(ack, "You are not on the on-call roster"))
        return "refused: not on the roster"
    incidents = await asyncio.to_thread(_incidents_of_key, paging, ack.dedup_key)
    done = await paging.acknowledge(incidents, engineer.name, "telegram")
    text = "Acknowledged" if done else "Already acknowledged or resolved"
    await _quietly(channel.answer_callback(ack, text))
    query = update_["callback_query"]
    message = query.get("message") if isinstance(query, Mapping) else None
    if done and isinstance(message, Mapping) and isinstance(message.get("chat"), Mapping):
        await _quietly(
            channel.replace_button(
                message["chat"]["id"],
                int(message["message_id"]),
                f"✅ Acknowledged by {engineer.label}",
            )
        )
    return f"acknowledged {[i.id for i in done]} for {engineer.name}"


async def _reply(
    paging: Any, name: str, channel: TelegramChannel, message: Mapping[str, Any]
) -> str:
    text = str(message.get("text") or "").strip().lower()
    if text not in REPLY_WORDS:
        return "ignored: not an ack"
    sender = message.get("from")
    user_id = sender.get("id") if isinstance(sender, Mapping) else None
    engineer = paging.engineer_for_chat(user_id) if isinstance(user_id, int) else None
    chat = message.get("chat")
    chat_id = chat.get("id") if isinstance(chat, Mapping) else None
    if engineer is None or chat_id is None:
        log.warning("telegram %s: an ack reply from %s, who is not on the roster", name, user_id)
        return "refused: not on the roster"
    replied = message["reply_to_message"].get("message_id")
    incidents = await asyncio.to_thread(
        _incidents_of_message, paging, name, str(chat_id), str(replied)
    )
    if not incidents:
        return "ignored: not a reply to a page"
    done = await paging.acknowledge(incidents, engineer.name, "reply")
    answer = (
        "Acknowledged " + ", ".join(f"#{i.id}" for i in done)
        if done
        else "Already acknowledged or resolved"
    )
    await _quietly(channel.call("sendMessage", {"chat_id": chat_id, "text": answer}))
    return f"acknowledged {[i.id for i in done]} for {engineer.name}"


async def _quietly(coro: Any) -> None:
    try:
        await coro
    except DeliveryError as exc:  # the ack counts; a cosmetic call failing is only logged
        log.warning("telegram: %s", exc)


def _incidents_of_key(paging: Any, key: str) -> tuple[int, ...]:
    with paging.app.engine.connect() as conn:
        result: tuple[int, ...] = paging.incidents_of_key(conn, key)
        return result


def _incidents_of_message(paging: Any, channel: str, chat: str, message_id: str) -> tuple[int, ...]:
    with paging.app.engine.connect() as conn:
        row = conn.execute(
            select(outbox.c.payload)
            .join(page_deliveries, page_deliveries.c.outbox_id == outbox.c.id)
            .where(
                page_deliveries.c.channel == channel,
                page_deliveries.c.recipient == chat,
                page_deliveries.c.remote_id == message_id,
            )
        ).first()
    if row is None or not isinstance(row.payload, dict):
        return ()
    return tuple(int(i) for i in row.payload.get("incidents", []))


def _offset(engine: Any, name: str) -> int | None:
    with engine.connect() as conn:
        value = conn.execute(
            select(page_channels.c.update_offset).where(page_channels.c.name == name)
        ).scalar()
    return None if value is None else int(value)


def _save_offset(engine: Any, name: str, offset: int, now: float) -> None:
    with engine.begin() as conn:
        done = conn.execute(
            update(page_channels).where(page_channels.c.name == name).values(update_offset=offset)
        )
        if done.rowcount == 0:
            conn.execute(
                insert(page_channels).values(
                    name=name, update_offset=offset, raised=False, last_error="", updated_at=now
                )
            )
