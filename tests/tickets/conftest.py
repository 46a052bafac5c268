"""Emulators on loopback (Zammad, GLPI, a webhook receiver) and the real RT and
Redmine servers behind a fault proxy, with adapters pointed at them: one harness
per ticket system, so the contract suite runs against every one of them."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from alerts.outbox import OutboxItem
from alerts.tickets import REGISTRY
from alerts.tickets.base import MemoryTicketMap, TicketDeliverer, TicketSystem
from monitord.clock import FakeClock
from tests.tickets.emulators import (
    Emulator,
    FaultProxy,
    GlpiEmulator,
    WebhookReceiver,
    ZammadEmulator,
)
from tests.tickets.services import RealSystem, service_env

EMULATED = ("zammad", "glpi", "webhook")
REAL = ("rt", "redmine")  # real servers on loopback (tests.tickets.services)
SYSTEMS = EMULATED + REAL
UPSTREAM = {"rt": "RT_URL", "redmine": "REDMINE_URL"}


def item(
    op: str,
    incident: int = 7,
    *,
    ident: int = 1,
    device: str = "acme-srv-db01",
    prefix: str = "monitord-incident",
    **extra: Any,
) -> OutboxItem:
    payload = {
        "dedup_key": f"{prefix}-{incident}",
        "subject": f"[P2] {device}: ping down",
        "customer": "acme",
        "device_id": device,
        "priority": "P2",
        "message": "ICMP loss 100%",
        "ts": 1_700_000_000.0 + ident,
        **extra,
    }
    return OutboxItem(ident, "ticket", "helpdesk", op, incident, payload, 0)


@dataclass
class Harness:
    kind: str
    emulator: Any
    system: TicketSystem
    tickets: MemoryTicketMap
    # Dedup keys of this harness: unique per run on a real server, so reruns
    # against the same server never find an earlier run's tickets.
    prefix: str = "monitord-incident"

    def deliverer(self, tickets: MemoryTicketMap | None = None) -> TicketDeliverer:
        return TicketDeliverer("helpdesk", self.system, tickets or self.tickets)

    def item(self, op: str, incident: int = 7, **kw: Any) -> OutboxItem:
        return item(op, incident, prefix=self.prefix, **kw)

    def key(self, incident: int = 7) -> str:
        return f"{self.prefix}-{incident}"

    def secrets(self) -> list[str]:
        e = self.emulator
        if isinstance(e, ZammadEmulator):
            return [e.token]
        if isinstance(e, GlpiEmulator):
            return [e.app_token, e.user_token]
        if isinstance(e, FaultProxy):
            return [e.env["RT_TOKEN"] if e.kind == "rt" else e.env["REDMINE_API_KEY"]]
        assert isinstance(e, WebhookReceiver)
        return [e.secret]

    @property
    def real(self) -> RealSystem:
        assert isinstance(self.emulator, FaultProxy)
        return RealSystem(self.kind, self.emulator.env)

    async def notes(self, external_id: str) -> list[str]:
        """The notes (articles, follow-ups, comments, journals) on a ticket."""
        e = self.emulator
        if isinstance(e, FaultProxy):
            return await self.real.notes(external_id)
        if isinstance(e, ZammadEmulator):
            return [str(a.get("body")) for a in e.tickets[int(external_id)]["articles"]]
        if isinstance(e, GlpiEmulator):
            return [str(f["content"]) for f in e.followups if f["items_id"] == int(external_id)]
        assert isinstance(e, WebhookReceiver)
        (ticket,) = [t for t in e.tickets.values() if t["id"] == external_id]
        return [str(op) for op in ticket["log"]]

    async def priority(self, external_id: str) -> str:
        """The ticket's own priority field, as the system stores it."""
        e = self.emulator
        if isinstance(e, FaultProxy):
            return await self.real.priority(external_id)
        if isinstance(e, ZammadEmulator):
            return str(e.tickets[int(external_id)]["priority"])
        if isinstance(e, GlpiEmulator):
            return str(e.tickets[int(external_id)]["urgency"])
        assert isinstance(e, WebhookReceiver)
        (ticket,) = [t for t in e.tickets.values() if t["id"] == external_id]
        return str(ticket["priority"])

    async def count(self) -> int:
        """Tickets of this harness in the system."""
        if isinstance(self.emulator, FaultProxy):
            return len(await self.real.tickets(self.prefix))
        return len(self.emulator.tickets)


