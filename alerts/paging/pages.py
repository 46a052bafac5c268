"""Writing pages: one incident is a page of its own, several for one engineer are one
summary, pages past the engineer's rate limit are held and released later as a
summary. Each page is an outbox row with an op key per escalation, engineer, step
and round (so writing twice writes nothing twice), and a `page_recipients` row per
incident it covers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from alerts.outbox import put
from alerts.paging.links import ack_url, sign, summary_key
from alerts.paging.model import Env, Outcome, engineer_target, iso, log_entry
from monitord.config.paging import CHANNEL_PREFIX
from monitord.storage.schema import incidents, outbox, page_escalations, page_recipients

SUMMARY_LINES = 20  # incidents listed in a summary page (and in its ack link)

# (escalation row, incident row, via, step, round, kind): kind is "trigger",
# "released" (held back by the rate limit) or "handover:<holder>".
Item = tuple[Any, Any, str, int, int, str]


def release_held(
    conn: Connection,
    env: Env,
    now: float,
    batch: dict[str, list[Item]],
    out: Outcome,
) -> None:
    """Pages the rate limit held back go out (as one summary) once the engineer's
    window has room; those whose escalation ended meanwhile are dropped."""
    held = conn.execute(
        select(page_recipients, page_escalations.c.state.label("esc_state"))
        .join(page_escalations, page_escalations.c.id == page_recipients.c.escalation_id)
        .where(page_recipients.c.held)
        .order_by(page_recipients.c.id)
    ).all()
    by_engineer: dict[str, list[Any]] = {}
    for r in held:
        if r.esc_state not in ("active", "exhausted"):
            conn.execute(
                update(page_recipients).where(page_recipients.c.id == r.id).values(held=False)
            )
            continue
        by_engineer.setdefault(r.engineer, []).append(r)
    for name, rows in by_engineer.items():
        if _recent(conn, env, name, now) >= env.config.paging.rate_limit.pages:
            continue
        for r in rows:
            esc = conn.execute(
                select(page_escalations).where(page_escalations.c.id == r.escalation_id)
            ).one()
            inc = conn.execute(select(incidents).where(incidents.c.id == r.incident_id)).one()
            conn.execute(_delete_recipient(r.id))
            batch.setdefault(name, []).append((esc, inc, r.via, r.step, r.loop, "released"))


def _recent(conn: Connection, env: Env, name: str, now: float) -> int:
    """Trigger pages to `name` within the rate-limit window (a summary counts once)."""
    since = now - env.config.paging.rate_limit.per
    return int(
        conn.execute(
            select(func.count(func.distinct(page_recipients.c.outbox_id))).where(
                page_recipients.c.engineer == name,
                page_recipients.c.outbox_id.is_not(None),
                page_recipients.c.created_at > since,
            )
        ).scalar_one()
    )


def page(
    conn: Connection,
    env: Env,
    name: str,
    items: list[Item],
    now: float,
    out: Outcome,
) -> None:
    """One page to `name` for `items` (escalation, incident, via, step, round, kind):
    one incident is a page of its own, several are one summary; past the rate
    limit they are held for a summary later. A channel target gets a page per
    incident (the console of a daemon with no engineers)."""
    if name.startswith(CHANNEL_PREFIX):
        for esc, row, via, step, loop, kind in items:
            _write(conn, env, name, [(esc, row, via, step, loop, kind)], now, out)
        return
    fresh = [i for i in items if not _already(conn, i, name)]
    if not fresh:
        return
    handover = [i for i in fresh if i[5].startswith("handover:")]
    regular = [i for i in fresh if not i[5].startswith("handover:")]
    for item in handover:  # a handover is always its own page: it names who handed over
        _write(conn, env, name, [item], now, out)
    if not regular:
        return
    limit = env.config.paging.rate_limit
    if _recent(conn, env, name, now) >= limit.pages:
        for item in regular:
            _recipient(conn, item, name, now, outbox_id=None)
            row = item[1]
            log_entry(
                conn,
                row.id,
                now,
                "held",
                f"{name} had {limit.pages} pages within {limit.per:g}s: "
                "this one waits for a summary page",
            )
        return
    _write(conn, env, name, regular, now, out)


def _already(conn: Connection, item: Item, name: str) -> bool:
    esc, _row, _via, step, loop, kind = item
    if kind == "released" or kind.startswith("handover:"):
        return False  # a handover may go to someone this step paged before
    return (
        conn.execute(
            select(page_recipients.c.id).where(
                page_recipients.c.escalation_id == esc.id,
                page_recipients.c.engineer == name,
                page_recipients.c.step == step,
                page_recipients.c.loop == loop,
            )
        ).first()
        is not None
    )


def _write(
    conn: Connection,
    env: Env,
    name: str,
    items: list[Item],
    now: float,
    out: Outcome,
) -> None:
    esc0, row0, _, step0, loop0, kind0 = items[0]
    # an incident held back twice (two steps or rounds of its escalation) is listed once
    rows = list({i[1].id: i[1] for i in items}.values())
    ids = tuple(r.id for r in rows)
    channel = name[len(CHANNEL_PREFIX) :] if name.startswith(CHANNEL_PREFIX) else None
    if len(rows) == 1:
        title = row0.title
        body = _body(env, row0, kind0)
        key = f"page:{esc0.id}:{name}:{step0}:{loop0}:{kind0.split(':')[0]}"
        if kind0.startswith("handover:"):
            key += f":{int(now)}"
        dedup = f"monitord-incident-{row0.id}"
        subject = f"[{row0.priority}] {row0.title}"
    else:
        title = f"{len(rows)} incidents need you"
        lines = [f"#{r.id} {r.priority} {r.title}" for r in rows[:SUMMARY_LINES]]
        if len(rows) > SUMMARY_LINES:
            lines.append(f"... and {len(rows) - SUMMARY_LINES} more")
        body = "\n".join(lines)
        first = min(ids)
        key = f"page:summary:{name}:{first}:{esc0.id}:{step0}:{loop0}:{int(now)}"
        dedup = summary_key(first, int(now))
        subject = f"[{min(r.priority for r in rows)}] {title}"
        out.summaries += 1
    if conn.execute(select(outbox.c.id).where(outbox.c.op_key == key[:150])).first():
        return
    paging = env.config.paging
    link = None
    if channel is None and paging.ack_secret is not None and env.public_url:
        big = len(ids) > SUMMARY_LINES  # the link names the summary, not each one
        token = sign(
            paging.ack_secret.get_secret_value(),
            ids,
            name,
            now + paging.ack_link_ttl,
            summary=(min(ids), int(now)) if big else None,
        )
        link = ack_url(env.public_url, token)
    payload = {
        "engineer": None if channel else name,
        "incidents": list(ids),
        "title": title,
        "body": body,
        "priority": min(r.priority for r in rows),
        "dedup_key": dedup,
        "ack_url": link,
        "subject": subject,
        "ts": now,
    }
    put(
        conn,
        kind="page",
        target=channel or engineer_target(name),
        op="trigger",
        incident_id=row0.id,
        op_key=key,
        payload=payload,
        now=now,
    )
    outbox_id = conn.execute(select(outbox.c.id).where(outbox.c.op_key == key[:150])).scalar_one()
    logged: set[int] = set()
    for item in items:
        _recipient(conn, item, name, now, outbox_id=outbox_id)
        row = item[1]
        if len(rows) > 1 and row.id not in logged:
            logged.add(row.id)
            log_entry(
                conn,
                row.id,
                now,
                "summary",
                f"paged {name} in one summary of {len(rows)} incidents",
            )
    out.paged = True


def _recipient(
    conn: Connection, item: Item, name: str, now: float, *, outbox_id: int | None
) -> None:
    """Who a page of `item` went to (`outbox_id`), or is held for (None: rate limit)."""
    esc, row, via, step, loop, kind = item
    conn.execute(
        insert(page_recipients).values(
            escalation_id=esc.id,
            incident_id=row.id,
            engineer=name,
            step=step,
            loop=loop,
            via=via,
            action="handover" if kind.startswith("handover:") else "trigger",
            outbox_id=outbox_id,
            held=outbox_id is None,
            created_at=now,
        )
    )


def _delete_recipient(recipient_id: int) -> Any:
    return delete(page_recipients).where(page_recipients.c.id == recipient_id)


def _body(env: Env, row: Any, kind: str) -> str:
    parts = []
    if kind.startswith("handover:"):
        holder = kind.split(":", 1)[1]
        names = {e.name: e.label for e in env.oncall.engineers}
        parts.append(f"handed over from {names.get(holder, holder)} (their shift ended)")
    where = row.device_id or row.customer
    if where:
        parts.append(where + (f" at site {row.site}" if row.site else ""))
    parts.append(f"since {iso(row.opened_at)} (incident #{row.id})")
    return "\n".join(parts)
