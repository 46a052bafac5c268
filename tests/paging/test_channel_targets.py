"""A policy step that targets a service rather than a person (`channel:<name>`): a
PagerDuty service hears the trigger, the acknowledgement and the resolve under the
incident's dedup key; one that fails is retried (never parked) and raises the internal
incident. (A channel that needs a person's address cannot be such a target:
tests/paging/test_config.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.channels import emulators as e
from tests.channels.cases import apprise_url
from tests.paging.harness import harness


def pagerduty(base: str) -> list[dict[str, Any]]:
    url = f"{base}/pagerduty/v2/enqueue"
    return [{"name": "pd", "kind": "pagerduty", "url": url, "routing_key": e.PAGERDUTY_KEY}]


def night(*targets: str) -> list[dict[str, Any]]:
    return [
        {"name": "night", "steps": [{"targets": list(targets), "wait": "5m"}]},
        {"name": "desk", "steps": [{"targets": ["eva"]}]},
    ]


async def test_a_pagerduty_service_follows_the_incident(tmp_path: Path) -> None:
    async with harness(
        tmp_path,
        "2026-11-25T23:00+01:00",
        extra_channels=pagerduty,
        policies=night("support/primary", "channel:pd"),
    ) as h:
        h.problem("srv")
        await h.settle()
        assert len(h.sms_to("jan")) == 1
        assert h.emu.pd_alerts == {"monitord-incident-1": "triggered"}
        await h.app.paging.acknowledge((1,), "jan", "api")
        await h.settle()
        assert h.emu.pd_alerts == {"monitord-incident-1": "acknowledged"}
        h.problem("srv", ok=True)
        await h.settle()
        assert h.emu.pd_alerts == {}
        actions = [r.json["event_action"] for r in h.emu.of("pagerduty")]
        assert actions == ["trigger", "acknowledge", "resolve"]
        assert h.timeline(1)[-1] == ("resolve", "resolved: a resolve page to channel:pd, jan")


async def test_a_failing_service_is_retried_and_raises_an_internal_incident(
    tmp_path: Path,
) -> None:
    async with harness(
        tmp_path,
        "2026-11-25T23:00+01:00",
        extra_channels=pagerduty,
        policies=night("channel:pd"),
        internal_targets=["boss"],
    ) as h:
        h.emu.modes["pagerduty"] = "retryable"
        h.problem("srv")
        await h.settle()
        await h.at("2026-11-25T23:01+01:00")  # the outbox's backoff: a second attempt
        assert len(h.emu.of("pagerduty")) >= 2 and h.emu.pd_alerts == {}
        assert h.app.correlator is not None
        internal = [i for i in h.app.correlator.by_id.values() if i.kind == "internal"]
        assert [i.title for i in internal] == [
            "monitord: paging channel pd keeps failing: "
            "pagerduty enqueue: HTTP 500: Internal error; try again"
        ]
        await h.settle()
        assert any("paging channel pd" in t for t in h.sms_to("boss"))
        h.emu.modes["pagerduty"] = "ok"
        await h.at("2026-11-25T23:10+01:00")
        assert h.emu.pd_alerts == {"monitord-incident-1": "triggered"}  # not lost
        assert {i.state for i in internal} == {"resolved"}  # the channel delivers again


def team_chat(base: str) -> list[dict[str, Any]]:
    return [{"name": "teams", "kind": "apprise", "url": apprise_url(base)}]


async def test_a_team_chat_by_apprise_is_told_of_the_page_and_the_resolve(
    tmp_path: Path,
) -> None:
    async with harness(
        tmp_path,
        "2026-11-25T23:00+01:00",
        extra_channels=team_chat,
        policies=night("support/primary", "channel:teams"),
    ) as h:
        h.problem("srv")
        await h.settle()
        assert len(h.sms_to("jan")) == 1
        h.problem("srv", ok=True)
        await h.settle()
        told = [(r.json["type"], r.json["title"]) for r in h.emu.of("apprise")]
        assert told == [
            ("failure", "P1 acme/srv: CRITICAL - srv is down"),
            ("success", "RESOLVED P1 acme/srv: CRITICAL - srv is down"),
        ]
        assert h.timeline(1)[-1] == ("resolve", "resolved: a resolve page to channel:teams, jan")
