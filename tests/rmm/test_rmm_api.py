"""The RMM feed's API and CLI, the verdicts on an incident's detail and in `monitord
explain`, the metrics, and feed health (stale after the configured time, cleared
by recovery) with the fake source failing in each way an adapter reports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from prometheus_client import generate_latest
from sqlalchemy import select

from monitord.api.http import serve
from monitord.cli import main
from monitord.sources.rmm.base import Category, FailureKind, RmmError
from monitord.storage.schema import incidents
from tests.rmm.daemon import Fleet
from tests.rmm.fakes import check, offline
from tests.test_app import wait_for


@pytest.fixture
async def api(fleet: Fleet) -> AsyncIterator[str]:
    listen = fleet.app.loaded.config.daemon.listen
    runner = await serve(fleet.app, listen)
    try:
        yield f"http://{listen}"
    finally:
        await runner.cleanup()


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.json()


async def post(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(url) as resp:
        return resp.status, await resp.json()


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


def metrics(fleet: Fleet) -> str:
    return generate_latest(fleet.app.registry).decode()


async def test_api_cli_and_incident_detail(
    fleet: Fleet, api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await fleet.poll(
        offline("13", FailureKind.OVERDUE),
        check("12", "7002", Category.ANTIVIRUS, "Antivirus Update Check", output="3 days old"),
    )
    status, body = await get(f"{api}/api/v1/rmm/observations")
    assert status == 200
    by_key = {o["key"]: o for o in body["observations"]}
    agent = by_key["13:overdue"]
    assert (agent["verdict"], agent["device"], agent["customer"]) == (
        "agent-problem",
        "acme/SRV2",
        "acme",
    )
    assert agent["evidence"] and agent["rule"].startswith("rmm.verdicts.availability")
    status, body = await get(f"{api}/api/v1/rmm/observations?verdict=unverifiable")
    assert [o["key"] for o in body["observations"]] == ["7002"]
    status, detail = await get(f"{api}/api/v1/rmm/observations/{agent['id']}")
    assert [h["verdict"] for h in detail["history"]] == ["agent-problem"]
    # the incident's own detail shows the verdict that fed it, and so does explain
    status, inc = await get(f"{api}/api/v1/incidents/{agent['incident']}")
    assert [(o["source"], o["verdict"]) for o in inc["rmm"]] == [("fake1", "agent-problem")]
    assert any("RMM verdict agent-problem" in t["detail"] for t in inc["timeline"])
    assert await cli("explain", str(agent["incident"]), "--url", api) == 0
    out = capsys.readouterr().out
    assert "rmm fake1 #" in out and "agent-problem: Overdue - rmm.verdicts.availability" in out
    # the other read models
    status, body = await get(f"{api}/api/v1/rmm/devices?state=active")
    assert {d["device"] for d in body["devices"]} == {"acme/SRV1", "acme/WS1", "acme/SRV2"}
    status, body = await get(f"{api}/api/v1/rmm/logons?user=EVA")
    assert [(lg["user"], lg["device"]) for lg in body["logons"]] == [("ACME\\eva", "acme/WS1")]
    status, body = await get(f"{api}/api/v1/rmm/feeds")
    (feed,) = body["feeds"]
    assert (feed["source"], feed["ok"], feed["stale"]) == ("fake1", True, False)
    assert feed["last_good_sync_at"] is not None and feed["error"] is None
    status, body = await get(f"{api}/api/v1/rmm/conflicts")
    assert body == {"conflicts": []}
    # bad parameters and unknown sources are precise 4xx
    status, body = await get(f"{api}/api/v1/rmm/observations?verdict=maybe")
    assert status == 400 and "verdict must be one of confirmed" in body["error"]
    status, body = await post(f"{api}/api/v1/rmm/nosuch/sync")
    assert (status, body["error"]) == (404, "no running RMM source 'nosuch' (running: fake1)")
    # a poll right after the last one waits for the RMM's minimum interval
    status, body = await post(f"{api}/api/v1/rmm/fake1/poll")
    assert status == 429 and "poll again in" in body["error"]
    status, body = await post(f"{api}/api/v1/rmm/fake1/sync")
    assert (status, body) == (200, {"source": "fake1", "counts": {}})
    # the CLI prints the same
    assert await cli("rmm", "observations", "--url", api) == 0
    out = capsys.readouterr().out
    assert "agent-problem acme/SRV2: overdue" in out
    assert "unverifiable  acme/WS1: Antivirus Update Check" in out
    assert await cli("rmm", "logons", "--user", "eva", "--url", api) == 0
    assert "ACME\\eva" in capsys.readouterr().out
    assert await cli("rmm", "feeds", "--url", api) == 0
    assert "fake1 (fake): ok" in capsys.readouterr().out
    assert await cli("rmm", "poll", "fake1", "--url", api) == 1
    assert "refused (429)" in capsys.readouterr().err
    # metrics: verdicts, open observations, accuracy per customer, freshness
    await fleet.app.rmm.tick()
    text = metrics(fleet)
    assert 'monitord_rmm_observations{source="fake1",verdict="agent-problem"} 1.0' in text
    assert 'monitord_rmm_verdicts_total{source="fake1",verdict="unverifiable"} 1.0' in text
    assert 'monitord_rmm_accuracy_ratio{customer="acme"} 0.0' in text
    assert 'monitord_rmm_feed_age_seconds{source="fake1"}' in text
    assert 'monitord_rmm_feed_up{source="fake1"} 1.0' in text


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (RmmError("fake1: list_failing_checks: no answer in 30 s", reason="timeout"), "timeout"),
        (RmmError("fake1: an HTML page, not XML (a WAF?)", reason="not-xml"), "not-xml"),
        (RmmError("fake1: FAIL 3: login failed", reason="auth", code=3), "auth"),
        (RmmError("fake1: body over 10 MB", reason="too-large"), "too-large"),
    ],
)
async def test_a_failing_feed_goes_stale_then_recovers(
    fleet: Fleet, error: RmmError, reason: str
) -> None:
    await fleet.poll()
    fleet.fake.error = error
    assert not await fleet.app.rmm.poll("fake1")
    await fleet.app.rmm.tick()
    text = metrics(fleet)
    assert 'monitord_rmm_feed_up{source="fake1"} 0.0' in text
    errors = f'monitord_rmm_poll_errors_total{{op="failures",reason="{reason}",source="fake1"}}'
    assert f"{errors} 1.0" in text

    def internal() -> list[Any]:
        return fleet.rows(select(incidents).where(incidents.c.kind == "internal"))

    await fleet.app.flush()
    assert internal() == []  # not before rmm.stale_after
    await asyncio.sleep(1.1)
    await fleet.app.rmm.tick()
    (inc,) = await wait_for(internal, timeout=5)
    assert inc.state == "open"
    assert inc.title.startswith("monitord: RMM feed fake1 stale: no good poll since ")
    assert f"({reason}: {error}" in inc.title
    assert 'monitord_rmm_feed_stale{source="fake1"} 1.0' in metrics(fleet)
    # still failing: one incident, not one per poll
    assert not await fleet.app.rmm.poll("fake1")
    await fleet.app.rmm.tick()
    await fleet.app.flush()
    assert len(internal()) == 1
    # recovery clears it
    fleet.fake.error = None
    await fleet.poll()
    await wait_for(lambda: internal()[0].state == "resolved", timeout=5)
    await fleet.app.rmm.tick()
    assert 'monitord_rmm_feed_stale{source="fake1"} 0.0' in metrics(fleet)


async def test_an_adapter_that_hangs_or_breaks_is_a_failed_poll(fleet: Fleet) -> None:
    class Hang:
        async def __call__(self) -> Any:
            await asyncio.sleep(3600)

    fleet.fake.failures = Hang()  # type: ignore[method-assign]
    loaded = fleet.app.loaded
    rmm = loaded.config.rmm.model_copy(update={"poll_timeout": 0.2})
    fleet.app.loaded = replace(loaded, config=loaded.config.model_copy(update={"rmm": rmm}))
    assert not await fleet.app.rmm.poll("fake1")

    async def broken() -> Any:
        raise KeyError("a bug in the adapter")

    fleet.fake.failures = broken  # type: ignore[method-assign]
    assert not await fleet.app.rmm.poll("fake1")
    text = metrics(fleet)
    for reason in ("timeout", "malformed"):
        line = f'monitord_rmm_poll_errors_total{{op="failures",reason="{reason}",source="fake1"}}'
        assert f"{line} 1.0" in text


async def test_a_long_inventory_sync_neither_times_out_early_nor_holds_up_polls(
    fleet: Fleet,
) -> None:
    """An N-sight inventory at its etiquette takes minutes of paced calls: it is bounded
    by rmm.sync_timeout (not the poll's), and failure polls go on meanwhile."""
    inventory = fleet.fake.inventory
    release = asyncio.Event()

    async def slow() -> Any:
        await release.wait()
        return await inventory()

    fleet.fake.inventory = slow  # type: ignore[method-assign]
    loaded = fleet.app.loaded
    rmm = loaded.config.rmm.model_copy(update={"poll_timeout": 0.2, "sync_timeout": 30.0})
    fleet.app.loaded = replace(loaded, config=loaded.config.model_copy(update={"rmm": rmm}))
    sync = asyncio.ensure_future(fleet.app.rmm.sync("fake1"))
    await asyncio.sleep(0.5)  # longer than poll_timeout: a sync under it would have failed
    assert not sync.done()
    async with asyncio.timeout(5):
        assert await fleet.app.rmm.poll("fake1")  # not queued behind the sync
    assert not sync.done()
    release.set()
    assert await sync is not None
