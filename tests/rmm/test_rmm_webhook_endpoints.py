"""The RMM webhook endpoints: Tactical's alert URL Action for a running tactical source,
and the generic schema for any RMM; authenticated like the event ingest (bearer token
or HMAC), judged like a poll, and every refusal a precise 4xx that stores nothing."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from monitord.api.http import serve
from monitord.app import App
from monitord.config.load import config_from_dict
from monitord.lab.rmm_tactical import TacticalAgent, TacticalEmulator
from monitord.sources.ingest_auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from monitord.sources.rmm.webhooks import TACTICAL_RESOLVED_TEMPLATE, TACTICAL_TEMPLATE
from monitord.storage.schema import rmm_observations
from tests.conftest import fast_timing
from tests.rmm.conftest import service_port
from tests.test_app import Listener, wait_for

TAC_KEY = "tactical-test-key-0123456789"
TOKEN = "hook-token-0123456789abcdef"
SECRET = "generic-secret-0123456789abcdef"
ADDRESS = "127.47.0.2"


class Hooks:
    def __init__(self, app: App, url: str, tactical: TacticalEmulator, pk: int) -> None:
        self.app, self.url, self.tactical, self.pk = app, url, tactical, pk

    def count(self) -> int:
        assert self.app.engine is not None
        with self.app.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(rmm_observations)).scalar_one()
            )

    def observation(self, key: str) -> Any:
        assert self.app.engine is not None
        with self.app.engine.connect() as conn:
            return conn.execute(
                select(rmm_observations).where(rmm_observations.c.key == key)
            ).first()

    async def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        data = raw if raw is not None else json.dumps(body).encode()
        send = {"Content-Type": "application/json", **(headers or {})}
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url + path, data=data, headers=send) as resp,
        ):
            return resp.status, await resp.json()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(body: bytes) -> dict[str, str]:
    ts = int(time.time())
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: f"sha256={sign(SECRET, ts, body)}"}


@pytest.fixture
async def hooks(tmp_path: Path) -> AsyncIterator[Hooks]:
    port = service_port()
    listener = Listener(ADDRESS, port)
    await listener.up()
    tactical = TacticalEmulator(api_key=TAC_KEY)
    pk = tactical.add_agent(
        TacticalAgent(
            "RkTqvYbWagent01",
            "TAC-WS1",
            1,
            "Northfield",
            11,
            "HQ",
            last_seen=time.time(),
            local_ips=ADDRESS,
            logged_in_username="jnovak",
        )
    )
    await tactical.start()
    svc = [{"type": "tcp", "name": "svc", "port": port}]
    loaded = config_from_dict(
        {
            **fast_timing(tmp_path),
            "customers": [{"name": "northfield"}],
            "templates": [{"name": "all", "checks": svc}],
            "rmm": {
                "sources": [
                    {"name": "tac", "kind": "tactical", "url": tactical.url, "api_key": TAC_KEY}
                ],
                "clients": [{"client": "Northfield", "customer": "northfield"}],
                "verdicts": {"availability": {"verify": [{"type": "tcp", "port": port}]}},
                "webhook": {
                    "enabled": True,
                    "tokens": [{"name": "tactical-hook", "token": TOKEN}],
                    "hmac": [{"name": "datto", "secret": SECRET}],
                    "max_body_bytes": 4096,
                },
            },
        }
    )
    app = App(loaded)
    await app.start()
    listen = loaded.config.daemon.listen
    runner = await serve(app, listen)
    try:
        assert await app.rmm.sync("tac") is not None  # (the start's sync may have run)
        assert "northfield/TAC-WS1" in app.inventory.devices
        await wait_for(lambda: app.pipeline.states.get("northfield/TAC-WS1/svc"), timeout=10)
        yield Hooks(app, f"http://{listen}", tactical, pk)
    finally:
        await runner.cleanup()
        await app.stop()
        await tactical.close()
        await listener.down()


async def test_tactical_alert_then_its_resolution(hooks: Hooks) -> None:
    alert = hooks.tactical.raise_alert(None, hooks.pk)  # the agent is overdue
    body = hooks.tactical.render_webhook(TACTICAL_TEMPLATE, alert)
    status, answer = await hooks.post("/api/v1/rmm/tac/webhook", body, bearer())
    assert status == 202
    key = "RkTqvYbWagent01:availability"
    assert answer == {
        "accepted": 1,
        "source": "tac",
        "event": "problem",
        "key": key,
        "observation": answer["observation"],
        "device": "northfield/TAC-WS1",
        "verdict": "agent-problem",  # it answers monitord
    }
    obs = hooks.observation(key)
    assert (obs.origin, obs.kind, obs.verdict) == ("webhook", "overdue", "agent-problem")
    resolved = hooks.tactical.render_webhook(TACTICAL_RESOLVED_TEMPLATE, alert)
    status, answer = await hooks.post("/api/v1/rmm/tac/webhook", resolved, bearer())
    assert (status, answer["event"]) == (202, "clearance")
    assert hooks.observation(key).cleared_at is not None


async def test_generic_webhook_signed_with_hmac(hooks: Hooks) -> None:
    body = json.dumps(
        {
            "source": "datto",
            "device": "tac-ws1",
            "client": "Northfield",
            "key": "disk-c",
            "status": "problem",
            "category": "disk-space",
            "description": "Disk C: 97% full",
        }
    ).encode()
    headers = signed(body)
    status, answer = await hooks.post("/api/v1/rmm/webhook", None, headers, raw=body)
    assert status == 202, answer
    assert (answer["source"], answer["device"], answer["verdict"]) == (
        "wh-datto",
        "northfield/TAC-WS1",  # found by name within the client's customer
        "unverifiable",  # no check of monitord's covers disk space here
    )
    # the same signed request again is a replay, refused
    status, answer = await hooks.post("/api/v1/rmm/webhook", None, headers, raw=body)
    assert status == 403 and "replayed request" in answer["error"]


async def test_refusals_are_precise_and_store_nothing(hooks: Hooks) -> None:
    before = hooks.count()
    alert = hooks.tactical.raise_alert(None, hooks.pk)
    body = hooks.tactical.render_webhook(TACTICAL_TEMPLATE, alert)
    cases: list[tuple[str, Any, dict[str, str], bytes | None, int, str]] = [
        ("/api/v1/rmm/tac/webhook", body, {}, None, 401, "authentication required"),
        ("/api/v1/rmm/tac/webhook", body, bearer("wrong-token-0123456789"), None, 403,
         "invalid bearer token"),
        ("/api/v1/rmm/nope/webhook", body, bearer(), None, 404,
         "no running RMM source 'nope' (running: tac)"),
        ("/api/v1/rmm/tac/webhook", None, bearer(), b"{not json", 400,
         "field 'body': not JSON"),
        ("/api/v1/rmm/tac/webhook", {**body, "event": "exploded"}, bearer(), None, 422,
         "field 'event': expected one of failure, resolved, got 'exploded'"),
        ("/api/v1/rmm/webhook", {"device": "x", "status": "down", "key": "k",
                                 "description": "d"}, bearer(), None, 422,
         "field 'status': expected one of problem, ok, got 'down'"),
        ("/api/v1/rmm/webhook", {"device": "x", "colour": "red"}, bearer(), None, 422,
         "field 'colour': unknown field"),
        ("/api/v1/rmm/tac/webhook", None, bearer(), b"x" * 5000, 413,
         "the limit is 4096 (rmm.webhook.max_body_bytes)"),
    ]  # fmt: skip
    for path, doc, headers, raw, status, text in cases:
        got, answer = await hooks.post(path, doc, headers, raw=raw)
        assert (got, text in answer["error"]) == (status, True), (path, answer)
    got, answer = await hooks.post(
        "/api/v1/rmm/tac/webhook", None, {**bearer(), "Content-Type": "text/plain"}, raw=b"{}"
    )
    assert got == 415 and "content type must be application/json" in answer["error"]
    assert hooks.count() == before
