"""ntfy: JSON publish to the root URL, actions, priorities, error JSON."""

from __future__ import annotations

import aiohttp
import pytest
from pydantic import ValidationError

from alerts.channels.base import RateLimited
from alerts.channels.ntfy import NtfyConfig
from monitord.errors import DeliveryError, Reason
from tests.channels import emulators as e
from tests.channels.cases import build, page
from tests.channels.emulators import HttpEmulators


async def test_trigger_shape(emu: HttpEmulators, session: aiohttp.ClientSession) -> None:
    result = await build("ntfy", session, emu.base_url).send(page("ntfy"))
    assert result.remote_id == "hwQ2YpKdmg"
    (req,) = emu.of("ntfy")
    assert (req.method, req.path) == ("POST", "/ntfy/")
    assert req.headers["Authorization"] == f"Bearer {e.NTFY_TOKEN}"
    assert req.json == {
        "topic": "oncall-jan",
        "title": "P1 srv-db01 (Customer A) DOWN",
        "message": "ping loss 100% since 02:14 UTC",
        "priority": 5,
        "tags": ["rotating_light"],
        "click": "https://monitor.msp.example/ack/7f3a9c41",
        "actions": [
            {
                "action": "http",
                "label": "Acknowledge",
                "url": "https://monitor.msp.example/ack/7f3a9c41",
                "method": "POST",
                "clear": True,
            }
        ],
    }


async def test_resolve_shape(emu: HttpEmulators, session: aiohttp.ClientSession) -> None:
    channel = build("ntfy", session, emu.base_url, click_url="https://helpdesk.example/")
    await channel.send(page("ntfy", "resolve", ack_url=None, priority="P4"))
    (req,) = emu.of("ntfy")
    assert req.json["title"].startswith("RESOLVED P4")
    assert req.json["tags"] == ["white_check_mark"]
    assert req.json["priority"] == 3
    assert req.json["click"] == "https://helpdesk.example/"
    assert "actions" not in req.json


async def test_basic_auth(emu: HttpEmulators, session: aiohttp.ClientSession) -> None:
    channel = build("ntfy", session, emu.base_url, token=None, username="jan", password="pw-123")
    with pytest.raises(DeliveryError, match="40101 unauthorized") as info:
        await channel.send(page("ntfy"))
    assert (info.value.permanent, info.value.reason) == (True, Reason.AUTH)
    assert emu.of("ntfy")[0].headers["Authorization"].startswith("Basic ")


async def test_error_json(emu: HttpEmulators, session: aiohttp.ClientSession) -> None:
    channel = build("ntfy", session, emu.base_url)
    emu.modes["ntfy"] = "rate_limited"
    with pytest.raises(RateLimited, match="42901"):
        await channel.send(page("ntfy"))
    emu.modes["ntfy"] = "permanent"
    with pytest.raises(DeliveryError, match="40007 invalid priority") as info:
        await channel.send(page("ntfy"))
    assert (info.value.permanent, info.value.reason) == (True, Reason.CLIENT_ERROR)


def test_config_auth_rules() -> None:
    with pytest.raises(ValidationError):
        NtfyConfig(server="https://n.example", token="t", username="u", password="p")
    with pytest.raises(ValidationError):
        NtfyConfig(server="https://n.example", username="u")
    with pytest.raises(ValidationError):
        NtfyConfig(server="n.example")
