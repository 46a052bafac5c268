"""A daemon with paging configured against the channel emulators, on an injected clock.

`Harness` runs a real `App` (storage, correlator, notify stage, outbox, paging) on a
`FakeClock`; a test raises problems as events and drives time by hand:
`await h.at("2026-11-26T00:10+01:00")` moves the clock there and runs everything that
is due (correlation, the escalation job, the outbox). Pages land in the emulators.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from correlator.events import Event, EventKind, fingerprint
from monitord.api.http import serve
from monitord.app import App
from monitord.clock import FakeClock
from monitord.config.load import config_from_dict
from monitord.model import Status
from monitord.storage.schema import incident_log, page_escalations
from tests.channels import emulators as e
from tests.channels.emulators import HttpEmulators, SmtpEmulator
from tests.conftest import free_port

ACK_SECRET = "ack-secret-0123456789abcdef0123"
PHONES = {
    "jan": "+420777100001",
    "petr": "+420777100002",
    "eva": "+420777100003",
    "boss": "+420777100004",
    "desk": "+420222111000",
}


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def number(name: str) -> str:
    """The engineer's phone as Odorik's emulator records it (00…)."""
    return "00" + PHONES[name][1:]


def paging_config(
    tmp_path: Path,
    base_url: str,
    smtp_port: int,
    listen: str,
    telegram: dict[str, Any] | None = None,
    jan_channels: list[str] | None = None,
    **paging: Any,
) -> dict[str, Any]:
    engineers = [
        {
            "name": "jan",
            "display_name": "Jan Novák",
            "phones": [PHONES["jan"]],
            "email": "jan@msp.example",
            "telegram_chat_id": int(e.TELEGRAM_CHATS[0]),
            "addresses": {"ntfy": "oncall-jan"},
            "channels": jan_channels or ["sms", "telegram", "mail"],
        },
        {
            "name": "petr",
            "display_name": "Petr Svoboda",
            "phones": [PHONES["petr"]],
            "email": "petr@msp.example",
            "channels": ["sms", "mail"],
        },
        {"name": "eva", "phones": [PHONES["eva"]], "channels": ["sms"]},
        {"name": "boss", "phones": [PHONES["boss"]], "channels": ["sms"]},
    ]
    section: dict[str, Any] = {
        "channels": [
            {
                "name": "sms",
                "kind": "sms_odorik",
                "base_url": f"{base_url}/odorik/api/v1/",
                "user": e.ODORIK_USER,
                "password": e.ODORIK_PASSWORD,
                "sender": "5517",
                "timeout": 5,
            },
            {
                "name": "telegram",
                "kind": "telegram",
                "api_url": f"{base_url}/telegram",
                "token": e.TELEGRAM_TOKEN,
                "updates": "poll",
                "poll_timeout": 1,
                **(telegram or {}),
            },
            {"name": "ntfy", "kind": "ntfy", "server": f"{base_url}/ntfy", "token": e.NTFY_TOKEN},
            {
                "name": "mail",
                "kind": "email",
                "host": "127.0.0.1",
                "port": smtp_port,
                "security": "none",
                "username": e.SMTP_USER,
                "password": e.SMTP_PASSWORD,
                "sender": "monitord@msp.example",
            },
        ],
        "policies": [
            {
                "name": "night",
                "steps": [
                    {"targets": ["support/primary"], "wait": "5m"},
                    {"targets": ["support/secondary"], "wait": "5m"},
                    {"targets": ["boss"], "wait": "10m"},
                ],
                "repeat": 1,
            },
            {"name": "desk", "steps": [{"targets": ["eva"], "wait": "15m"}]},
        ],
        "routes": [{"match": {"priorities": ["P1", "P2"]}, "policy": "night"}],
        "desk_policy": "desk",
        "ack_secret": ACK_SECRET,
        **paging,
    }
    return {
        "daemon": {
            "state_dir": str(tmp_path),
            "listen": listen,
            "public_url": f"http://{listen}",
            "write_interval": "0.1s",
        },
        "correlation": {"group_wait": "0s", "group_interval": "0s"},
        "customers": [
            {"name": "acme", "contract": {"after_hours_cover": True}},
            {"name": "bravo", "contract": {"after_hours_cover": False}},
        ],
        "devices": [
            {"name": "srv", "customer": "acme", "address": "127.0.0.1", "role": "server"},
            {"name": "srv2", "customer": "acme", "address": "127.0.0.1", "role": "server"},
            {"name": "srv3", "customer": "acme", "address": "127.0.0.1", "role": "server"},
            {"name": "db", "customer": "bravo", "address": "127.0.0.1", "role": "server"},
        ],
        "priority_rules": [
            {"name": "down", "match": {"categories": ["down"]}, "priority": "P1"},
            {"name": "minor", "priority": "P3"},
        ],
        "oncall": {
            "engineers": engineers,
            "fallback": {"name": "desk", "phones": [PHONES["desk"]], "channels": ["sms"]},
            "schedules": [
                {
                    "name": "support",
                    "timezone": "Europe/Prague",
                    "layers": [
                        {
                            "name": "primary",
                            "start": "2026-11-02",  # week of 2026-11-23: jan
                            "engineers": ["jan", "petr", "eva"],
                        },
                        {
                            "name": "secondary",
                            "start": "2026-11-02",  # week of 2026-11-23: petr
                            "engineers": ["petr", "eva", "jan"],
                        },
                    ],
                }
            ],
        },
        "paging": section,
    }


class Harness:
    def __init__(
        self,
        app: App,
        clock: FakeClock,
        emu: HttpEmulators,
        smtp: SmtpEmulator,
        doc: dict[str, Any],
    ) -> None:
        self.app, self.clock, self.emu, self.smtp = app, clock, emu, smtp
        self.doc = doc  # the config the daemon started with, for a reload to change
        self.url = f"http://{app.loaded.config.daemon.listen}"

    async def at(self, when: str | float) -> None:
        t = at(when) if isinstance(when, str) else when
        assert t >= self.clock.time(), "time only moves forward"
        self.clock.advance(t - self.clock.time())
        await self.settle()

    async def settle(self) -> None:
        """Run what is due now: correlation, the escalation job, the outbox (twice:
        what one stage queues, the next delivers)."""
        for _ in range(3):
            await self.app.flush()
            await self.app.paging.advance()
            await self.app.deliver_outbox()
        await asyncio.sleep(0)

    def problem(
        self, device: str, category: str = "down", ok: bool = False, status: Status | None = None
    ) -> None:
        customer = "bravo" if device == "db" else "acme"
        status = status or (Status.OK if ok else Status.CRITICAL)
        self.app.submit(
            Event(
                self.clock.time(),
                "test",
                EventKind.RECOVERY if ok else EventKind.PROBLEM,
                fingerprint(customer, f"{customer}/{device}", f"test:{category}"),
                customer,
                f"{customer}/{device}",
                None,
                status,
                f"{device} is {'back' if ok else 'down'}",
                category=category,
            )
        )

    def sms_to(self, name: str) -> list[str]:
        return [text for to, _, text in self.emu.sms_sent if to == number(name)]

    def timeline(self, incident_id: int, actor: str = "paging") -> list[tuple[str, str]]:
        assert self.app.engine is not None
        with self.app.engine.connect() as conn:
            rows = conn.execute(
                select(incident_log)
                .where(incident_log.c.incident_id == incident_id, incident_log.c.actor == actor)
                .order_by(incident_log.c.id)
            ).all()
        return [(r.action, r.detail) for r in rows]

    def escalation(self, incident_id: int) -> Any:
        assert self.app.engine is not None
        with self.app.engine.connect() as conn:
            return conn.execute(
                select(page_escalations)
                .where(page_escalations.c.incident_id == incident_id)
                .order_by(page_escalations.c.id.desc())
            ).first()


@asynccontextmanager
async def harness(
    tmp_path: Path,
    start: str,
    *,
    serve_http: bool = False,
    telegram: dict[str, Any] | None = None,
    jan_channels: list[str] | None = None,
    db_url: str | None = None,
    priority_rules: list[dict[str, Any]] | None = None,
    extra_channels: Callable[[str], list[dict[str, Any]]] | None = None,
    **paging: Any,
) -> AsyncIterator[Harness]:
    emu = HttpEmulators()
    base = await emu.start()
    smtp = SmtpEmulator()
    smtp.start(free_port())
    listen = f"127.0.0.1:{free_port()}"
    clock = FakeClock(at(start))
    emu.clock = clock.time
    doc = paging_config(tmp_path, base, smtp.port, listen, telegram, jan_channels, **paging)
    if db_url is not None:
        doc["daemon"]["database"] = db_url
    if priority_rules is not None:
        doc["priority_rules"] = priority_rules
    if extra_channels is not None:  # channels at the emulators' URL, known only now
        doc["paging"]["channels"] += extra_channels(base)
    app = App(config_from_dict(doc), clock=clock)
    runner = None
    try:
        await app.start()
        # The test drives the outbox and the escalation job itself (`settle`), on the
        # fake clock: the daemon's own loops for them would race it.
        for task in (*app._tasks, *app.paging._tasks):
            if task.get_name() in ("outbox", "paging"):
                task.cancel()
        if serve_http:
            runner = await serve(app, listen)
        yield Harness(app, clock, emu, smtp, doc)
    finally:
        if runner is not None:
            await runner.cleanup()
        await app.stop()
        smtp.stop()
        await emu.stop()
