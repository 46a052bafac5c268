"""Silences and maintenance windows made at runtime, through a real daemon on
loopback: the HTTP API, the CLI, the correlator's mutes, the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from correlator import engine as correlator_engine
from monitord.api import views
from monitord.app import App
from monitord.cli import main
from monitord.config import LoadedConfig
from monitord.config.load import config_from_dict
from monitord.storage.db import open_database
from monitord.storage.schema import metadata
from monitord.suppressions import SuppressionBook, parse_silence
from tests.conftest import fast_timing, free_port
from tests.test_app import Listener, running, wait_for

WEB, FW = "127.43.0.1", "127.43.0.2"


def config(tmp_path: Path, port: int, db_url: str | None = None) -> LoadedConfig:
    def device(name: str, address: str, role: str) -> dict[str, Any]:
        return {
            "name": name,
            "customer": "acme",
            "site": "hq",
            "address": address,
            "role": role,
            "checks": [{"type": "tcp", "name": "ssh", "port": port}],
        }

    return config_from_dict(
        {
            **fast_timing(tmp_path, db_url),
            "customers": [{"name": "acme", "sites": [{"name": "hq"}]}],
            "devices": [device("web", WEB, "server"), device("fw", FW, "network")],
            # Config entries that never match these devices: listed, read-only.
            "silences": [
                {"matchers": ["check=backup"], "author": "ops", "reason": "backups moved"}
            ],
            "maintenance": [
                {
                    "name": "patch night",
                    "customer": "acme",
                    "tags": ["patched"],
                    "weekly": "tue 20:00-22:00",
                    "author": "ops",
                }
            ],
        }
    )


@pytest.fixture
async def fleet() -> AsyncIterator[tuple[Listener, Listener, int]]:
    port = free_port()
    web, fw = Listener(WEB, port), Listener(FW, port)
    await web.up()
    await fw.up()
    yield web, fw, port
    for listener in (web, fw):
        await listener.down()


async def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, json=body) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


def in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


def timeline(app: App, incident_id: int) -> list[tuple[str, str]]:
    assert app.engine is not None
    detail = views.get_incident(app.engine, incident_id)
    assert detail is not None
    return [(t["action"], t["detail"]) for t in detail["timeline"]]


async def test_silence_holds_the_page_until_expired_and_survives_a_restart(
    tmp_path: Path,
    fleet: tuple[Listener, Listener, int],
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    web, _fw, port = fleet
    cfg = config(tmp_path, port, db_url)
    async with running(cfg) as (app, url):
        assert app.engine is not None
        engine = app.engine
        status, silence = await call(
            "POST",
            f"{url}/api/v1/silences",
            {
                "matchers": ["device=web", "check=~ss.*"],
                "author": "jan",
                "reason": "disk swap",
                "expiry": in_an_hour(),
            },
        )
        assert status == 201, silence
        assert (silence["source"], silence["created_by"], silence["active"]) == ("api", "jan", True)
        assert silence["matchers"] == ["device=web", "check=~ss.*"]

        await web.down()
        incident = (await wait_for(lambda: views.list_incidents(engine)))[0]
        reason = f"silence #{silence['id']} by jan: disk swap"
        await wait_for(lambda: any(a == "muted" for a, _ in timeline(app, incident["id"])))
        assert ("muted", f"{reason}; notified when it ends if still open") in timeline(
            app, incident["id"]
        )
        await asyncio.sleep(0.5)  # several ticks: still held
        assert views.list_pages(engine) == []
        assert views.get_incident(engine, incident["id"])["muted_by"] == reason  # type: ignore[index]

        assert await cli("explain", str(incident["id"]), "--url", url) == 0
        out = capsys.readouterr().out
        assert f"muted: {reason}" in out and f"muted        {reason}" in out

        # Expiring it notifies what it held at once, not at the 30 s re-check.
        assert await cli("silence", "expire", silence["id"], "--by", "eva", "--url", url) == 0
        assert f"silence #{silence['id']} expired by eva (set by jan)" in capsys.readouterr().out
        page = (await wait_for(lambda: views.list_pages(engine), timeout=5))[0]
        assert page["incident"] == incident["id"] and page["kind"] == "trigger"
        actions = [a for a, _ in timeline(app, incident["id"])]
        assert actions[actions.index("notified") - 1 :][:2] == ["muted", "notified"]

        # A second one, left in force, for the restart below.
        assert (
            await cli(
                "silence",
                "add",
                "--match",
                "device=fw",
                "--author",
                "petr",
                "--reason",
                "new firewall",
                "--for",
                "2h",
                "--url",
                url,
            )
            == 0
        )
        assert "added by petr: active until" in capsys.readouterr().out

    async with running(cfg) as (app, url):
        status, body = await call("GET", f"{url}/api/v1/silences")
        assert status == 200, body
        listed = {(s["id"], s["source"], s["created_by"]) for s in body["silences"]}
        assert ("config-1", "config", "ops") in listed
        assert any(src == "api" and who == "petr" for _, src, who in listed)
        assert silence["id"] not in {s["id"] for s in body["silences"]}  # expired
        status, body = await call("GET", f"{url}/api/v1/silences?state=all")
        assert status == 200, body
        ended = next(s for s in body["silences"] if s["id"] == silence["id"])
        assert ended["ended_by"] == "eva" and ended["created_by"] == "jan"
        assert not ended["active"]
        assert [s.author for s in app.suppressions.silences()] == ["ops", "petr"]

        assert await cli("silence", "list", "--url", url) == 0
        out = capsys.readouterr().out
        assert "2 silences" in out and "set by petr: new firewall" in out
        assert "config-1" in out and "set by ops: backups moved" in out


async def test_maintenance_from_the_cli_mutes_until_it_ends(
    tmp_path: Path,
    fleet: tuple[Listener, Listener, int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Production re-checks a muted incident every 30 s; the test cannot wait that long.
    monkeypatch.setattr(correlator_engine, "RECHECK_PAUSE", 0.1)
    _web, fw, port = fleet
    async with running(config(tmp_path, port)) as (app, url):
        assert app.engine is not None
        engine = app.engine
        # Naive times are the customer's contract zone (Europe/Prague by default).
        start = datetime.now(ZoneInfo("Europe/Prague")) - timedelta(minutes=1)
        code = await cli(
            *("maintenance", "add", "--name", "fw swap", "--customer", "acme"),
            *("--devices", "fw", "--start", start.strftime("%Y-%m-%d %H:%M:%S")),
            *("--duration", "66s", "--author", "jan", "--reason", "new box", "--url", url),
        )
        assert code == 0, capsys.readouterr().err
        assert "added by jan: active until" in capsys.readouterr().out
        window_end = start.timestamp() + 66

        await fw.down()
        incident = (await wait_for(lambda: views.list_incidents(engine)))[0]
        await wait_for(lambda: any(a == "muted" for a, _ in timeline(app, incident["id"])))
        muted = dict(timeline(app, incident["id"]))["muted"]
        assert muted.startswith("maintenance 'fw swap' (acme device fw, until ")
        assert views.list_pages(engine) == []

        page = (await wait_for(lambda: views.list_pages(engine), timeout=15))[0]
        assert page["incident"] == incident["id"]
        assert datetime.fromisoformat(page["ts"]).timestamp() >= window_end - 1

        # A weekly one, listed with who set it, then deleted; the config's stays.
        code = await cli(
            *("maintenance", "add", "--name", "backup", "--customer", "acme"),
            *("--tags", "patched", "--weekly", "sat-sun 01:00-03:00", "--author", "eva"),
            *("--url", url),
        )
        assert code == 0, capsys.readouterr().err
        capsys.readouterr()
        assert await cli("maintenance", "list", "--url", url) == 0
        out = capsys.readouterr().out
        assert "2 maintenance windows" in out  # the config's and the weekly one; fw swap is over
        assert "config-1   config" in out and "set by ops" in out
        assert "weekly sat-sun 01:00-03:00" in out and "set by eva" in out
        status, body = await call("GET", f"{url}/api/v1/maintenance")
        assert status == 200, body
        weekly = next(w for w in body["maintenance"] if w["source"] == "api")
        assert weekly["created_by"] == "eva" and weekly["weekly"] == ["sat-sun 01:00-03:00"]

        assert await cli("maintenance", "delete", "config-1", "--url", url) == 1
        assert (
            "refused (409): maintenance window config-1 is defined in the config; edit the file"
            in (capsys.readouterr().err)
        )
        assert await cli("maintenance", "delete", weekly["id"], "--by", "eva", "--url", url) == 0
        assert f"#{weekly['id']} deleted by eva" in capsys.readouterr().out
        assert await cli("maintenance", "delete", weekly["id"], "--url", url) == 1
        assert f"no active maintenance window #{weekly['id']}" in capsys.readouterr().err
        assert [w.name for w in app.suppressions.windows()] == ["patch night"]


async def test_invalid_requests_are_refused_with_the_field(
    tmp_path: Path, fleet: tuple[Listener, Listener, int], capsys: pytest.CaptureFixture[str]
) -> None:
    _web, _fw, port = fleet
    async with running(config(tmp_path, port)) as (app, url):
        silences, windows = f"{url}/api/v1/silences", f"{url}/api/v1/maintenance"

        async def refused(url: str, body: Any) -> list[str]:
            status, answer = await call("POST", url, body)
            assert status == 422, answer
            assert answer["error"] == "; ".join(answer["errors"])
            return list(answer["errors"])

        ok = {"matchers": ["device=web"], "author": "jan", "reason": "x", "expiry": in_an_hour()}
        errors = await refused(silences, {**ok, "matchers": ["bogus=1"], "author": ""})
        assert errors[0].startswith("matchers[0]: unknown label 'bogus'")
        assert errors[1] == "author: string should have at least 1 character"
        assert await refused(silences, {k: v for k, v in ok.items() if k != "author"}) == [
            "author: missing required field"
        ]
        assert await refused(silences, {k: v for k, v in ok.items() if k != "expiry"}) == [
            "expiry: required here (a permanent silence belongs in the config)"
        ]
        assert await refused(silences, {**ok, "matchers": ["device=nosuch"]}) == [
            "matchers[0]: no device is named 'nosuch'"
        ]
        assert await refused(silences, {**ok, "id": 7, "color": "red"}) == [
            "id: assigned by the daemon; leave it out",
            "color: unknown field",
        ]
        assert (await refused(silences, [ok]))[0].startswith("body: expected a JSON object")

        window = {"name": "w", "customer": "acme", "start": "2030-01-01 06:00", "duration": "2h"}
        assert await refused(windows, window) == ["author: say who sets it"]
        assert await refused(windows, {**window, "author": "jan", "customer": "globex"}) == [
            "customer: unknown customer 'globex'"
        ]
        assert await refused(windows, {**window, "author": "jan", "start": "2020-01-01 06:00"}) == [
            "duration: the window is over already"
        ]
        assert (await refused(windows, {"name": "w", "author": "jan"}))[0].startswith(
            "body: a window needs 'start'"
        )

        async with aiohttp.ClientSession() as http, http.post(silences, data=b"{nope") as resp:
            assert resp.status == 400
        assert (await call("GET", f"{silences}?state=bogus"))[0] == 400
        status, answer = await call("DELETE", f"{silences}/config-1")
        assert status == 409 and "defined in the config; edit the file" in answer["error"]
        assert (await call("DELETE", f"{silences}/999"))[0] == 404
        assert (await call("DELETE", f"{windows}/config-1"))[0] == 409

        # The CLI prints the daemon's reasons and exits 1.
        code = await cli(
            *("silence", "add", "--match", "device=nosuch", "--author", "jan"),
            *("--reason", "x", "--for", "1h", "--url", url),
        )
        assert code == 1
        err = capsys.readouterr().err
        assert "refused (422): 1 problem(s)" in err
        assert "  matchers[0]: no device is named 'nosuch'" in err
        assert app.suppressions.silences()[-1].author == "ops"  # nothing stored
    assert main(["silence", "list", "--url", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "monitord is not answering" in capsys.readouterr().err


def test_migration_matches_the_schema(db_url: str) -> None:
    engine = open_database(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert [d for d in diff if "suppressions" in repr(d)] == []
    finally:
        engine.dispose()


async def test_a_reload_swaps_the_config_entries_and_keeps_the_stored_ones(
    tmp_path: Path,
) -> None:
    first = config(tmp_path, 22)
    reloaded = first.config.model_copy(update={"silences": (), "maintenance": ()})
    now = datetime.now(UTC).timestamp()
    book = SuppressionBook(first.config, lambda: now)
    engine = open_database(f"sqlite:///{tmp_path}/book.db")
    try:
        await book.load(engine)
        body = {
            "matchers": ["customer=acme"],
            "author": "jan",
            "reason": "move",
            "expiry": in_an_hour(),
        }
        spec = parse_silence(body, now=now, config=first.config, devices=first.inventory.devices)
        added = await book.add(spec)
        assert [s.id for s in book.silences()] == [None, int(added.id)]
        book.use_config(reloaded)
        assert [s.id for s in book.silences()] == [int(added.id)]
        assert book.windows() == ()
        assert [e.id for e in book.entries("silence")] == [added.id]
    finally:
        engine.dispose()
