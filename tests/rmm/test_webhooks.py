"""RMM webhook parsers: Tactical's alert action rendered from the documented
template by the Tactical emulator, and monitord's generic schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from monitord.lab.rmm_tactical import TacticalAgent, TacticalCheck, TacticalEmulator, TacticalTask
from monitord.sources.rmm.base import Category, FailureKind
from monitord.sources.rmm.tactical import TacticalConfig, TacticalSource
from monitord.sources.rmm.webhooks import (
    GENERIC_FIELDS,
    TACTICAL_RESOLVED_TEMPLATE,
    TACTICAL_TEMPLATE,
    Webhook,
    WebhookError,
    parse_generic,
    parse_tactical,
)
from tests.conftest import free_port

NOW = 1741944605.0


def tactical() -> tuple[TacticalEmulator, TacticalCheck]:
    emu = TacticalEmulator(api_key="tactical-key-0123456789", clock=lambda: NOW)
    pk = emu.add_agent(
        TacticalAgent(
            "RkTqvYbW",
            "NFL-WS001",
            1,
            "Northfield",
            11,
            "Head Office",
            last_seen=NOW - 60,
            logged_in_username="NORTHFIELD\\amoreau",
        )
    )
    check = TacticalCheck(
        41,
        pk,
        "diskspace",
        "Disk Space Check: Drive C: -  Warning Threshold: 25% Error Threshold: 10%",
        status="failing",
        alert_severity="error",
        more_info='Disk C: - 8.1% free "low"',
        fail_count=3,
    )
    emu.add_check(check)
    return emu, check


def test_the_documented_template_is_json_with_tacticals_placeholders() -> None:
    for template in (TACTICAL_TEMPLATE, TACTICAL_RESOLVED_TEMPLATE):
        fields = json.loads(template)
        assert fields["monitord"] == "tactical-alert/1"
        assert all(v.startswith("{{") for k, v in fields.items() if k not in ("monitord", "event"))
    assert json.loads(TACTICAL_RESOLVED_TEMPLATE)["event"] == "resolved"


async def test_tactical_check_alert_and_its_resolution_match_the_adapters_key() -> None:
    emu, check = tactical()
    alert = emu.raise_alert(check, check.agent_pk)
    failed = parse_tactical(emu.render_webhook(TACTICAL_TEMPLATE, alert))
    assert failed.failure is not None and failed.clearance is None and failed.problem
    f = failed.failure
    assert (f.key, f.device_id, f.kind, f.category, f.check_type) == (
        "RkTqvYbW:check:41",
        "RkTqvYbW",
        FailureKind.CHECK,
        Category.DISK_SPACE,
        "diskspace",
    )
    assert f.description == check.readable_desc
    assert f.output == 'Disk C: - 8.1% free "low"' and f.status == "error"
    assert f.started_at == NOW
    assert (failed.device_name, failed.client, failed.site) == (
        "NFL-WS001",
        "Northfield",
        "Head Office",
    )
    resolved = parse_tactical(emu.render_webhook(TACTICAL_RESOLVED_TEMPLATE, alert))
    assert resolved == Webhook(
        None, "RkTqvYbW:check:41", "RkTqvYbW", "NFL-WS001", "Northfield", "Head Office"
    )
    await emu.start()
    src = TacticalSource(TacticalConfig(url=emu.url, api_key=emu.api_key))
    try:
        polled = await src.failures()
    finally:
        await src.aclose()
        await emu.close()
    assert [p.key for p in polled] == [f.key]  # a webhook and a poll name the same failure
    assert polled[0].started_at == f.started_at == NOW  # and give it the same start


async def test_a_failed_task_is_the_same_failure_pushed_and_polled() -> None:
    """Tactical shows a failed task only by its alert: the poll reads the alerts, so
    the next poll after the webhook does not clear what the webhook reported."""
    emu, check = tactical()
    task = TacticalTask(7, check.agent_pk, "Clean Temp Files")
    emu.add_task(task)
    alert = emu.raise_alert(None, check.agent_pk, task=task, severity="warning")
    pushed = parse_tactical(emu.render_webhook(TACTICAL_TEMPLATE, alert)).failure
    assert pushed is not None
    assert (pushed.key, pushed.kind, pushed.description, pushed.status) == (
        "RkTqvYbW:task:7",
        FailureKind.TASK,
        "Clean Temp Files",
        "warning",
    )
    async with emu:
        src = TacticalSource(TacticalConfig(url=emu.url, api_key=emu.api_key))
        try:
            polled = {f.key: f for f in await src.failures()}
            assert polled[pushed.key] == pushed
            emu.resolve_alert(alert["id"])
            assert pushed.key not in {f.key for f in await src.failures()}
        finally:
            await src.aclose()
    resolved = parse_tactical(emu.render_webhook(TACTICAL_RESOLVED_TEMPLATE, alert))
    assert resolved.clearance == pushed.key


async def test_tactical_availability_alert_posted_over_http() -> None:
    emu, check = tactical()
    emu.agents[check.agent_pk].last_seen = NOW - 3600
    alert = emu.raise_alert(None, check.agent_pk)
    got: list[Webhook] = []
    errors: list[str] = []

    async def receive(request: web.Request) -> web.Response:
        try:
            got.append(parse_tactical(await request.read()))
        except WebhookError as exc:
            errors.append(str(exc))
            return web.json_response({"error": str(exc), "field": exc.field}, status=400)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/rmm", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        url = f"http://127.0.0.1:{port}/rmm"
        assert await emu.post_webhook(url, TACTICAL_TEMPLATE, alert) == 200
        assert await emu.post_webhook(url, TACTICAL_RESOLVED_TEMPLATE, alert) == 200
        broken = TACTICAL_TEMPLATE.replace('"failure"', '"fired"')
        assert await emu.post_webhook(url, broken, alert) == 400
    finally:
        await runner.cleanup()
    assert errors == ["field 'event': expected one of failure, resolved, got 'fired'"]
    problem, clearance = got
    assert problem.failure is not None
    assert (problem.failure.key, problem.failure.kind) == (
        "RkTqvYbW:availability",
        FailureKind.OVERDUE,
    )
    assert problem.failure.category == Category.AVAILABILITY
    assert problem.failure.description == "NFL-WS001 in Northfield, Head Office is overdue."
    assert clearance.clearance == "RkTqvYbW:availability"


def test_tactical_task_alert_and_malformed_payloads() -> None:
    body: dict[str, Any] = {
        "monitord": "tactical-alert/1",
        "event": "failure",
        "alert_type": "task",
        "agent_id": "AbC",
        "task_id": "7",
        "message": "PC1 has task: Defrag that failed.",
        "alert_time": "2025-03-14T09:20:03.114501Z",
        "check_id": "{{alert.assigned_check.id}}",
    }
    task = parse_tactical(body).failure
    assert task is not None
    assert (task.key, task.kind, task.category, task.description) == (
        "AbC:task:7",
        FailureKind.TASK,
        Category.TASK,
        "Defrag",
    )
    assert task.started_at == pytest.approx(1741944003.114501)
    bad: list[tuple[Any, str]] = [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        ({**body, "monitord": "other/2"}, "monitord"),
        ({**body, "event": None}, "event"),
        ({**body, "alert_type": "custom"}, "alert_type"),
        ({**body, "agent_id": "{{agent.agent_id}}"}, "agent_id"),
        ({**body, "alert_type": "check"}, "check_id"),  # check_id left unfilled
        ({**body, "task_id": ""}, "task_id"),
        ({**body, "alert_time": "yesterday"}, "alert_time"),
        ({**body, "message": {"text": "x"}}, "message"),
        ({**body, "agent_id": "a" * 101}, "agent_id"),
        ({**body, "task_id": "9" * 51}, "task_id"),
    ]
    for payload, field in bad:
        with pytest.raises(WebhookError) as caught:
            parse_tactical(payload)
        assert caught.value.field == field, payload
        assert str(caught.value).startswith(f"field {field!r}: ")


def test_generic_problem_and_clearance() -> None:
    body = {
        "source": "datto",
        "device_id": "dev-77",
        "device": "ACME-SRV1",
        "client": "Acme",
        "site": "HQ",
        "key": "disk-c",
        "category": "disk-space",
        "status": "problem",
        "description": "Disk C: below 10%",
        "output": "C: 4% free",
        "started_at": "2025-03-14T10:00:00+01:00",
        "consecutive_fails": 4,
        "check_type": "disk",
    }
    assert set(body) == GENERIC_FIELDS - {"kind"}
    parsed = parse_generic(json.dumps(body).encode())
    f = parsed.failure
    assert f is not None and parsed.device_name == "ACME-SRV1"
    assert (f.key, f.device_id, f.kind, f.category, f.check_type) == (
        "dev-77:disk-c",
        "dev-77",
        FailureKind.CHECK,
        Category.DISK_SPACE,
        "disk",
    )
    assert (f.description, f.output, f.consecutive_fails) == ("Disk C: below 10%", "C: 4% free", 4)
    assert f.started_at == 1741942800.0
    ok = parse_generic({"device": "ACME-SRV1", "key": "disk-c", "status": "ok"})
    assert (ok.failure, ok.clearance, ok.device_id) == (None, "ACME-SRV1:disk-c", "ACME-SRV1")
    down = parse_generic(
        {
            "device": "PC9",
            "kind": "offline",
            "status": "problem",
            "description": "Agent offline",
            "started_at": 1741940000,
        }
    )
    assert down.failure is not None
    assert (down.failure.key, down.failure.kind, down.failure.category) == (
        "PC9:offline",
        FailureKind.OFFLINE,
        Category.AVAILABILITY,
    )
    assert down.failure.started_at == 1741940000.0
    assert (
        parse_generic({"device": "PC9", "kind": "offline", "status": "ok"}).clearance
        == "PC9:offline"
    )


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"status": "down"}, "status", "expected one of problem, ok, got 'down'"),
        ({"status": None}, "status", "missing"),
        ({"colour": "red"}, "colour", "unknown field"),
        ({"device": "", "device_id": None}, "device_id", "give device_id or device"),
        ({"key": ""}, "key", "missing"),
        ({"category": "weather"}, "category", "unknown 'weather'"),
        ({"kind": "alarm"}, "kind", "expected one of"),
        ({"consecutive_fails": 0}, "consecutive_fails", "from 1 to"),
        ({"consecutive_fails": True}, "consecutive_fails", "from 1 to"),
        ({"consecutive_fails": 2**31}, "consecutive_fails", "from 1 to 2147483647"),
        ({"device_id": "d" * 101}, "device_id", "longer than 100 characters"),
        ({"device": "n" * 101}, "device", "longer than 100 characters"),
        ({"key": "k" * 100}, "key", "longer than 99 characters"),
        ({"started_at": float("nan")}, "started_at", "Unix seconds"),
        ({"started_at": -1}, "started_at", "Unix seconds"),
        ({"started_at": "0001-01-01T00:00:00+00:00"}, "started_at", "out of range"),
        ({"started_at": "2025-03-14T10:00:00"}, "started_at", "no UTC offset"),
        ({"started_at": "soon"}, "started_at", "ISO-8601"),
        ({"description": " "}, "description", "missing"),
        ({"output": ["a"]}, "output", "expected text"),
    ],
)
def test_generic_rejects_with_the_field_named(
    change: dict[str, Any], field: str, words: str
) -> None:
    body = {"device": "PC1", "key": "k", "status": "problem", "description": "d", **change}
    with pytest.raises(WebhookError) as caught:
        parse_generic(body)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_generic_rejects_non_objects() -> None:
    for body in (b"", b"null", b'"text"', "\xff".encode("latin-1")):
        with pytest.raises(WebhookError) as caught:
            parse_generic(body)
        assert caught.value.field == "body"
