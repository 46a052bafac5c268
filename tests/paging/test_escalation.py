"""Escalation on an injected clock, through a real daemon and the channel emulators:
who is paged when, what an ack and a resolve do, deferred pages, expiring acks,
handover, gaps, storms."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from sqlalchemy import select

from monitord.app import App
from monitord.config.load import config_from_dict
from monitord.model import Status
from monitord.storage.schema import pages
from tests.conftest import fast_timing
from tests.paging.harness import harness, number


async def test_escalates_until_acknowledged_then_resolve_tells_everyone(
    tmp_path: Path, db_url: str
) -> None:
    # Wednesday 23:00 in Prague: acme has after-hours cover; jan is primary, petr secondary.
    async with harness(tmp_path, "2026-11-25T23:00+01:00", db_url=db_url) as h:
        h.problem("srv")
        await h.settle()
        (first,) = h.sms_to("jan")
        assert first.startswith("P1 acme/srv: CRITICAL - srv is down")
        assert "Ack: http://" in first and "/ack/1~jan~" in first
        assert h.sms_to("petr") == []
        route = h.timeline(1)[0]
        assert route == (
            "route",
            "page now (policy night): route 0; out of business hours, acme has after-hours cover",
        )
        await h.at("2026-11-25T23:04:59+01:00")
        assert h.sms_to("petr") == []  # not yet
        await h.at("2026-11-25T23:05+01:00")
        assert len(h.sms_to("petr")) == 1  # step 2: the secondary
        await h.at("2026-11-25T23:10+01:00")
        assert len(h.sms_to("boss")) == 1  # step 3: the manager
        await h.at("2026-11-25T23:20+01:00")
        assert len(h.sms_to("jan")) == 2  # repeat: round 2 starts with the primary again
        assert [a for a, _ in h.timeline(1)] == [
            "route",
            "page",
            "escalate",
            "escalate",
            "escalate",
        ]

        done = await h.app.paging.acknowledge((1,), "petr", "api")
        assert [i.id for i in done] == [1]
        await h.settle()
        esc = h.escalation(1)
        assert (esc.state, esc.acked_by, esc.acked_via) == ("acked", "petr", "api")
        assert h.timeline(1)[-1][0] == "ack"
        told = [t for t in h.sms_to("jan") if t.startswith("ACK")]
        assert told == ["ACK P1 acme/srv: CRITICAL - srv is down\nacknowledged by petr"]
        await h.at("2026-11-26T01:00+01:00")  # nothing more: the ack stopped it
        assert len(h.sms_to("petr")) == 1 and len(h.sms_to("boss")) == 2  # page + ack notice

        h.problem("srv", ok=True)
        await h.settle()
        for name in ("jan", "petr", "boss"):
            assert h.sms_to(name)[-1].startswith("RESOLVED P1 acme/srv"), name
        assert h.escalation(1).state == "resolved"
        assert h.timeline(1)[-1] == ("resolve", "resolved: a resolve page to boss, jan, petr")
        metrics = generate_latest(h.app.registry).decode()
        assert 'monitord_page_escalations_total{policy="night"} 3.0' in metrics
        assert "monitord_page_ack_seconds_count 1.0" in metrics
        assert 'monitord_page_ack_seconds_bucket{le="1800.0"} 1.0' in metrics  # 20 min
        assert 'monitord_page_acks_total{via="api"} 1.0' in metrics


async def test_non_covered_p1_at_0200_saturday_pages_the_desk_at_0800_monday(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, "2026-11-28T02:00+01:00") as h:
        h.problem("db")  # bravo: no after-hours cover
        await h.settle()
        assert h.emu.sms_sent == []
        action, detail = h.timeline(1)[0]
        assert action == "route"
        assert detail == (
            "page later (policy desk): route 0; bravo has no after-hours cover: the desk at "
            "the next business start, Mon 2026-11-30 08:00 Europe/Prague"
        )
        await h.at("2026-11-30T07:59:59+01:00")
        assert h.emu.sms_sent == []
        await h.at("2026-11-30T08:00+01:00")
        (page,) = h.sms_to("eva")  # the desk policy
        assert "bravo/db" in page


async def test_a_deferred_page_resolved_before_morning_pages_nobody(tmp_path: Path) -> None:
    async with harness(tmp_path, "2026-11-28T02:00+01:00") as h:
        h.problem("db")
        await h.settle()
        await h.at("2026-11-28T03:00+01:00")
        h.problem("db", ok=True)
        await h.settle()
        await h.at("2026-11-30T09:00+01:00")
        assert h.emu.sms_sent == []
        assert h.timeline(1)[-1] == (
            "cancel",
            "resolved before its page was due: nobody paged",
        )


async def test_ack_expiry_repages(tmp_path: Path) -> None:
    async with harness(tmp_path, "2026-11-25T23:00+01:00", ack_expiry="30m") as h:
        h.problem("srv")
        await h.settle()
        await h.app.paging.acknowledge((1,), "jan", "cli")
        await h.settle()
        assert h.escalation(1).ack_expires_at is not None
        await h.at("2026-11-25T23:29+01:00")
        assert len(h.sms_to("jan")) == 1
        await h.at("2026-11-25T23:30+01:00")
        assert len(h.sms_to("jan")) == 2  # forgotten: paged again
        assert h.app.correlator is not None
        assert h.app.correlator.by_id[1].state == "open"  # no longer acknowledged
        actions = [a for a, _ in h.timeline(1)]
        assert actions == ["route", "page", "ack", "ack-expired", "page"]
        assert h.timeline(1)[3][1].startswith(
            "the acknowledgement by jan expired unresolved: page now (policy night)"
        )


async def test_an_ack_held_at_handover_is_reoffered(tmp_path: Path) -> None:
    # Sunday evening: jan is primary until the Monday 08:00 handover to petr... no:
    # week of 2026-11-23 is jan's; the next week (from 2026-11-30 08:00) is petr's.
    async with harness(tmp_path, "2026-11-29T22:00+01:00") as h:
        h.problem("srv")
        await h.settle()
        assert len(h.sms_to("jan")) == 1
        await h.app.paging.acknowledge((1,), "jan", "link")
        await h.settle()
        await h.at("2026-11-30T07:59+01:00")
        assert h.sms_to("petr") == []
        await h.at("2026-11-30T08:00+01:00")
        (offer,) = h.sms_to("petr")
        assert "handed over from Jan Novak" in offer  # SMS text is ASCII
        assert h.timeline(1)[-1] == (
            "handover",
            "jan's shift in support/primary ended with the incident acknowledged: "
            "re-offered to Petr Svoboda",
        )
        assert h.app.correlator is not None
        assert h.app.correlator.by_id[1].state == "open"
        await h.app.paging.acknowledge((1,), "petr", "telegram")
        await h.settle()
        assert h.escalation(1).acked_by == "petr"


async def test_a_gap_raises_an_internal_incident_and_pages_the_fallback(tmp_path: Path) -> None:
    # before the secondary layer starts there is nobody on call in it
    async with harness(tmp_path, "2026-10-28T23:00+01:00") as h:
        h.problem("srv")
        await h.settle()
        # both layers start 2026-11-02: the fallback contact (desk) is paged
        assert len(h.sms_to("desk")) >= 1
        assert h.app.correlator is not None
        internal = [i for i in h.app.correlator.by_id.values() if i.kind == "internal"]
        assert sorted(i.title for i in internal) == [
            f"monitord: nobody is on call in support/{layer}: the fallback contact is paged instead"
            for layer in ("primary", "secondary")
        ]
        # once the rotations start, the gaps close by themselves
        await h.at("2026-11-02T08:00+01:00")
        assert {i.state for i in internal} == {"resolved"}
        assert number("desk") in {to for to, _, _ in h.emu.sms_sent}


async def test_storm_is_one_summary_page(tmp_path: Path) -> None:
    async with harness(tmp_path, "2026-11-25T23:00+01:00") as h:
        for device in ("srv", "srv2", "srv3"):
            h.problem(device)
        await h.settle()
        (page,) = h.sms_to("jan")
        assert page.startswith("P1 3 incidents need you")
        assert "#1 P1 acme/srv" in page and "#3 P1 acme/srv3" in page
        assert "/ack/1-2-3~jan~" in page  # one link acknowledges them all


async def test_rate_limit_holds_pages_for_one_summary(tmp_path: Path) -> None:
    async with harness(
        tmp_path, "2026-11-25T23:00+01:00", rate_limit={"pages": 1, "per": "10m"}
    ) as h:
        h.problem("srv")
        await h.settle()
        h.problem("srv2")
        await h.settle()
        h.problem("srv3")
        await h.settle()
        assert len(h.sms_to("jan")) == 1
        assert ("held", "jan had 1 pages within 600s: this one waits for a summary page") in (
            h.timeline(2)
        )
        await h.at("2026-11-25T23:10:01+01:00")
        summary = [t for t in h.sms_to("jan") if "incidents need you" in t]
        assert len(summary) == 1 and "#2 P1" in summary[0] and "#3 P1" in summary[0]


SEVERITY_RULES = [
    {"name": "critical", "match": {"severity": ["critical"]}, "priority": "P1"},
    {"name": "warning", "priority": "P3"},
]


async def test_a_priority_rise_brings_a_deferred_page_forward(tmp_path: Path) -> None:
    # Thursday 01:00: acme's P3 (8 h reaction) is still met by the 08:00 business start,
    # so it waits for the desk; turned P1 at 01:30 it pages the night policy at once.
    async with harness(
        tmp_path,
        "2026-11-26T01:00+01:00",
        priority_rules=SEVERITY_RULES,
        routes=[{"match": {"priorities": ["P1", "P2", "P3"]}, "policy": "night"}],
    ) as h:
        h.problem("srv", status=Status.WARNING)
        await h.settle()
        assert h.escalation(1).state == "pending"
        assert h.emu.sms_sent == []
        await h.at("2026-11-26T01:30+01:00")
        h.problem("srv", status=Status.CRITICAL)
        await h.settle()
        (page,) = h.sms_to("jan")
        assert page.startswith("P1 ")
        route = h.timeline(1)[-2]
        assert route == (
            "route",
            "priority now P1: the page deferred to Thu 2026-11-26 08:00 Europe/Prague goes now; "
            "page now (policy night): route 0; out of business hours, acme has "
            "after-hours cover",
        )
        assert h.escalation(1).state == "active"
        await h.at("2026-11-26T08:00+01:00")
        assert h.sms_to("eva") == []  # the deferred desk page is gone, not sent as well


async def test_a_priority_rise_pages_what_was_ticket_only(tmp_path: Path) -> None:
    async with harness(tmp_path, "2026-11-25T23:00+01:00", priority_rules=SEVERITY_RULES) as h:
        h.problem("srv", status=Status.WARNING)  # P3: no route pages it
        await h.settle()
        assert h.timeline(1) == [("route", "ticket only: P3 matches no paging route")]
        h.problem("srv", status=Status.CRITICAL)
        await h.settle()
        assert len(h.sms_to("jan")) == 1
        assert h.timeline(1)[1][1].startswith("priority now P1: page now (policy night)")


async def test_a_resolve_reaches_whoever_was_paged_before_an_ack_expired(tmp_path: Path) -> None:
    async with harness(tmp_path, "2026-11-25T23:00+01:00", ack_expiry="30m") as h:
        h.problem("srv")
        await h.settle()
        await h.at("2026-11-25T23:05+01:00")  # step 2: petr
        await h.app.paging.acknowledge((1,), "petr", "cli")
        await h.settle()
        await h.at("2026-11-25T23:35+01:00")  # the ack lapses: a new escalation, jan again
        assert len([t for t in h.sms_to("jan") if t.startswith("P1")]) == 2
        h.problem("srv", ok=True)
        await h.settle()
        for name in ("jan", "petr"):  # petr was paged by the escalation that expired
            assert h.sms_to(name)[-1].startswith("RESOLVED P1 acme/srv"), name
        assert h.timeline(1)[-1] == ("resolve", "resolved: a resolve page to jan, petr")


async def test_a_storm_that_clears_is_one_resolve_message(tmp_path: Path) -> None:
    async with harness(tmp_path, "2026-11-25T23:00+01:00") as h:
        for device in ("srv", "srv2", "srv3"):
            h.problem(device)
        await h.settle()
        assert len(h.sms_to("jan")) == 1  # one summary page
        for device in ("srv", "srv2", "srv3"):
            h.problem(device, ok=True)
        await h.settle()
        resolved = [t for t in h.sms_to("jan") if t.startswith("RESOLVED")]
        assert resolved == [
            "RESOLVED P1 3 incidents\n#1 P1 acme/srv: CRITICAL - srv is down\n"
            "#2 P1 acme/srv2: CRITICAL - srv2 is down\n#3 P1 acme/srv3: CRITICAL - srv3 is down"
        ]
        assert h.app.engine is not None
        with h.app.engine.connect() as conn:  # each notice is recorded as sent, by SMS
            sent = conn.execute(
                select(pages.c.incident_id, pages.c.channel).where(pages.c.kind == "resolve")
            ).all()
        assert sorted(sent) == [(1, "sms"), (2, "sms"), (3, "sms")]


async def test_an_escalation_nobody_answered_is_offered_to_the_next_shift(tmp_path: Path) -> None:
    # Sunday night, jan's week: nobody acknowledges two rounds of the night policy; at the
    # Monday 08:00 handover petr, the new primary, is paged and the escalation goes on.
    async with harness(tmp_path, "2026-11-29T22:00+01:00") as h:
        h.problem("srv")
        await h.settle()
        for minute in ("05", "10", "20", "25", "30", "40"):
            await h.at(f"2026-11-29T22:{minute}+01:00")
        assert h.escalation(1).state == "exhausted"
        assert (len(h.sms_to("jan")), len(h.sms_to("petr")), len(h.sms_to("boss"))) == (2, 2, 2)
        await h.at("2026-11-30T07:59+01:00")
        assert len(h.sms_to("petr")) == 2
        await h.at("2026-11-30T08:00+01:00")
        offer = h.sms_to("petr")[-1]
        assert "handed over from Jan Novak" in offer and len(h.sms_to("petr")) == 3
        assert h.timeline(1)[-1] == (
            "handover",
            "nobody acknowledged before the shift in support/primary ended: "
            "offered to Petr Svoboda",
        )
        assert h.sms_to("eva") == []
        await h.at("2026-11-30T08:05+01:00")  # then the new secondary, eva
        assert len(h.sms_to("eva")) == 1
        await h.app.paging.acknowledge((1,), "petr", "api")
        await h.settle()
        assert h.escalation(1).state == "acked"


async def test_an_idle_escalation_job_runs_once_a_tick(tmp_path: Path) -> None:
    """The job wakes for its tick (or for work), never for its own outcome: it once
    woke itself after every run, a busy loop of transactions that doubled the CPU of
    an idle daemon."""
    config = fast_timing(tmp_path)
    config["paging"] = {"tick": "0.5s"}
    app = App(config_from_dict(config))
    runs = 0
    await app.start()
    try:
        advance = app.paging.escalator.advance

        def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal runs
            runs += 1
            return advance(*args, **kwargs)

        app.paging.escalator.advance = counted  # type: ignore[method-assign]
        await asyncio.sleep(2.2)
    finally:
        await app.stop()
    assert 2 <= runs <= 8  # about one a tick (0.5 s), not hundreds