def raw_config(emulator: Emulator, **overrides: Any) -> dict[str, Any]:
    """The config entry (as the YAML loader would hand it over) for `emulator`."""
    if isinstance(emulator, ZammadEmulator):
        raw: dict[str, Any] = {
            "url": emulator.url,
            "token": emulator.token,
            "group": "NOC",
            "customer": "guess:alerts@acme.example",
        }
    elif isinstance(emulator, GlpiEmulator):
        raw = {
            "url": emulator.url,
            "app_token": emulator.app_token,
            "user_token": emulator.user_token,
            "entities": {"acme": 3},
        }
    elif isinstance(emulator, FaultProxy) and emulator.kind == "rt":
        env = emulator.env
        raw = {
            "url": emulator.url,
            "token": env["RT_TOKEN"],
            "queue": env["RT_QUEUE"],
            "custom_field": env["RT_CF"],
        }
    elif isinstance(emulator, FaultProxy):
        env = emulator.env
        raw = {
            "url": emulator.url,
            "api_key": env["REDMINE_API_KEY"],
            "project": env["REDMINE_PROJECT"],
            "tracker_id": int(env["REDMINE_TRACKER_ID"]),
            "custom_field_id": int(env["REDMINE_CF_ID"]),
            "open_status_id": int(env["REDMINE_STATUS_NEW"]),
            "resolved_status_id": int(env["REDMINE_STATUS_RESOLVED"]),
            "closed_status_id": int(env["REDMINE_STATUS_CLOSED"]),
        }
    else:
        assert isinstance(emulator, WebhookReceiver)
        raw = {"url": emulator.url + "/hook", "secret": emulator.secret}
    return {**raw, **overrides}


def make_system(
    kind: str,
    emulator: Emulator,
    *,
    session: aiohttp.ClientSession | None = None,
    **overrides: Any,
) -> TicketSystem:
    """Built through REGISTRY with the uniform constructor, as the App will build it."""
    module, _, name = REGISTRY[kind].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    settings = cls.Config.model_validate(raw_config(emulator, **overrides))
    system: TicketSystem = cls(settings, session=session, clock=FakeClock())
    return system


def make_emulator(kind: str) -> Emulator:
    """The emulator of `kind`, or the proxy in front of the real server of `kind`
    (skipped, or failed in CI, when that server cannot be had)."""
    if kind in REAL:
        env = service_env("request-tracker" if kind == "rt" else "redmine")
        return FaultProxy(upstream=env[UPSTREAM[kind]], kind=kind, env=env)
    kinds: dict[str, type[Emulator]] = {
        "zammad": ZammadEmulator,
        "glpi": GlpiEmulator,
        "webhook": WebhookReceiver,
    }
    return kinds[kind]()


def unique_prefix() -> str:
    return f"mt{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def running(kind: str) -> AsyncIterator[Harness]:
    """The emulator (or real server) of `kind` on loopback and an adapter pointed at it."""
    emulator = make_emulator(kind)
    await emulator.start()
    system = make_system(kind, emulator)
    prefix = unique_prefix() if kind in REAL else "monitord-incident"
    try:
        yield Harness(kind, emulator, system, MemoryTicketMap(), prefix)
    finally:
        await system.aclose()
        await emulator.stop()


@pytest.fixture(params=SYSTEMS)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with running(request.param) as h:
        yield h


@pytest.fixture
async def zammad() -> AsyncIterator[Harness]:
    async with running("zammad") as h:
        yield h


@pytest.fixture
async def glpi() -> AsyncIterator[Harness]:
    async with running("glpi") as h:
        yield h


@pytest.fixture
async def webhook() -> AsyncIterator[Harness]:
    async with running("webhook") as h:
        yield h


@pytest.fixture
async def rt() -> AsyncIterator[Harness]:
    async with running("rt") as h:
        yield h


@pytest.fixture
async def redmine() -> AsyncIterator[Harness]:
    async with running("redmine") as h:
        yield h


@pytest.fixture(scope="session")
def rt_env() -> dict[str, str]:
    return service_env("request-tracker")


@pytest.fixture(scope="session")
def redmine_env() -> dict[str, str]:
    return service_env("redmine")
