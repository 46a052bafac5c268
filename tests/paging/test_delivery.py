"""Never lose a page: a failing channel falls back to the engineer's next one and
raises monitord's own incident; nothing is parked; an attempt interrupted mid-request
is found sent in the SMS history instead of being sent twice."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import yaml
from prometheus_client import generate_latest
from sqlalchemy import select

from monitord.storage.schema import outbox, pages
from tests.channels import emulators as e
from tests.paging.harness import Harness, harness, number
from tests.test_app import wait_for


def internal_titles(h: Harness, state: str | None = None) -> list[str]:
    assert h.app.correlator is not None
    return sorted(
        i.title
        for i in h.app.correlator.by_id.values()
        if i.kind == "internal" and (state is None or i.state == state)
    )


def telegram_pages(h: Harness) -> list[str]:
    return [
        r.json["text"]
        for r in h.emu.of("telegram")
        if (r.path.endswith("/sendMessage") and r.json["chat_id"] == e.TELEGRAM_CHATS[0])
        or (r.path.endswith("/sendMessage") and str(r.json["chat_id"]) == e.TELEGRAM_CHATS[0])
    ]


async def test_sms_outage_falls_back_to_telegram_and_raises_an_internal_incident(
    tmp_path: Path, db_url: str
) -> None:
    async with harness(tmp_path, "2026-11-25T23:00+01:00", db_url=db_url) as h:
        h.emu.modes["odorik"] = "retryable"  # error gateway_failed
        h.problem("srv")
        await h.settle()
        assert telegram_pages(h) == []  # one failure: retried on SMS first
        await h.at(h.clock.time() + 2)  # the outbox's first backoff
        (page,) = telegram_pages(h)  # the second SMS failure: the next channel
        assert page.startswith("<b>P1</b> acme/srv")
        to_jan = [r for r in h.emu.of("odorik") if r.form and r.form["recipient"] == number("jan")]
        assert len(to_jan) == 2
        assert internal_titles(h) == [
            "monitord: paging channel sms keeps failing: odorik sms: gateway_failed"
        ]
        metrics = generate_latest(h.app.registry).decode()
        assert 'monitord_pages_total{channel="sms",result="fallback"} 1.0' in metrics
        assert 'monitord_pages_total{channel="telegram",result="sent"} 1.0' in metrics

        h.emu.modes["odorik"] = "ok"  # the gateway is back: the next page goes by SMS
        h.problem("srv2")
        await h.at(h.clock.time() + 60)
        assert any("acme/srv2" in t for t in h.sms_to("jan"))
        await h.settle()
        assert internal_titles(h, "open") == []  # cleared by the first SMS through


async def test_every_channel_down_keeps_the_page_until_one_is_back(tmp_path: Path) -> None:
    async with harness(tmp_path, "2026-11-25T23:00+01:00") as h:
        for service in ("odorik", "telegram"):
            h.emu.modes[service] = "retryable"
        h.smtp.mode = "retryable"
        h.problem("srv")
        for _ in range(6):
            await h.at(h.clock.time() + 70)  # past the growing backoff, still before step 2
        assert h.sms_to("jan") == [] and h.smtp.messages == []
        assert h.app.engine is not None
        with h.app.engine.connect() as conn:
            row = conn.execute(select(outbox).where(outbox.c.target == "engineer:jan")).first()
        assert row is not None and not row.parked and row.delivered_at is None
        h.emu.modes["odorik"] = "ok"
        await h.at(h.clock.time() + 700)
        jan = h.sms_to("jan")
        first = [t for t in jan if "acme/srv" in t and "Ack:" in t]
        assert len(first) >= 1  # delivered once the gateway answered
        with h.app.engine.connect() as conn:
            sent = conn.execute(select(pages).where(pages.c.recipient.like("jan %"))).all()
        assert len({r.outbox_id for r in sent}) == len(sent)  # no page recorded twice


async def test_an_interrupted_sms_found_sent_is_not_sent_again(tmp_path: Path) -> None:
    async with harness(tmp_path, "2026-11-25T23:00+01:00") as h:
        h.emu.modes["odorik"] = "slow"  # sent at once, answered after 3 s
        h.problem("srv")
        await h.app.flush()
        await h.app.paging.advance()
        delivery = asyncio.create_task(h.app.deliver_outbox())
        await wait_for(lambda: h.emu.sms_sent)
        delivery.cancel()  # the daemon dies while waiting for Odorik's answer
        await asyncio.gather(delivery, return_exceptions=True)
        h.emu.modes["odorik"] = "ok"
        await h.at(h.clock.time() + 5)
        assert len(h.sms_to("jan")) == 1  # found in the SMS history, not resent
        history = [r for r in h.emu.of("odorik") if r.path.endswith("/sms.json")]
        assert len(history) == 1
        assert h.app.engine is not None
        with h.app.engine.connect() as conn:
            (row,) = conn.execute(select(pages)).all()
        assert (row.channel, row.kind) == ("sms", "trigger")
        metrics = generate_latest(h.app.registry).decode()
        assert 'monitord_pages_total{channel="sms",result="recovered"} 1.0' in metrics


async def test_a_reload_rebuilds_changed_channels_and_their_pollers(tmp_path: Path) -> None:
    async with harness(tmp_path, "2026-11-25T23:00+01:00") as h:
        paging = h.app.paging
        sms, pollers = paging.channels["sms"], list(paging._pollers)
        assert pollers and not any(t.done() for t in pollers)  # Telegram's getUpdates
        doc = copy.deepcopy(h.doc)
        (defn,) = [c for c in doc["paging"]["channels"] if c["name"] == "sms"]
        defn["sender"] = "00420789123456"
        path = tmp_path / "reloaded.yaml"
        path.write_text(yaml.safe_dump(doc))

        await h.app.reload(path)
        assert (
            paging.channels["sms"] is not sms and paging.defs == h.app.loaded.config.paging.channels
        )
        assert all(t.done() for t in pollers)  # the old channels' pollers stopped
        assert paging._pollers and not any(t.done() for t in paging._pollers)
        h.problem("srv")
        await h.settle()
        senders = {
            r.form["sender"] for r in h.emu.of("odorik") if r.path.endswith("/sms") and r.form
        }
        assert senders == {"00420789123456"} and h.sms_to("jan")

        rebuilt = paging.channels["sms"]
        await h.app.reload(path)  # nothing changed: nothing rebuilt
        assert paging.channels["sms"] is rebuilt
