"""One emulator case per registered channel: its config against the emulator and a recipient."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from alerts.channels import REGISTRY
from alerts.channels.base import Channel, Page
from monitord.clock import FakeClock
from tests.channels import emulators as e

PAGING_KINDS = sorted(k for k in REGISTRY if k != "console")  # console is the outbox Deliverer


@dataclass(frozen=True)
class Case:
    service: str  # emulator mode key ("smtp" for the SMTP server)
    recipient: str
    config: Callable[[str, int], dict[str, Any]]  # (http base url, smtp port) → config
    classifies: bool = True  # tells a refusal (permanent) from a failure; apprise cannot


def apprise_url(base_url: str, password: str = e.APPRISE_PASSWORD) -> str:
    """apprise's json:// URL of the emulator's JSON receiver."""
    host = base_url.removeprefix("http://")
    return f"json://{e.APPRISE_USER}:{password}@{host}/apprise/notify"


CASES: dict[str, Case] = {
    "apprise": Case(
        "apprise",
        "jan",
        lambda url, _: {"url": apprise_url(url)},
        classifies=False,
    ),
    "sms_odorik": Case(
        "odorik",
        "+420 777 123 456",
        lambda url, _: {
            "base_url": f"{url}/odorik/api/v1/",
            "user": e.ODORIK_USER,
            "password": e.ODORIK_PASSWORD,
            "sender": "5517",
        },
    ),
    "telegram": Case(
        "telegram",
        "987654321",
        lambda url, _: {"api_url": f"{url}/telegram", "token": e.TELEGRAM_TOKEN},
    ),
    "pagerduty": Case(
        "pagerduty",
        "default",
        lambda url, _: {"url": f"{url}/pagerduty/v2/enqueue", "routing_key": e.PAGERDUTY_KEY},
    ),
    "ntfy": Case(
        "ntfy",
        "oncall-jan",
        lambda url, _: {"server": f"{url}/ntfy", "token": e.NTFY_TOKEN},
    ),
    "webhook": Case(
        "webhook",
        "noc",
        lambda url, _: {"url": f"{url}/webhook/hook", "secret": e.WEBHOOK_SECRET},
    ),
    "email": Case(
        "smtp",
        "jan@msp.example",
        lambda _, port: {
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "username": e.SMTP_USER,
            "password": e.SMTP_PASSWORD,
            "sender": "monitord@msp.example",
        },
    ),
}


def channel_class(kind: str) -> Any:
    module, _, name = REGISTRY[kind].rpartition(".")
    return getattr(importlib.import_module(module), name)


def build(
    kind: str,
    session: aiohttp.ClientSession,
    base_url: str,
    smtp_port: int = 0,
    **overrides: Any,
) -> Channel:
    cls = channel_class(kind)
    config = cls.Config.model_validate({**CASES[kind].config(base_url, smtp_port), **overrides})
    channel: Channel = cls(config, session=session, clock=FakeClock())
    return channel


def page(kind: str, action: str = "trigger", **overrides: Any) -> Page:
    fields: dict[str, Any] = {
        "dedup_key": "monitord-incident-17",
        "action": action,
        "recipient": CASES[kind].recipient,
        "title": "srv-db01 (Customer A) DOWN",
        "body": "ping loss 100% since 02:14 UTC",
        "priority": "P1",
        "ack_url": "https://monitor.msp.example/ack/7f3a9c41",
    }
    return Page(**{**fields, **overrides})
