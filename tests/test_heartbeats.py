"""Heartbeats: pure evaluation on a fake clock (period/grace, cron across DST,
start without finish, fail and recovery, first-ping grace), params and config
validation, storage on both back-ends, and the /hb endpoints against a real
App on loopback (404, 413, a /fail opening an incident at once, recovery,
restart, and the token never leaking)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import select

from checks.base import CheckContext
from checks.heartbeat import (
    HeartbeatCheck,
    HeartbeatParams,
    HeartbeatRecord,
    Ping,
    PingKind,
    apply_ping,
    evaluate,
    token_key,
)
from monitord.api import views
from monitord.api.http import serve
from monitord.app import App
from monitord.clock import FakeClock
from monitord.config.load import ConfigErrors, LoadedConfig, config_from_dict
from monitord.heartbeats import HeartbeatBook
from monitord.logs import KeyValueFormatter
from monitord.model import Status, Target
from monitord.storage.db import open_database
from monitord.storage.heartbeats import (
    HISTORY,
    load_heartbeats,
    ping_history,
    register_heartbeats,
    save_ping,
)
from monitord.storage.schema import checks, heartbeats
from tests.conftest import free_port
from tests.test_app import wait_for

TOKEN = "hb-Tok3n-0123456789abcdefXYZ"
OTHER = "other-token-0123456789abcdef"
T0 = datetime.fromisoformat("2026-03-01T12:00:00+00:00").timestamp()
M = 60.0


def params(**kw: Any) -> HeartbeatParams:
    return HeartbeatParams.model_validate({"token": TOKEN, **kw})


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def pinged(*pings: tuple[PingKind, float, str] | tuple[PingKind, float]) -> HeartbeatRecord:
    record = HeartbeatRecord(created_at=T0)
    for p in pings:
        record = apply_ping(record, Ping(*p))
    return record


S, ST, F = PingKind.SUCCESS, PingKind.START, PingKind.FAIL
HOURLY = {"period": "1h", "grace": "10m"}

# (record, seconds after T0, status, message fragment) for period 1h + grace 10m
PERIOD_TABLE = [
    (pinged(), 30 * M, Status.OK, "waiting for the first heartbeat, expected by"),
    (pinged(), 65 * M, Status.OK, "within grace until 2026-03-01T13:10:00Z"),
    (pinged(), 70 * M, Status.CRITICAL, "no heartbeat since the check was created at 2026-03-01T"),
    (pinged((S, T0 + 5 * M)), 30 * M, Status.OK, "next expected by 2026-03-01T13:05:00Z"),
    (pinged((S, T0 + 5 * M)), 74 * M, Status.OK, "within grace until 2026-03-01T13:15:00Z"),
    (
        pinged((S, T0 + 5 * M)),
        75 * M,
        Status.CRITICAL,
        "no heartbeat since 2026-03-01T12:05:00Z, expected every 1h (+10m grace)",
    ),
    (pinged((S, T0), (ST, T0 + 5 * M)), 14 * M, Status.OK, "job running since 2026-03-01T12:05"),
    (
        pinged((S, T0), (ST, T0 + 5 * M)),
        15 * M,
        Status.CRITICAL,
        "started at 2026-03-01T12:05:00Z but never finished (grace 10m)",
    ),
    (pinged((ST, T0 + 5 * M), (S, T0 + 50 * M)), 60 * M, Status.OK, "last heartbeat at"),
    (
        pinged((S, T0), (F, T0 + 5 * M, "rsync: disk full\n  at /srv/backup")),
        6 * M,
        Status.CRITICAL,
        "job reported failure at 2026-03-01T12:05:00Z: rsync: disk full at /srv/backup",
    ),
    (pinged((F, T0 + 5 * M)), 6 * M, Status.CRITICAL, "job reported failure at 2026-03-01T12:05"),
    (pinged((ST, T0), (F, T0 + 1 * M)), 30 * M, Status.CRITICAL, "job reported failure"),
    (pinged((F, T0), (ST, T0 + 1 * M)), 2 * M, Status.CRITICAL, "job reported failure"),
    (pinged((F, T0), (S, T0 + 1 * M)), 2 * M, Status.OK, "last heartbeat at 2026-03-01T12:01"),
]


@pytest.mark.parametrize(("record", "offset", "status", "fragment"), PERIOD_TABLE)
def test_period_and_grace(
    record: HeartbeatRecord, offset: float, status: Status, fragment: str
) -> None:
    result = evaluate(params(**HOURLY), record, T0 + offset)
    assert result.status is status, result.message
    assert fragment in result.message
    assert "\n" not in result.message and TOKEN not in result.message


def test_perfdata_is_seconds_since_the_last_ping() -> None:
    assert evaluate(params(**HOURLY), pinged(), T0).perfdata == ()
    result = evaluate(params(**HOURLY), pinged((S, T0), (ST, T0 + 60)), T0 + 100)
    (perf,) = result.perfdata
    assert (perf.label, perf.value, perf.uom, perf.crit) == ("since_last_ping", 40.0, "s", "4200")


def test_a_long_failure_body_is_cut_in_the_message() -> None:
    result = evaluate(params(**HOURLY), pinged((F, T0, "x" * 5000)), T0 + 1)
    assert len(result.message) < 250 and result.message.endswith("…")


def test_fail_then_success_recovers_on_a_fake_clock() -> None:
    clock = FakeClock(T0)
    p = params(**HOURLY)
    record = HeartbeatRecord(created_at=clock.time())
    clock.advance(5 * M)
    record = apply_ping(record, Ping(F, clock.time(), "exit 2"))
    assert evaluate(p, record, clock.time()).status is Status.CRITICAL
    clock.advance(3 * M)
    record = apply_ping(record, Ping(S, clock.time()))
    assert evaluate(p, record, clock.time()).status is Status.OK
    clock.advance(69 * M)
    assert evaluate(p, record, clock.time()).status is Status.OK
    clock.advance(1 * M)  # 70 min after the success: period + grace
    assert evaluate(p, record, clock.time()).status is Status.CRITICAL


# Europe/Prague: CET→CEST on 2026-03-29 02:00, CEST→CET on 2026-10-25 03:00.
CRON_TABLE = [
    # daily at 03:00 local; the spring day has 23 hours: due 01:00Z, not 02:00Z
    ("0 3 * * *", "2026-03-28T02:00:00+00:00", "2026-03-29T01:29:59+00:00", Status.OK),
    ("0 3 * * *", "2026-03-28T02:00:00+00:00", "2026-03-29T01:30:00+00:00", Status.CRITICAL),
    # the autumn day has 25 hours: due 02:00Z, so 01:45Z is not late at all
    ("0 3 * * *", "2026-10-24T01:00:00+00:00", "2026-10-25T01:45:00+00:00", Status.OK),
    ("0 3 * * *", "2026-10-24T01:00:00+00:00", "2026-10-25T02:29:59+00:00", Status.OK),
    ("0 3 * * *", "2026-10-24T01:00:00+00:00", "2026-10-25T02:30:00+00:00", Status.CRITICAL),
    # 02:30 does not exist on the spring day: cron runs it at 03:00 CEST (01:00Z)
    ("30 2 * * *", "2026-03-28T01:30:00+00:00", "2026-03-29T01:29:59+00:00", Status.OK),
    ("30 2 * * *", "2026-03-28T01:30:00+00:00", "2026-03-29T01:30:00+00:00", Status.CRITICAL),
    # 02:30 happens twice on the autumn day: the first (00:30Z) is the run
    ("30 2 * * *", "2026-10-24T00:30:00+00:00", "2026-10-25T00:59:59+00:00", Status.OK),
    ("30 2 * * *", "2026-10-24T00:30:00+00:00", "2026-10-25T01:00:00+00:00", Status.CRITICAL),
    # and after it ran, the second 02:30 (01:30Z) is not expected again
    ("30 2 * * *", "2026-10-25T00:30:00+00:00", "2026-10-25T02:30:00+00:00", Status.OK),
]


@pytest.mark.parametrize(("schedule", "last", "now", "status"), CRON_TABLE)
def test_cron_schedule_across_dst_in_prague(
    schedule: str, last: str, now: str, status: Status
) -> None:
    record = HeartbeatRecord(created_at=at(last) - 3600, last=None)
    record = apply_ping(record, Ping(S, at(last)))
    result = evaluate(params(schedule=schedule, grace="30m"), record, at(now))
    assert result.status is status, result.message
    if status is Status.CRITICAL:
        assert f"expected at {schedule!r} Europe/Prague (+30m grace)" in result.message


def test_cron_first_ping_grace_and_time_zone() -> None:
    created = at("2026-03-02T10:00:00+00:00")  # a Monday, 11:00 in Prague
    record = HeartbeatRecord(created_at=created)
    weekly = params(schedule="0 6 * * 1", grace="1h")  # Mondays 06:00 Prague = 05:00Z
    assert evaluate(weekly, record, at("2026-03-09T05:59:59+00:00")).status is Status.OK
    late = evaluate(weekly, record, at("2026-03-09T06:00:00+00:00"))
    assert late.status is Status.CRITICAL and "since the check was created" in late.message
    in_utc = params(schedule="0 6 * * 1", grace="1h", tz="UTC")
    assert evaluate(in_utc, record, at("2026-03-09T06:59:59+00:00")).status is Status.OK


# params and config ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"token": "short-token", "period": "1d"}, "token must be 20 to 200 characters"),
        ({"token": TOKEN + "!", "period": "1d"}, "token must be 20 to 200 characters"),
        ({"token": TOKEN}, "give either period"),
        ({"token": TOKEN, "period": "1d", "schedule": "0 3 * * *"}, "give either period"),
        ({"token": TOKEN, "period": "1d", "tz": "UTC"}, "tz applies only to a cron schedule"),
        ({"token": TOKEN, "schedule": "61 3 * * *"}, "bad cron expression '61 3 * * *'"),
        ({"token": TOKEN, "schedule": "0 3 * *"}, "must be a 5-field cron expression"),
        ({"token": TOKEN, "schedule": "0 3 * * *", "tz": "Mars/Base"}, "unknown time zone"),
        ({"token": TOKEN, "period": "1d", "grace": "-5m"}, "expected a duration"),
        ({"token": TOKEN, "period": "0s"}, "greater than 0"),
    ],
)
def test_params_are_validated(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        HeartbeatParams.model_validate(data)
    messages = " ".join(e["msg"] for e in info.value.errors())
    assert message in messages
    assert data["token"] not in messages


def test_token_from_env_and_never_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HB_TOKEN", TOKEN)
    p = HeartbeatParams.model_validate({"token": "env:HB_TOKEN", "period": "1d"})
    assert p.token.get_secret_value() == TOKEN
    assert TOKEN not in repr(p) and TOKEN not in str(p.model_dump(mode="json"))
    assert p.tz == "Europe/Prague" and p.grace == 3600.0


def app_config(tmp_path: Path, listen: str, *hb: dict[str, Any]) -> LoadedConfig:
    return config_from_dict(app_dict(tmp_path, listen, *hb))


def app_dict(tmp_path: Path, listen: str, *hb: dict[str, Any]) -> dict[str, Any]:
    return {
        "daemon": {
            "state_dir": str(tmp_path),
            "initial_spread": "0.1s",
            "write_interval": "0.1s",
            "listen": listen,
        },
        "customers": [{"name": "acme"}],
        "devices": [
            {
                "name": "backup",
                "customer": "acme",
                "address": "127.0.0.1",
                "role": "server",
                "checks": [{"type": "heartbeat", **c} for c in hb],
            }
        ],
    }


def test_a_token_used_twice_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as info:
        app_config(
            tmp_path,
            "127.0.0.1:1",
            {"name": "nightly", "token": TOKEN, "period": "1d"},
            {"name": "weekly", "token": TOKEN, "schedule": "0 3 * * 0"},
        )
    (error,) = info.value.errors
    assert error.path == "devices[0].checks[1].token"
    assert error.message == (
        "already used by check 'acme/backup/nightly'; every heartbeat check needs its own"
    )
    assert TOKEN not in str(info.value)


def test_timing_defaults_make_a_heartbeat_hard_at_once(tmp_path: Path) -> None:
    loaded = app_config(tmp_path, "127.0.0.1:1", {"token": TOKEN, "period": "1d"})
    (spec,) = loaded.inventory.checks
    assert (spec.name, spec.max_attempts, spec.interval) == ("heartbeat", 1, 30.0)


# the check type and the book, in memory ------------------------------------------------


async def test_check_reads_the_book_through_its_context() -> None:
    clock = FakeClock(T0)
    book = HeartbeatBook(clock.time)
    book.index([("acme/backup/heartbeat", token_key(TOKEN), HeartbeatRecord(created_at=T0))])
    check = HeartbeatCheck()
    await check.start(CheckContext(now=clock.time, services={"heartbeats": book}))
    target = Target("acme/backup", "127.0.0.1")
    p = params(**HOURLY)
    assert (await check.run(target, p, 1.0)).status is Status.OK
    clock.advance(70 * M)
    assert (await check.run(target, p, 1.0)).status is Status.CRITICAL
    book.apply("acme/backup/heartbeat", Ping(S, clock.time()))
    assert (await check.run(target, p, 1.0)).status is Status.OK
    unknown = await check.run(target, params(period="1h", token=OTHER), 1.0)
    assert unknown.status is Status.UNKNOWN
    bare = HeartbeatCheck()
    await bare.start()
    assert (await bare.run(target, p, 1.0)).status is Status.UNKNOWN
    assert book.check_id(TOKEN) == "acme/backup/heartbeat" and book.check_id(OTHER) is None


# storage ------------------------------------------------------------------------


def test_records_and_history_are_stored_on_both_back_ends(db_url: str) -> None:
    engine = open_database(db_url)
    try:
        with engine.begin() as conn:
            register_heartbeats(conn, ["a/b/hb"], T0)
            register_heartbeats(conn, ["a/b/hb"], T0 + 999)  # keeps the first creation time
            assert load_heartbeats(conn, ["a/b/hb", "gone"]) == {
                "a/b/hb": HeartbeatRecord(created_at=T0)
            }
        record = HeartbeatRecord(created_at=T0)
        for i in range(HISTORY + 5):
            ping = Ping(F if i % 2 else S, T0 + i, f"run {i}")
            record = apply_ping(record, ping)
            with engine.begin() as conn:
                save_ping(conn, "a/b/hb", record, ping)
        with engine.connect() as conn:
            assert load_heartbeats(conn, ["a/b/hb"])["a/b/hb"] == record
            history = ping_history(conn, "a/b/hb")
        assert len(history) == HISTORY
        assert history[0].body == f"run {HISTORY + 4}" and history[-1].body == "run 5"
    finally:
        engine.dispose()


# the HTTP endpoints on a real App ------------------------------------------------


class Daemon:
    """An App and its HTTP server on loopback, with an HTTP client."""

    def __init__(self, app: App, runner: Any, http: aiohttp.ClientSession, url: str) -> None:
        self.app, self.runner, self.http, self.url = app, runner, http, url

    async def hit(self, path: str, data: bytes | None = None) -> tuple[int, str]:
        method = self.http.post if data is not None else self.http.get
        async with method(self.url + path, data=data) as resp:
            return resp.status, await resp.text()

    def state(self, check_id: str = "acme/backup/nightly") -> Any:
        assert self.app.pipeline is not None
        return self.app.pipeline.states.get(check_id)


def hb_config(tmp_path: Path, listen: str) -> LoadedConfig:
    return app_config(
        tmp_path,
        listen,
        {"name": "nightly", "token": TOKEN, "period": "1d", "grace": "1h"},
        {"name": "weekly", "token": OTHER, "schedule": "0 3 * * 0"},
    )


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    listen = f"127.0.0.1:{free_port()}"
    app = App(hb_config(tmp_path, listen))
    await app.start()
    runner = await serve(app, listen)
    try:
        async with aiohttp.ClientSession() as http:
            d = Daemon(app, runner, http, f"http://{listen}")
            await wait_for(lambda: d.state() is not None)
            yield d
    finally:
        await runner.cleanup()
        await app.stop()


async def test_unknown_token_is_404_and_a_big_body_is_413(daemon: Daemon) -> None:
    assert await daemon.hit(f"/hb/{TOKEN}") == (200, "OK")
    assert (await daemon.hit("/hb/unknown-token-0123456789abcdef"))[0] == 404
    assert (await daemon.hit("/hb/x"))[0] == 404
    assert (await daemon.hit(f"/hb/{TOKEN}/bogus"))[0] == 404
    status, text = await daemon.hit(f"/hb/{TOKEN}/fail", b"x" * (100 * 1024 + 1))
    assert status == 413 and TOKEN not in text
    assert daemon.state().status is Status.OK  # the refused fail changed nothing
    assert await daemon.hit(f"/hb/{TOKEN}/start", b"starting") == (200, "OK")


async def test_fail_opens_an_incident_at_once_and_success_resolves_it(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    engine = daemon.app.engine
    assert engine is not None
    assert daemon.state().status is Status.OK  # new check: given its first period
    started = time.monotonic()
    body = b"pg_dump: error: connection refused\n"
    assert await daemon.hit(f"/hb/{TOKEN}/fail", body) == (200, "OK")
    incident = await wait_for(lambda: views.list_incidents(engine, "open"), timeout=10.0)
    # The check's interval is 30 s: only run_soon explains an incident this fast.
    assert time.monotonic() - started < 10.0
    assert incident[0]["check"] == "acme/backup/nightly"
    output = daemon.app.pipeline.outputs["acme/backup/nightly"]  # type: ignore[union-attr]
    assert "job reported failure at" in output and "pg_dump: error" in output

    assert await daemon.hit(f"/hb/{TOKEN}") == (200, "OK")
    await wait_for(lambda: not views.list_incidents(engine, "open"), timeout=3.0)
    assert daemon.state().status is Status.OK

    # The token leaks nowhere: logs, metrics, API answers, stored params.
    outputs = [await daemon.hit(p) for p in API_PATHS]
    outputs.append(await daemon.hit(f"/api/v1/incidents/{incident[0]['id']}"))
    assert all(status == 200 for status, _ in outputs)
    metrics = outputs[0][1]
    assert 'monitord_heartbeat_pings_total{outcome="stored",signal="fail"} 1.0' in metrics
    formatter = KeyValueFormatter("%(message)s")
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    with engine.connect() as conn:
        stored = [str(row) for row in conn.execute(select(checks.c.params))]
    for text in [logged, *(t for _, t in outputs), *stored]:
        assert TOKEN not in text and OTHER not in text


API_PATHS = (
    "/metrics",
    "/api/v1/status",
    "/api/v1/problems",
    "/api/v1/incidents?state=all",
    "/api/v1/tickets",
    "/api/v1/pages",
)


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    app = App(hb_config(tmp_path, listen))
    await app.start()
    runner = await serve(app, listen)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"http://{listen}/hb/{TOKEN}/fail", data=b"exit 3") as resp,
        ):
            assert resp.status == 200
    finally:
        await runner.cleanup()
        await app.stop()
    assert app.engine is not None
    with app.engine.connect() as conn:
        created = {r.check_id: r.created_at for r in conn.execute(select(heartbeats))}

    app2 = App(hb_config(tmp_path, listen))
    await app2.start()
    runner = await serve(app2, listen)
    try:
        record = app2.heartbeats.record(token_key(TOKEN))
        assert record is not None and record.outcome is not None
        assert (record.outcome.kind, record.outcome.body) == (F, "exit 3")
        assert record.created_at == created["acme/backup/nightly"]
        pipeline = app2.pipeline
        assert pipeline is not None
        await wait_for(lambda: "exit 3" in pipeline.outputs.get("acme/backup/nightly", ""))
        assert pipeline.states["acme/backup/nightly"].hard_status is Status.CRITICAL
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://{listen}/hb/{TOKEN}") as resp,
        ):
            assert resp.status == 200
        await wait_for(lambda: pipeline.states["acme/backup/nightly"].status is Status.OK, 3.0)
    finally:
        await runner.cleanup()
        await app2.stop()


async def test_reload_rebuilds_the_token_index(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    app = App(hb_config(tmp_path, listen))
    await app.start()
    try:
        assert await app.heartbeats.ping(TOKEN, F, b"broken") == "acme/backup/nightly"
        path = tmp_path / "monitord.yaml"
        rotated = {"name": "nightly", "token": OTHER, "period": "1d"}
        path.write_text(yaml.safe_dump(app_dict(tmp_path, listen, rotated)))
        await app.reload(path)
        assert app.heartbeats.check_id(OTHER) == "acme/backup/nightly"
        assert app.heartbeats.check_id(TOKEN) is None
        assert await app.heartbeats.ping(TOKEN, S) is None
        # Same check, new token: what it was told before is kept.
        record = app.heartbeats.record(token_key(OTHER))
        assert record is not None and record.outcome is not None and record.outcome.kind is F
    finally:
        await app.stop()
