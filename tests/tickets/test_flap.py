"""Flap test: a problem that returns five times within the reopen window leaves one
ticket with five reopen notes, in the built-in store and in the real Request
Tracker and Redmine (the daemon talks to both at once)."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from monitord.storage.schema import outbox, ticket_comments, tickets
from tests.test_app import running
from tests.tickets.daemon import (
    clear_problem,
    config,
    incident_of,
    notified,
    raise_problem,
    undelivered,
    wait_for,
)
from tests.tickets.services import RealSystem, service_env

RETURNS = 5


async def test_five_returns_are_one_ticket_with_five_reopens_everywhere(tmp_path: Path) -> None:
    rt_env, redmine_env = service_env("request-tracker"), service_env("redmine")
    prefix = f"flap{uuid.uuid4().hex[:10]}"  # this run's tickets only
    systems = (
        {
            "name": "rt",
            "kind": "rt",
            "url": rt_env["RT_URL"],
            "token": rt_env["RT_TOKEN"],
            "queue": rt_env["RT_QUEUE"],
            "custom_field": rt_env["RT_CF"],
        },
        {
            "name": "redmine",
            "kind": "redmine",
            "url": redmine_env["REDMINE_URL"],
            "api_key": redmine_env["REDMINE_API_KEY"],
            "project": redmine_env["REDMINE_PROJECT"],
            "tracker_id": int(redmine_env["REDMINE_TRACKER_ID"]),
            "custom_field_id": int(redmine_env["REDMINE_CF_ID"]),
            "resolved_status_id": int(redmine_env["REDMINE_STATUS_RESOLVED"]),
            "open_status_id": int(redmine_env["REDMINE_STATUS_NEW"]),
        },
    )
    cfg = config(tmp_path, systems, {"key_prefix": prefix}, public_url="https://mon.example")
    async with running(cfg) as (app, _):
        for _ in range(1 + RETURNS):
            await raise_problem(app, "ups", "UPS on battery")
            await notified(app, "ups")
            await clear_problem(app, "ups")
            await wait_for(lambda: incident_of(app, "ups").state == "resolved")
            await wait_for(lambda: not undelivered(app))
        assert app.engine is not None
        with app.engine.connect() as conn:
            ops = conn.execute(select(outbox).where(outbox.c.kind == "ticket")).all()
            builtin = conn.execute(select(tickets)).all()
            history = conn.execute(select(ticket_comments.c.kind)).scalars().all()
    assert len({r.incident_id for r in ops}) == 1  # one incident all along
    assert Counter((r.target, r.op) for r in ops) == {
        (target, op): n
        for target in ("builtin", "rt", "redmine")
        for op, n in (("open", 1), ("reopen", RETURNS), ("resolve", 1 + RETURNS))
    }
    (ticket,) = builtin
    assert ticket.status == "resolved" and ticket.reopened == RETURNS
    assert history == ["trigger"] + ["resolve", "reopen"] * RETURNS + ["resolve"]

    rt = RealSystem("rt", rt_env)
    (rt_ticket,) = await rt.tickets(prefix)
    assert await rt.status(rt_ticket) == "resolved"
    reopens = {f"monitord op {r.id}" for r in ops if r.target == "rt" and r.op == "reopen"}
    assert len([n for n in await rt.notes(rt_ticket) if n in reopens]) == RETURNS

    redmine = RealSystem("redmine", redmine_env)
    (issue,) = await redmine.tickets(prefix)
    assert await redmine.status(issue) == redmine_env["REDMINE_STATUS_RESOLVED"]
    notes = await redmine.notes(issue)
    assert sum(n.startswith("*Problem returned:*") for n in notes) == RETURNS
    assert len(notes) == 2 * RETURNS + 1  # 6 recoveries, 5 returns, each once
