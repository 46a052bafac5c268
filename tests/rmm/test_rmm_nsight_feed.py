"""The feed over the real N-sight adapter and its emulator on loopback: a sync and a
poll end to end, and resilience: a timeout, a WAF page, FAIL code 3 and a 50 MB body
each mark the feed failing with the reason, the internal "RMM feed stale" incident
opens after rmm.stale_after, and recovery clears it. The daemon never crashes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import select

from monitord.app import App
from monitord.config.load import config_from_dict
from monitord.lab.rmm_nsight import Fault, NsightEmulator
from monitord.lab.rmm_nsight_model import NsightAccount
from monitord.sources.rmm.base import Category
from monitord.storage.schema import (
    incidents,
    rmm_devices,
    rmm_feeds,
    rmm_logons,
    rmm_observations,
)
from tests.conftest import fast_timing
from tests.rmm.conftest import service_port
from tests.rmm.emulators import KEY
from tests.rmm.fakes import check, device, inventory, offline
from tests.test_app import Listener, wait_for

ADDRESSES = ("127.46.0.1", "127.46.0.2", "127.46.0.3")


class Daemon:
    def __init__(self, app: App, emulator: NsightEmulator) -> None:
        self.app, self.emulator = app, emulator

    def rows(self, query: Any) -> list[Any]:
        assert self.app.engine is not None
        with self.app.engine.connect() as conn:
            return list(conn.execute(query).all())

    def internal(self) -> list[Any]:
        return self.rows(select(incidents).where(incidents.c.kind == "internal"))

    def metrics(self) -> str:
        return generate_latest(self.app.registry).decode()


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    port = service_port()
    listeners = [Listener(a, port) for a in ADDRESSES]
    for listener in listeners:
        await listener.up()
    records = inventory(
        [
            device("30200101", "NFL-DC01", ADDRESSES[1], client="410002", site="520021"),
            device(
                "30200111",
                "NFL-WS001",
                ADDRESSES[2],
                client="410002",
                site="520021",
                kind="workstation",
                user="NFL\\amoreau",
            ),
        ],
        clients=(("410002", "Northfield Logistics Ltd"),),
        sites=(("520021", "410002", "Head Office"),),
    )
    failures = [
        offline("30200111"),
        check("30200101", "70020001", Category.SERVICE, "Windows Service Check - DNS Server"),
        check("30200111", "70020013", Category.ANTIVIRUS, "Antivirus Update Check - MAV"),
    ]
    account = NsightAccount.from_records(records, failures)
    async with NsightEmulator(account, api_key=KEY) as emulator:
        svc = [{"type": "tcp", "name": "svc", "port": port}]
        loaded = config_from_dict(
            {
                **fast_timing(tmp_path),
                "customers": [{"name": "northfield", "sites": [{"name": "hq", "gateway": "fw"}]}],
                "devices": [
                    {
                        "name": "fw",
                        "customer": "northfield",
                        "site": "hq",
                        "address": ADDRESSES[0],
                        "role": "network",
                        "checks": svc,
                    },
                ],
                "templates": [{"name": "all", "checks": svc}],
                "rmm": {
                    "sources": [
                        {
                            "name": "nsight",
                            "kind": "nsight",
                            "server": emulator.url,
                            "api_key": KEY,
                            "timeout": 0.5,
                            "max_calls_per_minute": 0,
                            "max_body_bytes": 1 << 20,
                        },
                    ],
                    "clients": [{"client": "Northfield Logistics Ltd", "customer": "northfield"}],
                    "sites": [{"customer": "northfield", "rmm_site": "Head Office", "site": "hq"}],
                    "stale_after": "1s",
                    "verdicts": {"availability": {"verify": [{"type": "tcp", "port": port}]}},
                },
            }
        )
        app = App(loaded)
        await app.start()
        assert app.jobs is not None
        app.jobs.remove_job("rmm-poll-nsight")  # the test polls when it means to
        try:
            yield Daemon(app, emulator)
        finally:
            await app.stop()
            for listener in listeners:
                await listener.down()


async def test_sync_and_poll_through_the_nsight_adapter(daemon: Daemon) -> None:
    counts = await daemon.app.rmm.sync("nsight")
    assert counts == {"added": 2}
    assert daemon.app.inventory.devices["northfield/NFL-DC01"].parent_id == "northfield/fw"
    users = [(r.user, r.device_id) for r in daemon.rows(select(rmm_logons))]
    assert users == [("NFL\\amoreau", "northfield/NFL-WS001")]
    mapping = {r.rmm_id: r.device_id for r in daemon.rows(select(rmm_devices))}
    assert mapping == {"30200101": "northfield/NFL-DC01", "30200111": "northfield/NFL-WS001"}
    await wait_for(lambda: daemon.app.pipeline.states.get("northfield/NFL-DC01/svc"), timeout=10)
    assert await daemon.app.rmm.poll("nsight")
    got = {r.key: r for r in daemon.rows(select(rmm_observations))}
    assert {k: (r.kind, r.category, r.verdict) for k, r in got.items()} == {
        "30200111:offline": ("offline", "availability", "agent-problem"),  # it answers
        "70020001": ("check", "service", "disputed"),  # its TCP service answers
        "70020013": ("check", "antivirus", "unverifiable"),
    }
    assert got["70020001"].description == "Windows Service Check - DNS Server"
    # the DEA's etiquette: the key as a query parameter, an explicit User-Agent
    assert all(
        c.key_in_query and c.user_agent.startswith("Mozilla/5.0") for c in daemon.emulator.calls
    )


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault("delay", seconds=5.0), "timeout"),
        (Fault("waf", status=200), "not-xml"),
        (Fault("login_failed"), "auth"),
        (Fault("huge", size=50 << 20), "too-large"),
    ],
    ids=["timeout", "waf-html", "fail-code-3", "50MB"],
)
async def test_a_broken_rmm_api_marks_the_feed_stale_until_it_recovers(
    daemon: Daemon, fault: Fault, reason: str
) -> None:
    assert await daemon.app.rmm.poll("nsight")  # syncs first, then polls
    daemon.emulator.fault = fault
    assert not await daemon.app.rmm.poll("nsight")
    assert daemon.app.started  # no crash
    (state,) = daemon.rows(select(rmm_feeds))
    assert state.error_reason == reason and state.failing_since is not None
    assert KEY not in state.error  # the URL carries the key: never in a message
    if fault.kind == "huge":
        (stream,) = daemon.emulator.streams
        assert stream.sent < stream.size  # the adapter hung up early; nothing held
    await daemon.app.flush()
    assert daemon.internal() == []  # not before rmm.stale_after
    await asyncio.sleep(1.1)
    await daemon.app.rmm.tick()
    (inc,) = await wait_for(daemon.internal, timeout=5)
    assert inc.state == "open" and "RMM feed nsight stale" in inc.title and reason in inc.title
    assert 'monitord_rmm_feed_stale{source="nsight"} 1.0' in daemon.metrics()
    daemon.emulator.fault = None
    assert await daemon.app.rmm.poll("nsight")
    await wait_for(lambda: daemon.internal()[0].state == "resolved", timeout=5)
