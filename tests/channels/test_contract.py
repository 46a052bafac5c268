"""Every registered paging channel honours the one Channel contract, against its emulator."""

from __future__ import annotations

import inspect
import logging
import pkgutil
import traceback
from collections.abc import Iterator

import aiohttp
import pytest

import alerts.channels
from alerts.channels import REGISTRY
from alerts.channels.apprise_urls import AppriseChannel
from alerts.channels.base import Channel, ChannelConfig, DeliveryResult, external_key, redact
from alerts.channels.email import EmailChannel
from alerts.channels.ntfy import NtfyChannel
from alerts.channels.pagerduty import PagerDutyChannel
from alerts.channels.sms_odorik import OdorikSmsChannel
from alerts.channels.telegram import TelegramChannel
from alerts.channels.webhook import WebhookChannel
from monitord.errors import DeliveryError, Reason
from tests.channels.cases import CASES, PAGING_KINDS, apprise_url, build, channel_class, page
from tests.channels.emulators import SECRETS, HttpEmulators, SmtpEmulator


def test_every_module_is_registered() -> None:
    modules = {m.name for m in pkgutil.iter_modules(alerts.channels.__path__) if m.name != "base"}
    registered = {path.split(".")[2] for path in REGISTRY.values()}
    assert modules == registered


@pytest.mark.parametrize("kind", PAGING_KINDS)
def test_has_config_example_and_emulator_case(kind: str) -> None:
    cls = channel_class(kind)
    assert cls.kind == kind
    assert inspect.iscoroutinefunction(cls.send)
    assert issubclass(cls.Config, ChannelConfig)
    assert cls.Config.EXAMPLE, f"{kind} has no config example"
    config = cls.Config.model_validate(cls.Config.EXAMPLE)
    for secret in _secret_values(cls.Config.EXAMPLE):
        assert secret not in repr(config) and secret not in str(config)
    assert kind in CASES


def _secret_values(example: object) -> Iterator[str]:
    assert isinstance(example, dict)
    for key in ("password", "token", "routing_key", "secret"):
        if key in example:
            yield str(example[key])


def _set_mode(kind: str, mode: str, emu: HttpEmulators, smtp: SmtpEmulator) -> None:
    service = CASES[kind].service
    if service == "smtp":
        smtp.mode = mode
    else:
        emu.modes[service] = mode


@pytest.mark.parametrize("kind", PAGING_KINDS)
@pytest.mark.parametrize("action", ["trigger", "acknowledge", "resolve"])
async def test_send_success(
    kind: str,
    action: str,
    emu: HttpEmulators,
    smtp: SmtpEmulator,
    session: aiohttp.ClientSession,
) -> None:
    channel = build(kind, session, emu.base_url, smtp.port)
    result = await channel.send(page(kind, action))
    assert isinstance(result, DeliveryResult)
    assert result.channel == kind
    delivered = len(smtp.messages) if kind == "email" else len(emu.of(CASES[kind].service))
    assert delivered == 1


@pytest.mark.parametrize("kind", PAGING_KINDS)
@pytest.mark.parametrize(
    ("mode", "permanent"), [("permanent", True), ("retryable", False), ("hang", False)]
)
async def test_failures_are_classified(
    kind: str,
    mode: str,
    permanent: bool,
    emu: HttpEmulators,
    smtp: SmtpEmulator,
    session: aiohttp.ClientSession,
) -> None:
    _set_mode(kind, mode, emu, smtp)
    channel = build(kind, session, emu.base_url, smtp.port, timeout=0.3)
    with pytest.raises(DeliveryError) as info:
        await channel.send(page(kind))
    assert info.value.permanent is (permanent and CASES[kind].classifies)
    if mode == "hang":
        assert info.value.reason is Reason.TIMEOUT


@pytest.mark.parametrize("kind", PAGING_KINDS)
async def test_no_secret_in_errors_or_logs(
    kind: str,
    emu: HttpEmulators,
    smtp: SmtpEmulator,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    for mode in ("ok", "permanent", "retryable", "rate_limited", "hang"):
        _set_mode(kind, mode, emu, smtp)
        channel = build(kind, session, emu.base_url, smtp.port, timeout=0.3)
        texts.append(repr(channel.config))
        try:
            result = await channel.send(page(kind))
            texts.append(repr(result))
        except DeliveryError as exc:
            texts.append("".join(traceback.format_exception(exc)))
            texts.append(repr(exc))
    # wrong credentials: the service's own authentication error
    _set_mode(kind, "ok", emu, smtp)
    wrong = {
        "sms_odorik": {"password": "x" * 20},
        "telegram": {"token": "999:wrong-token"},
        "pagerduty": {"routing_key": "short"},
        "ntfy": {"token": "tk_wrong"},
        "webhook": {"secret": "w" * 20},
        "email": {"password": "wrong-password"},
        "apprise": {"url": apprise_url(emu.base_url, "wrong-apprise-pw")},
    }[kind]
    channel = build(kind, session, emu.base_url, smtp.port, **wrong)
    with pytest.raises(DeliveryError) as info:
        await channel.send(page(kind))
    assert info.value.permanent is CASES[kind].classifies
    texts.append("".join(traceback.format_exception(info.value)))
    logged = caplog.text + "\n".join(texts)
    for secret in (*SECRETS, "wrong-apprise-pw", *wrong.values()):
        assert secret not in logged


def _conforms(
    z: AppriseChannel,
    a: OdorikSmsChannel,
    b: TelegramChannel,
    c: PagerDutyChannel,
    d: NtfyChannel,
    e: WebhookChannel,
    f: EmailChannel,
) -> list[Channel]:
    """Never called: mypy --strict checks that every class satisfies the Channel protocol."""
    return [z, a, b, c, d, e, f]


def test_helpers() -> None:
    assert redact("a tok b tok", ["tok", ""]) == "a <redacted> b <redacted>"
    assert external_key("short", 10) == "short"
    long = external_key("x" * 300, 255)
    assert long == external_key("x" * 300, 255) and len(long) == 28
