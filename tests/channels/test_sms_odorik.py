"""Odorik SMS: form fields, and the plain-text verdicts that come with HTTP 200."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
import pytest

from alerts.channels.sms_odorik import odorik_number, parse_reply, sms_text
from monitord.errors import DeliveryError, Reason
from tests.channels import emulators as e
from tests.channels.cases import build, page
from tests.channels.emulators import HttpEmulators


async def test_request_shape(emu: HttpEmulators, session: aiohttp.ClientSession) -> None:
    result = await build("sms_odorik", session, emu.base_url).send(page("sms_odorik"))
    assert result.detail == "successfully_sent 193.32"
    (req,) = emu.of("odorik")
    assert req.path == "/odorik/api/v1/sms"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert req.form == {
        "user": e.ODORIK_USER,
        "password": e.ODORIK_PASSWORD,
        "user_agent": "monitord",
        "recipient": "00420777123456",
        "sender": "5517",
        "message": "P1 srv-db01 (Customer A) DOWN\nping loss 100% since 02:14 UTC\n"
        "Ack: https://monitor.msp.example/ack/7f3a9c41",
    }


@pytest.mark.parametrize(
    ("body", "permanent", "reason"),
    [
        ("error authentication_failed", True, Reason.AUTH),
        ("error authentication_required", True, Reason.AUTH),
        ("error low_balance", True, Reason.CLIENT_ERROR),
        ("error forbidden_sender", True, Reason.CLIENT_ERROR),
        ("error unsupported_recipient", True, Reason.CLIENT_ERROR),
        ("error missing_argument recipient,message", True, Reason.CLIENT_ERROR),
        ("error empty_message", True, Reason.CLIENT_ERROR),
        ("error gateway_failed", False, Reason.SERVER_ERROR),
        ("<html>maintenance</html>", False, Reason.SERVER_ERROR),
        ("", False, Reason.SERVER_ERROR),
    ],
)
def test_error_bodies(body: str, permanent: bool, reason: Reason) -> None:
    with pytest.raises(DeliveryError) as info:
        parse_reply(body)
    assert (info.value.permanent, info.value.reason) == (permanent, reason)


@pytest.mark.parametrize("body", ["successfully_sent 193.32", "successfully_enqueued\n"])
def test_success_bodies(body: str) -> None:
    assert parse_reply(body).channel == "sms_odorik"


async def test_http_200_error_text_is_a_failure(
    emu: HttpEmulators, session: aiohttp.ClientSession
) -> None:
    channel = build("sms_odorik", session, emu.base_url, sender="+420123456789")
    with pytest.raises(DeliveryError, match="forbidden_sender") as info:
        await channel.send(page("sms_odorik"))
    assert info.value.permanent


async def test_wrong_password_is_permanent_auth(
    emu: HttpEmulators, session: aiohttp.ClientSession
) -> None:
    channel = build("sms_odorik", session, emu.base_url, password="not-the-password")
    with pytest.raises(DeliveryError) as info:
        await channel.send(page("sms_odorik"))
    assert (info.value.permanent, info.value.reason) == (True, Reason.AUTH)
    assert "not-the-password" not in str(info.value)


async def test_http_error_status(emu: HttpEmulators, session: aiohttp.ClientSession) -> None:
    emu.modes["odorik"] = "rate_limited"
    with pytest.raises(DeliveryError) as info:
        await build("sms_odorik", session, emu.base_url).send(page("sms_odorik"))
    assert (info.value.permanent, info.value.reason) == (False, Reason.RATE_LIMITED)


def test_numbers_and_text() -> None:
    assert odorik_number("+420 777-123 456") == "00420777123456"
    assert odorik_number("00420777123456") == "00420777123456"
    with pytest.raises(DeliveryError):
        odorik_number("777 123 456")
    p = page("sms_odorik", title="Žluťoučký kůň " + "x" * 900, action="resolve")
    text = sms_text(p, ascii_only=True)
    assert text.startswith("RESOLVED P1 Zlutoucky kun xx")
    assert len(text) == 765
    assert "Ack:" not in sms_text(page("sms_odorik", action="resolve"), ascii_only=True)


def test_a_long_body_is_cut_but_never_the_ack_link() -> None:
    link = "https://monitor.msp.example/ack/s7.1764972000~jan~1765000000~0123456789abcdef0123"
    p = page("sms_odorik", body="\n".join(f"#{i} P1 srv-{i:03} DOWN" for i in range(60)))
    p = replace(p, ack_url=link)
    text = sms_text(p, ascii_only=True)
    assert len(text) == 765
    assert text.endswith(f"...\nAck: {link}")
    assert text.startswith("P1 srv-db01 (Customer A) DOWN\n#0 P1 srv-000 DOWN")
