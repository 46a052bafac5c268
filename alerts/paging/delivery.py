"""Delivering a page to an engineer: their channels in order, never losing it.

The outbox target `engineer:<name>` keeps one engineer's pages in order (a resolve
never overtakes its trigger). For each item the deliverer:

1. picks the engineer's current channel (`page_deliveries.channel_index`; their
   `channels`, or every configured channel that has an address for them);
2. if an earlier attempt on it was interrupted (an intent without a result: the
   daemon died mid-request), asks the service whether it went out, where the
   service can tell (Odorik's SMS history); PagerDuty's dedup key makes a resend
   harmless; elsewhere it is resent: a duplicate beats a lost page;
3. records the intent, sends, records the result (a `pages` row);
4. on failure counts it against the channel; after `paging.channel_failures`
   failures in a row (at once for a permanent one) it moves on to the next channel
   within the same attempt and raises the internal incident
   `paging-channel:<name>`, cleared by the channel's next success;
5. when every channel failed it starts over after the outbox's backoff: a page is
   never parked.

Resolve and ack notices queued back to back for one engineer go out as one message
(a storm that clears is one SMS listing what resolved), each still recorded.

An engineer with no usable channel (none configured: the demo) gets the console:
a log line and a `pages` row. A policy's `channel:<name>` target (a PagerDuty
service, a team chat) is delivered the same way with that one channel: retried
with backoff, its failures raising the same internal incident.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sqlalchemy import Engine, and_, func, insert, select, update

from alerts.channels.base import Channel, Page
from alerts.outbox import Deliverer, OutboxItem
from alerts.paging.metrics import PagingMetrics
from monitord.config.oncall import Engineer
from monitord.config.paging import ChannelDef, PagingConfig, address
from monitord.errors import DeliveryError, Reason
from monitord.storage.schema import outbox, page_channels, page_deliveries, pages

log = logging.getLogger("monitord.page")

ENGINEER = "engineer:"
NOTICES = ("resolve", "acknowledge")
KEYED_KINDS = frozenset({"pagerduty"})  # a notice must carry its incident's own dedup key
MERGE_LIMIT = 200  # notices merged into one message at most
SUMMARY_LINES = 20  # incidents listed in it


def channel_key(name: str) -> str:
    return f"paging-channel:{name}"


class PageDeliverer:
    """The outbox deliverer of every `engineer:<name>` target."""

    def __init__(
        self,
        engine: Engine,
        channels: Callable[[], Mapping[str, Channel]],
        paging: Callable[[], PagingConfig],
        people: Callable[[], Mapping[str, Engineer]],
        internal: Callable[[str, str, bool], None],
        now: Callable[[], float],
        metrics: PagingMetrics,
    ) -> None:
        self.engine = engine
        self.channels = channels
        self.paging = paging
        self.people = people
        self.internal = internal
        self.now = now
        self.metrics = metrics

    # which channels -------------------------------------------------------------
    def routes(self, engineer: Engineer | None) -> list[tuple[ChannelDef, str]]:
        """(channel, address) in the order to try for `engineer`."""
        if engineer is None:
            return []
        paging = self.paging()
        names = engineer.channels or tuple(c.name for c in paging.channels)
        out = []
        for name in names:
            channel = paging.channel(name)
            if channel is None or name not in self.channels():
                continue
            where = address(engineer, channel)
            if where:
                out.append((channel, where))
        return out

    def channel_route(self, name: str) -> list[tuple[ChannelDef, str]]:
        """A policy's `channel:<name>` target: the service itself (a PagerDuty service,
        a team chat, a webhook), with nobody's address; it has no next channel."""
        channel = self.paging().channel(name)
        if channel is None or name not in self.channels():
            return []
        return [(channel, "")]

    async def deliver(self, item: OutboxItem) -> None:
        name = item.target.removeprefix(ENGINEER)
        if item.target.startswith(ENGINEER):
            routes = self.routes(self.people().get(name))
        else:
            routes = self.channel_route(name)
        state = await asyncio.to_thread(self._state, item.id)
        if state is not None and state["sent_at"] is not None:
            return  # delivered before a crash took the outbox mark with it
        if await asyncio.to_thread(self._cancelled, item.id):
            return
        if not routes:
            await asyncio.to_thread(self._record, item, "console", name, None)
            log.warning(
                "PAGE %s %s: %s (no paging channel)", name, item.op, item.payload["subject"]
            )
            return
        merged = await asyncio.to_thread(self._companions, item, routes)
        start = state["channel_index"] % len(routes) if state else 0
        failures = state["failures"] if state else 0
        interrupted = state is not None and state["attempted_at"] is not None
        last: DeliveryError | None = None
        for offset in range(len(routes)):
            index = (start + offset) % len(routes)
            channel_def, recipient = routes[index]
            channel = self.channels()[channel_def.name]
            page = self._merged_page([item, *merged], recipient)
            resumed = offset == 0 and interrupted and state is not None
            if resumed and state is not None and state["channel"] == channel_def.name:  # noqa: SIM102
                if await self._went_out(channel, item, recipient, state["attempted_at"]):
                    self.metrics.pages.labels(channel_def.name, "recovered").inc()
                    await asyncio.to_thread(self._record, item, channel_def.name, recipient, None)
                    return
            await asyncio.to_thread(self._intent, item.id, index, channel_def.name, recipient)
            try:
                result = await channel.send(page)
            except DeliveryError as exc:
                last = exc
                failures = failures + 1 if offset == 0 else 1
                self.metrics.pages.labels(channel_def.name, "failed").inc()
                log.warning(
                    "page to %s via %s failed: %s",
                    name,
                    channel_def.name,
                    exc,
                    extra={"item": item.id},
                )
                gave_up = exc.permanent or failures >= self.paging().channel_failures
                await self._failing(channel_def.name, str(exc), raise_now=gave_up)
                if not gave_up:
                    await asyncio.to_thread(self._failed, item.id, index, failures)
                    raise
                self.metrics.pages.labels(channel_def.name, "fallback").inc()
                await asyncio.to_thread(self._failed, item.id, index + 1, 0)
                continue
            await self._sent([item, *merged], channel_def.name, recipient, result.remote_id)
            return
        raise DeliveryError(
            f"no channel reached {name}: {last}", permanent=False, reason=Reason.SERVER_ERROR
        )

    def _companions(
        self, item: OutboxItem, routes: list[tuple[ChannelDef, str]]
    ) -> list[OutboxItem]:
        """Resolve and ack notices queued right behind `item` for the same engineer (no
        trigger between them), when `item` is one: they go out with it as one message,
        so a storm that clears is one SMS, not fifty. Not where a route needs each
        incident's own dedup key (PagerDuty) and not for a policy's channel target."""
        if item.op not in NOTICES or not item.target.startswith(ENGINEER):
            return []
        if any(c.kind in KEYED_KINDS for c, _ in routes):
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outbox)
                .where(
                    outbox.c.kind == "page",
                    outbox.c.target == item.target,
                    outbox.c.id > item.id,
                    outbox.c.delivered_at.is_(None),
                    outbox.c.parked.is_(False),
                )
                .order_by(outbox.c.id)
                .limit(MERGE_LIMIT)
            ).all()
            begun = set(
                conn.execute(
                    select(page_deliveries.c.outbox_id).where(
                        page_deliveries.c.outbox_id.in_([r.id for r in rows])
                    )
                ).scalars()
            )
        out = []
        for r in rows:
            if r.op not in NOTICES or r.attempts or r.id in begun:
                break  # nothing overtakes what is ahead of it in the engineer's line
            out.append(OutboxItem(r.id, r.kind, r.target, r.op, r.incident_id, r.payload, 0))
        return out

    async def _sent(
        self, items: list[OutboxItem], channel: str, recipient: str, remote_id: str | None
    ) -> None:
        self.metrics.pages.labels(channel, "sent").inc()
        for done in items:
            await asyncio.to_thread(self._record, done, channel, recipient, remote_id)
        if len(items) > 1:
            self.metrics.summaries.inc()
        await self._ok(channel)

    def _merged_page(self, items: list[OutboxItem], recipient: str) -> Page:
        """The page of `items[0]`, or one message for several notices."""
        if len(items) == 1:
            return self._page(items[0], recipient)
        ops = {i.op for i in items}
        mixed = len(ops) > 1
        lines = []
        for i in items[:SUMMARY_LINES]:
            p = i.payload
            tag = ("RESOLVED " if i.op == "resolve" else "ACK ") if mixed else ""
            who = f" ({p['body']})" if i.op == "acknowledge" and p.get("body") else ""
            lines.append(f"{tag}#{i.incident_id} {p['priority']} {p['title']}{who}")
        if len(items) > SUMMARY_LINES:
            lines.append(f"... and {len(items) - SUMMARY_LINES} more")
        return Page(
            dedup_key=f"monitord-notices-{items[0].id}",
            action="resolve" if mixed else items[0].op,  # type: ignore[arg-type]
            recipient=recipient,
            title=f"{len(items)} incidents" + (" (resolved or acknowledged)" if mixed else ""),
            body="\n".join(lines),
            priority=min(str(i.payload["priority"]) for i in items),
        )

    def _page(self, item: OutboxItem, recipient: str) -> Page:
        p = item.payload
        action = item.op if item.op in ("trigger", "acknowledge", "resolve") else "trigger"
        return Page(
            dedup_key=str(p["dedup_key"]),
            action=action,  # type: ignore[arg-type]
            recipient=recipient,
            title=str(p["title"]),
            body=str(p.get("body") or ""),
            priority=str(p["priority"]),
            ack_url=p.get("ack_url") if action == "trigger" else None,
        )

    async def _went_out(
        self, channel: Channel, item: OutboxItem, recipient: str, since: float
    ) -> bool:
        """Whether the interrupted attempt reached the service (see the module doc)."""
        check = getattr(channel, "sent_since", None)
        if check is None:
            return False
        try:
            remote = int(await check(recipient, since - 60))
        except DeliveryError as exc:
            log.warning("cannot ask whether an interrupted page went out: %s", exc)
            return False
        ours = await asyncio.to_thread(self._ours_since, item.id, recipient, since - 60)
        return remote > ours

    # health -------------------------------------------------------------------
    async def _failing(self, name: str, error: str, *, raise_now: bool) -> None:
        raised = await asyncio.to_thread(self._health, name, error, raise_now)
        if raised:
            self.internal(channel_key(name), f"paging channel {name} keeps failing: {error}", False)

    async def _ok(self, name: str) -> None:
        cleared = await asyncio.to_thread(self._health, name, None, False)
        if cleared:
            self.internal(channel_key(name), f"paging channel {name} delivers again", True)

    def _health(self, name: str, error: str | None, raise_now: bool) -> bool:
        """Record a failure (`error`) or a success; True when the internal incident
        must be raised (failure) or cleared (success) now."""
        now = self.now()
        with self.engine.begin() as conn:
            row = conn.execute(select(page_channels).where(page_channels.c.name == name)).first()
            if row is None:
                conn.execute(
                    insert(page_channels).values(
                        name=name,
                        failing_since=now if error else None,
                        last_error=error or "",
                        raised=bool(error and raise_now),
                        last_ok_at=None if error else now,
                        updated_at=now,
                    )
                )
                return bool(error and raise_now)
            if error is None:
                conn.execute(
                    update(page_channels)
                    .where(page_channels.c.name == name)
                    .values(failing_since=None, raised=False, last_ok_at=now, updated_at=now)
                )
                return bool(row.raised)
            raise_it = raise_now and not row.raised
            conn.execute(
                update(page_channels)
                .where(page_channels.c.name == name)
                .values(
                    failing_since=row.failing_since or now,
                    last_error=error[:2000],
                    raised=bool(row.raised or raise_now),
                    updated_at=now,
                )
            )
            return raise_it

    # the intent log -------------------------------------------------------------
    def _state(self, outbox_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(page_deliveries).where(page_deliveries.c.outbox_id == outbox_id)
            ).first()
        return None if row is None else dict(row._mapping)

    def _cancelled(self, outbox_id: int) -> bool:
        with self.engine.connect() as conn:
            return bool(
                conn.execute(select(outbox.c.parked).where(outbox.c.id == outbox_id)).scalar()
            )

    def _intent(self, outbox_id: int, index: int, channel: str, recipient: str) -> None:
        now = self.now()
        with self.engine.begin() as conn:
            values = {
                "channel_index": index,
                "channel": channel,
                "recipient": recipient[:200],
                "attempted_at": now,
                "updated_at": now,
            }
            done = conn.execute(
                update(page_deliveries)
                .where(page_deliveries.c.outbox_id == outbox_id)
                .values(**values)
            )
            if done.rowcount == 0:
                conn.execute(
                    insert(page_deliveries).values(outbox_id=outbox_id, failures=0, **values)
                )

    def _failed(self, outbox_id: int, index: int, failures: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(page_deliveries)
                .where(page_deliveries.c.outbox_id == outbox_id)
                .values(
                    channel_index=index, failures=failures, attempted_at=None, updated_at=self.now()
                )
            )

    def _ours_since(self, outbox_id: int, recipient: str, since: float) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(page_deliveries)
                    .where(
                        and_(
                            page_deliveries.c.recipient == recipient,
                            page_deliveries.c.sent_at >= since,
                            page_deliveries.c.outbox_id != outbox_id,
                        )
                    )
                ).scalar_one()
            )

    def _record(
        self, item: OutboxItem, channel: str, recipient: str, remote_id: str | None
    ) -> None:
        now = self.now()
        p = item.payload
        with self.engine.begin() as conn:
            done = conn.execute(
                update(page_deliveries)
                .where(page_deliveries.c.outbox_id == item.id)
                .values(sent_at=now, remote_id=remote_id, updated_at=now)
            )
            if done.rowcount == 0:  # a notice that went out merged into another's message
                conn.execute(
                    insert(page_deliveries).values(
                        outbox_id=item.id,
                        channel_index=0,
                        channel=channel,
                        recipient=recipient[:200],
                        failures=0,
                        sent_at=now,
                        remote_id=remote_id,
                        updated_at=now,
                    )
                )
            if conn.execute(select(pages.c.id).where(pages.c.outbox_id == item.id)).first():
                return
            conn.execute(
                insert(pages).values(
                    outbox_id=item.id,
                    incident_id=item.incident_id,
                    channel=channel,
                    recipient=(
                        f"{item.target.removeprefix(ENGINEER)} {recipient}"
                        if item.target.startswith(ENGINEER)
                        else item.target
                    )[:100],
                    kind=item.op,
                    ts=now,
                    text=str(p.get("subject") or p.get("title"))[:2000],
                )
            )


class PageDeliverers(Mapping[tuple[str, str], Deliverer]):
    """The daemon's outbox deliverers plus the page deliverer for every
    `engineer:<name>` target (engineers can be added by a reload) and every paging
    channel a policy targets as `channel:<name>`."""

    def __init__(self, base: Mapping[tuple[str, str], Deliverer], pager: PageDeliverer) -> None:
        self.base = dict(base)
        self.pager = pager

    def __getitem__(self, key: tuple[str, str]) -> Deliverer:
        if key in self.base:
            return self.base[key]
        if key[0] == "page" and (key[1].startswith(ENGINEER) or key[1] in self.pager.channels()):
            return self.pager
        raise KeyError(key)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.base)

    def __len__(self) -> int:
        return len(self.base)
