"""Generic webhook: JSON body signed with HMAC-SHA256 over "timestamp.body" (docs/ingest.md)."""

from __future__ import annotations

import hashlib
import hmac
import json

import aiohttp
import pytest

from alerts.channels.base import RateLimited
from alerts.channels.webhook import signature
from monitord.errors import DeliveryError, Reason
from tests.channels import emulators as e
from tests.channels.cases import build, page
from tests.channels.emulators import HttpEmulators


async def test_signed_request(emu: HttpEmulators, session: aiohttp.ClientSession) -> None:
    await build("webhook", session, emu.base_url).send(page("webhook"))
    (req,) = emu.of("webhook")
    assert req.headers["Content-Type"] == "application/json"
    ts = req.headers["X-Monitord-Timestamp"]
    assert ts == "1700000000"  # FakeClock
    mac = hmac.new(e.WEBHOOK_SECRET.encode(), f"{ts}.".encode() + req.body, hashlib.sha256)
    assert req.headers["X-Monitord-Signature"] == "sha256=" + mac.hexdigest()
    assert json.loads(req.body) == {
        "dedup_key": "monitord-incident-17",
        "action": "trigger",
        "recipient": "noc",
        "title": "srv-db01 (Customer A) DOWN",
        "body": "ping loss 100% since 02:14 UTC",
        "priority": "P1",
        "ack_url": "https://monitor.msp.example/ack/7f3a9c41",
        "sent_at": 1700000000,
    }


def test_signature_known_value() -> None:
    expected = hmac.new(b"k" * 16, b"1.{}", hashlib.sha256).hexdigest()
    assert signature("k" * 16, "1", b"{}") == "sha256=" + expected


async def test_statuses(emu: HttpEmulators, session: aiohttp.ClientSession) -> None:
    channel = build("webhook", session, emu.base_url)
    emu.modes["webhook"] = "rate_limited"
    with pytest.raises(RateLimited) as limited:
        await channel.send(page("webhook"))
    assert limited.value.retry_after == 3.0
    emu.modes["webhook"] = "ok"
    wrong = build("webhook", session, emu.base_url, secret="another-secret-of-16")
    with pytest.raises(DeliveryError) as info:
        await wrong.send(page("webhook"))
    assert (info.value.permanent, info.value.reason) == (True, Reason.AUTH)


async def test_connection_refused_is_retryable(session: aiohttp.ClientSession) -> None:
    from tests.conftest import free_port

    channel = build("webhook", session, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(DeliveryError) as info:
        await channel.send(page("webhook"))
    assert (info.value.permanent, info.value.reason) == (False, Reason.NETWORK)
