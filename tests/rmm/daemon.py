"""A running daemon around the fake RMM source: loopback listeners as devices.

`fleet` (tests/rmm/conftest.py) starts it: acme's site hq behind the configured
gateway fw, and the RMM's SRV1, WS1 and SRV2 synced into it, each a TCP listener
that a test takes down and brings back. The test polls the RMM when it means to
(the periodic poll job is removed).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from monitord.app import App
from monitord.config.load import config_from_dict
from monitord.model import Status
from monitord.storage.schema import incident_log, incidents, rmm_observations
from tests.conftest import fast_timing
from tests.rmm.conftest import rmm_section, service_port
from tests.rmm.fakes import FakeSource, device, inventory
from tests.test_app import Listener, wait_for

SRV, WS, SRV2 = "127.45.0.2", "127.45.0.3", "127.45.0.4"


class Fleet:
    def __init__(self, app: App, port: int, listeners: dict[str, Listener]) -> None:
        self.app, self.port, self.listeners = app, port, listeners

    @property
    def fake(self) -> FakeSource:
        source = self.app.rmm.runners["fake1"].source
        assert isinstance(source, FakeSource)
        return source

    def rows(self, query: Any) -> list[Any]:
        assert self.app.engine is not None
        with self.app.engine.connect() as conn:
            return list(conn.execute(query).all())

    def observation(self, key: str) -> Any:
        found = self.rows(
            select(rmm_observations)
            .where(rmm_observations.c.key == key)
            .order_by(rmm_observations.c.id.desc())
        )
        return found[0] if found else None

    def incident(self, incident_id: int) -> Any:
        return self.rows(select(incidents).where(incidents.c.id == incident_id))[0]

    def timeline(self, incident_id: int) -> list[str]:
        return [
            f"{r.action}: {r.detail}"
            for r in self.rows(
                select(incident_log)
                .where(incident_log.c.incident_id == incident_id)
                .order_by(incident_log.c.id)
            )
        ]

    def hard(self, check_id: str, status: Status = Status.CRITICAL) -> bool:
        assert self.app.pipeline is not None
        state = self.app.pipeline.states.get(check_id)
        return state is not None and state.hard_status == status

    async def poll(self, *failures: Any) -> None:
        self.fake.current = tuple(failures)
        assert await self.app.rmm.poll("fake1")


def config(tmp_path: Path, port: int, **rmm: Any) -> Any:
    check_ = [{"type": "tcp", "name": "svc", "port": port}]
    return config_from_dict(
        {
            **fast_timing(tmp_path),
            "customers": [{"name": "acme", "sites": [{"name": "hq", "gateway": "fw"}]}],
            "devices": [
                {
                    "name": "fw",
                    "customer": "acme",
                    "site": "hq",
                    "address": "127.45.0.1",
                    "role": "network",
                    "checks": check_,
                },
            ],
            "templates": [{"name": "all", "checks": check_}],
            "rmm": rmm_section(
                sites=[{"customer": "acme", "rmm_site": "Head Office", "site": "hq"}],
                verdicts={
                    "availability": {"verify": [{"type": "tcp", "port": port, "timeout": "1s"}]},
                    "service": {"persist": "2s"},
                },
                reverify_after="0.1s",  # every poll judges again
                **rmm,
            ),
        }
    )


@contextlib.asynccontextmanager
async def running_fleet(tmp_path: Path, **rmm: Any) -> AsyncIterator[Fleet]:
    """The daemon with the fake RMM source (`fake_kind` registers it) synced: SRV1,
    WS1 and SRV2 behind the firewall, every check OK; `rmm` overrides rmm settings."""
    port = service_port()
    listeners = {a: Listener(a, port) for a in ("127.45.0.1", SRV, WS, SRV2)}
    try:
        for listener in listeners.values():
            await listener.up()
        app = App(config(tmp_path, port, **rmm))
        await app.start()
        try:
            assert app.jobs is not None
            app.jobs.remove_job("rmm-poll-fake1")  # the test polls, when it means to
            f = Fleet(app, port, listeners)
            f.fake.snapshot = inventory(
                [
                    device("11", "SRV1", SRV),
                    device("12", "WS1", WS, kind="workstation", user="ACME\\eva"),
                    device("13", "SRV2", SRV2),
                ]
            )
            await app.rmm.sync("fake1")
            for name in ("SRV1", "WS1", "SRV2"):
                await wait_for(
                    lambda n=name: f.hard(f"acme/{n}/svc", Status.OK) or None, timeout=10
                )
            yield f
        finally:
            await app.stop()
    finally:
        for listener in listeners.values():
            await listener.down()
