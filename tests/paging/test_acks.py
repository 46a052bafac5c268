"""Acknowledging from the phone: signed links over real HTTP (GET never acks), the
Telegram button and an "ack" reply through getUpdates, the API and `monitord ack`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import generate_latest
from sqlalchemy import select

from alerts.paging.links import sign
from monitord.cli import main
from monitord.storage.schema import page_acks
from tests.channels import emulators as e
from tests.paging.harness import ACK_SECRET, Harness, at, harness
from tests.test_app import wait_for


def link_of(sms: str) -> str:
    return next(line for line in sms.splitlines() if line.startswith("Ack: ")).removeprefix("Ack: ")


def acks(h: Harness) -> list[tuple[int, str, str]]:
    assert h.app.engine is not None
    with h.app.engine.connect() as conn:
        rows = conn.execute(select(page_acks).order_by(page_acks.c.id)).all()
    return [(r.incident_id, r.by, r.via) for r in rows]


async def test_link_get_shows_post_acknowledges(tmp_path: Path) -> None:
    async with harness(tmp_path, "2026-11-25T23:00+01:00", serve_http=True) as h:
        h.problem("srv")
        await h.settle()
        url = link_of(h.sms_to("jan")[0])
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as resp:  # a link previewer, or the engineer looking
                page = await resp.text()
                assert resp.status == 200
            assert "#1 P1 acme/srv" in page and '<form method="post">' in page
            assert h.escalation(1).state == "active"  # a GET never acknowledges
            async with http.post(url) as resp:
                assert resp.status == 200
                assert "#1 acknowledged by jan" in await resp.text()
        assert h.escalation(1).state == "acked"
        assert acks(h) == [(1, "jan", "link")]
        await h.at("2026-11-25T23:30+01:00")
        assert h.sms_to("petr") == []  # the escalation stopped


async def test_forged_and_expired_links_are_refused_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness(tmp_path, "2026-11-25T23:00+01:00", serve_http=True) as h:
        h.problem("srv")
        await h.settle()
        good = link_of(h.sms_to("jan")[0])
        forged = good[:-1] + ("0" if good[-1] != "0" else "1")
        other = good.replace("/ack/1~jan~", "/ack/2~jan~")  # another incident, same signature
        expired = (
            good.rsplit("/", 1)[0]
            + "/"
            + sign(ACK_SECRET, (1,), "jan", at("2026-11-25T22:59+01:00"))
        )
        caplog.set_level(logging.WARNING)
        async with aiohttp.ClientSession() as http:
            for url in (forged, other, expired, good.rsplit("/", 1)[0] + "/garbage"):
                for method in ("GET", "POST"):
                    async with http.request(method, url) as resp:
                        assert resp.status == 403, (method, url)
        assert h.escalation(1).state == "active"
        refused = [r.getMessage() for r in caplog.records if "ack link refused" in r.getMessage()]
        assert len(refused) == 8
        assert sum("(forged)" in m for m in refused) == 4
        assert sum("(expired)" in m for m in refused) == 2
        metrics = generate_latest(h.app.registry).decode()
        assert 'monitord_ack_link_refusals_total{reason="forged"} 4.0' in metrics


async def test_telegram_button_and_reply(tmp_path: Path, db_url: str) -> None:
    async with harness(tmp_path, "2026-11-25T23:00+01:00", db_url=db_url) as h:
        h.emu.modes["odorik"] = "permanent"  # SMS refused: jan's next channel is Telegram
        h.problem("srv")
        h.problem("srv2")
        await h.settle()
        sent = [r.json for r in h.emu.of("telegram") if r.path.endswith("/sendMessage")]
        assert len(sent) == 1 and sent[0]["text"].startswith("<b>P1</b> 2 incidents need you")
        data = sent[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        chat = int(e.TELEGRAM_CHATS[0])

        # someone not on the roster presses it: refused
        h.emu.tg_push(press(data, user_id=555))
        # jan presses it: both incidents of the summary are acknowledged
        h.emu.tg_push(press(data, user_id=chat))
        await wait_for(lambda: len(acks(h)) == 2)
        assert acks(h) == [(1, "jan", "telegram"), (2, "jan", "telegram")]
        # the ack is committed first; answering the press and removing the button follow it

        def calls() -> list[str]:
            return [r.path.rsplit("/", 1)[-1] for r in h.emu.of("telegram")]

        await wait_for(lambda: "editMessageReplyMarkup" in calls())
        assert calls().count("answerCallbackQuery") == 2

        # a reply "ack" to a page acknowledges what it paged
        h.problem("srv3")
        await h.settle()
        page = [r for r in h.emu.of("telegram") if r.path.endswith("/sendMessage")][-1]
        message_id = 42 + 1  # the emulator numbers messages from 42
        assert "srv3" in page.json["text"]
        h.emu.tg_push(
            {
                "message": {
                    "message_id": 900,
                    "from": {"id": chat, "is_bot": False, "first_name": "Jan"},
                    "chat": {"id": chat, "type": "private"},
                    "text": "ACK",
                    "reply_to_message": {"message_id": message_id},
                }
            }
        )
        await wait_for(lambda: len(acks(h)) == 3)
        assert h.app.correlator is not None
        # (#3 is monitord's own incident: the SMS channel keeps failing)
        (srv3,) = [i.id for i in h.app.correlator.by_id.values() if i.device_id == "acme/srv3"]
        assert acks(h)[-1] == (srv3, "jan", "reply")
        reply = {"chat_id": chat, "text": f"Acknowledged #{srv3}"}
        await wait_for(
            lambda: (
                [r.json for r in h.emu.of("telegram") if r.path.endswith("/sendMessage")][-1]
                == reply
            )
        )


def press(data: str, user_id: int) -> dict[str, Any]:
    return {
        "callback_query": {
            "id": f"cb-{user_id}",
            "chat_instance": "-87",
            "from": {"id": user_id, "is_bot": False, "first_name": "X", "username": "x"},
            "message": {"message_id": 42, "chat": {"id": user_id, "type": "private"}},
            "data": data,
        }
    }


async def test_api_and_cli_ack_record_how(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with harness(tmp_path, "2026-11-25T23:00+01:00", serve_http=True) as h:
        h.problem("srv")
        h.problem("srv2")
        await h.settle()
        await h.settle()
        assert await asyncio.to_thread(main, ["escalations", "--url", h.url]) == 0
        listing = capsys.readouterr().out
        assert listing.startswith("open escalations: 2\n  #1 active policy night step 2 round 1")
        assert "  channel sms: ok" in listing.splitlines()
        argv = ["ack", "1", "--by", "petr", "--url", h.url]
        assert await asyncio.to_thread(main, argv) == 0
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{h.url}/api/v1/incidents/2/ack", json={"by": "eva"}) as resp,
        ):
            assert resp.status == 200
        assert acks(h) == [(1, "petr", "cli"), (2, "eva", "api")]
        assert "#1 acknowledged by petr" in capsys.readouterr().out


async def test_telegram_webhook_checks_its_secret(tmp_path: Path) -> None:
    secret = "hook-secret_0123456789"
    async with harness(
        tmp_path,
        "2026-11-25T23:00+01:00",
        serve_http=True,
        telegram={"updates": "webhook", "webhook_secret": secret},
    ) as h:
        h.emu.modes["odorik"] = "permanent"
        h.problem("srv")
        await h.settle()
        (sent,) = [r.json for r in h.emu.of("telegram") if r.path.endswith("/sendMessage")]
        data = sent["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        update = {"update_id": 7, **press(data, user_id=int(e.TELEGRAM_CHATS[0]))}
        hook = f"{h.url}/api/v1/paging/telegram/telegram"
        async with aiohttp.ClientSession() as http:
            wrong = {"X-Telegram-Bot-Api-Secret-Token": "guess"}
            async with http.post(hook, json=update, headers=wrong) as resp:
                assert resp.status == 403
            assert acks(h) == []
            right = {"X-Telegram-Bot-Api-Secret-Token": secret}
            async with http.post(hook, json=update, headers=right) as resp:
                assert resp.status == 200
                assert (await resp.json())["result"] == "acknowledged [1] for jan"
            async with http.post(hook, json=update, headers=right) as resp:  # redelivered
                assert (await resp.json())["result"] == "duplicate"
        assert acks(h) == [(1, "jan", "telegram")]
        assert not [r for r in h.emu.of("telegram") if r.path.endswith("/getUpdates")]


async def test_ntfy_acknowledge_action_posts_the_link(tmp_path: Path) -> None:
    async with harness(
        tmp_path, "2026-11-25T23:00+01:00", serve_http=True, jan_channels=["ntfy", "sms"]
    ) as h:
        h.problem("srv")
        await h.settle()
        (published,) = [r.json for r in h.emu.of("ntfy")]
        assert published["topic"] == "oncall-jan" and published["priority"] == 5
        (action,) = published["actions"]
        assert (action["action"], action["method"], action["label"]) == (
            "http",
            "POST",
            "Acknowledge",
        )
        async with aiohttp.ClientSession() as http, http.post(action["url"]) as resp:
            assert resp.status == 200  # what the phone does when the button is tapped
        assert acks(h) == [(1, "jan", "link")]
        assert h.sms_to("jan") == []  # ntfy came first and delivered


async def test_one_link_acknowledges_a_storm_larger_than_the_sms_lists(tmp_path: Path) -> None:
    async with harness(
        tmp_path,
        "2026-11-25T23:00+01:00",
        serve_http=True,
        priority_rules=[{"name": "all", "priority": "P1"}],
        rate_limit={"pages": 1, "per": "30m"},
    ) as h:
        # a long night: one fault a minute (no storm), the rate limit holding all but one
        for i in range(26):
            h.problem("srv", category=f"fault{i:02}")
            await h.at(h.clock.time() + 60)
        await h.at("2026-11-25T23:31:01+01:00")  # the first page (23:01) leaves the window
        (page,) = [t for t in h.sms_to("jan") if "incidents need you" in t]
        # every incident once (#1's second round included); the SMS cuts the list, not the link
        assert page.startswith("P1 26 incidents need you") and "...\nAck: " in page
        link = link_of(page)
        assert "/ack/s1." in link  # names the summary: 26 ids do not fit in an SMS
        async with aiohttp.ClientSession() as http:
            async with http.get(link) as resp:
                assert resp.status == 200
                assert (await resp.text()).count("<li>") == 26
            async with http.post(link) as resp:
                assert resp.status == 200
        await h.settle()
        assert sorted(i for i, _, _ in acks(h)) == list(range(1, 27))
        assert {(by, via) for _, by, via in acks(h)} == {("jan", "link")}
