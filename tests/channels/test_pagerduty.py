"""PagerDuty Events v2: event bodies, 202 handling, 400 invalid event, 429, dedup lifecycle."""

from __future__ import annotations

import aiohttp
import pytest

from alerts.channels.base import RateLimited
from monitord.errors import DeliveryError, Reason
from tests.channels import emulators as e
from tests.channels.cases import build, page
from tests.channels.emulators import HttpEmulators


async def test_trigger_shape(emu: HttpEmulators, session: aiohttp.ClientSession) -> None:
    result = await build("pagerduty", session, emu.base_url).send(page("pagerduty"))
    assert result.remote_id == "monitord-incident-17"
    (req,) = emu.of("pagerduty")
    assert req.path == "/pagerduty/v2/enqueue"
    assert "Authorization" not in req.headers
    assert req.json == {
        "routing_key": e.PAGERDUTY_KEY,
        "event_action": "trigger",
        "dedup_key": "monitord-incident-17",
        "payload": {
            "summary": "srv-db01 (Customer A) DOWN",
            "source": "monitord",
            "severity": "critical",
            "custom_details": {"body": "ping loss 100% since 02:14 UTC", "priority": "P1"},
        },
        "client": "monitord",
        "links": [{"href": "https://monitor.msp.example/ack/7f3a9c41", "text": "Acknowledge"}],
    }


async def test_lifecycle(emu: HttpEmulators, session: aiohttp.ClientSession) -> None:
    channel = build("pagerduty", session, emu.base_url)
    await channel.send(page("pagerduty", priority="P3"))
    assert emu.pd_alerts == {"monitord-incident-17": "triggered"}
    await channel.send(page("pagerduty", "acknowledge"))
    assert emu.pd_alerts == {"monitord-incident-17": "acknowledged"}
    await channel.send(page("pagerduty", "resolve"))
    assert emu.pd_alerts == {}
    ack, resolve = emu.of("pagerduty")[1:]
    assert ack.json == {
        "routing_key": e.PAGERDUTY_KEY,
        "event_action": "acknowledge",
        "dedup_key": "monitord-incident-17",
    }
    assert resolve.json["event_action"] == "resolve" and "payload" not in resolve.json
    assert emu.of("pagerduty")[0].json["payload"]["severity"] == "warning"


async def test_long_keys_hashed_stably(emu: HttpEmulators, session: aiohttp.ClientSession) -> None:
    channel = build("pagerduty", session, emu.base_url)
    await channel.send(page("pagerduty", dedup_key="k" * 300))
    await channel.send(page("pagerduty", "resolve", dedup_key="k" * 300))
    first, second = (r.json["dedup_key"] for r in emu.of("pagerduty"))
    assert first == second and len(first) <= 255
    assert emu.pd_alerts == {}


async def test_400_invalid_event_is_permanent(
    emu: HttpEmulators, session: aiohttp.ClientSession
) -> None:
    channel = build("pagerduty", session, emu.base_url, routing_key="R0SHORT")
    with pytest.raises(DeliveryError, match="Length of 'routing_key' is incorrect") as info:
        await channel.send(page("pagerduty"))
    assert (info.value.permanent, info.value.reason) == (True, Reason.CLIENT_ERROR)
    assert "R0SHORT" not in str(info.value)


async def test_429_and_500_retryable(emu: HttpEmulators, session: aiohttp.ClientSession) -> None:
    channel = build("pagerduty", session, emu.base_url)
    emu.modes["pagerduty"] = "rate_limited"
    with pytest.raises(RateLimited) as limited:
        await channel.send(page("pagerduty"))
    assert limited.value.retry_after is None
    emu.modes["pagerduty"] = "retryable"
    with pytest.raises(DeliveryError) as info:
        await channel.send(page("pagerduty"))
    assert (info.value.permanent, info.value.reason) == (False, Reason.SERVER_ERROR)
