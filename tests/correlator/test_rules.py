"""The correlator's decision functions built from config: priority with its
reason, maintenance windows, silences and off-hours workstations."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from correlator.events import Event, EventKind
from correlator.model import OPEN, Incident
from correlator.rules import build_mute, build_prioritize
from correlator.topology import Topology
from monitord.config.load import config_from_dict
from monitord.model import Status

PRAGUE = ZoneInfo("Europe/Prague")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=PRAGUE).timestamp()


LOADED = config_from_dict(
    {
        "customers": [
            {
                "name": "acme",
                "sites": [{"name": "hq"}],
                "contract": {"business_hours": "mon-fri 08:00-17:00"},
            }
        ],
        "devices": [
            {
                "name": "ws1",
                "customer": "acme",
                "site": "hq",
                "address": "127.70.0.1",
                "role": "workstation",
            },
            {
                "name": "pos",
                "customer": "acme",
                "site": "hq",
                "address": "127.70.0.2",
                "role": "workstation",
                "tags": ["always-on"],
            },
            {
                "name": "srv",
                "customer": "acme",
                "site": "hq",
                "address": "127.70.0.3",
                "role": "server",
                "criticality": "high",
            },
        ],
        "maintenance": [
            {
                "name": "patch night",
                "customer": "acme",
                "devices": ["srv"],
                "weekly": "tue 20:00-22:00",
            }
        ],
        "silences": [
            {
                "matchers": ["device=ws1", "category=disk-full"],
                "author": "jan",
                "reason": "new disk ordered",
                "expiry": "2030-01-01T00:00:00+01:00",
            }
        ],
    }
)
TOPO = Topology(LOADED.inventory, lambda check_id: None)
MUTE = build_mute(LOADED.config, lambda: TOPO)
PRIORITIZE = build_prioritize(LOADED.config, lambda: TOPO)


def incident(device: str, category: str = "host-down") -> Incident:
    return Incident(
        1,
        "fp",
        "check",
        OPEN,
        "P3",
        int(Status.CRITICAL),
        "t",
        "acme",
        "hq",
        f"acme/{device}",
        f"acme/{device}/ping",
        category,
        0.0,
        0.0,
    )


def test_workstation_off_at_night_is_expected() -> None:
    assert (
        MUTE(incident("ws1"), at("2026-11-21 03:00"))
        == "workstation outside business hours (expected to be off)"
    )  # Saturday
    assert MUTE(incident("ws1"), at("2026-11-23 08:20")).startswith(
        "workstation in the first hour"
    )  # Monday morning grace
    assert MUTE(incident("ws1"), at("2026-11-23 10:00")) == ""
    assert MUTE(incident("pos"), at("2026-11-21 03:00")) == ""  # always-on
    assert MUTE(incident("srv"), at("2026-11-21 03:00")) == ""  # servers are not excused


def test_holidays_are_not_business_hours() -> None:
    # 17 November is a Czech public holiday (a Tuesday in 2026)
    assert "outside business hours" in MUTE(incident("ws1"), at("2026-11-17 10:00"))


def test_maintenance_and_silence_reasons() -> None:
    reason = MUTE(incident("srv"), at("2026-11-24 21:00"))  # a Tuesday evening
    assert reason.startswith("maintenance 'patch night'")
    assert MUTE(incident("srv"), at("2026-11-24 22:30")) == ""
    silenced = MUTE(incident("ws1", "disk-full"), at("2026-11-23 10:00"))
    assert "by jan" in silenced and "new disk ordered" in silenced


def test_priority_comes_with_its_reason() -> None:
    event = Event(
        0,
        "check",
        EventKind.PROBLEM,
        "fp",
        "acme",
        "acme/srv",
        "acme/srv/x",
        Status.CRITICAL,
        "down",
        category="backup-failed",
    )
    priority, why = PRIORITIZE(event)
    assert priority == "P1" and why.startswith("P1 because:")
    assert "backup-failed" in why and "criticality high" in why
    ws = Event(
        0,
        "check",
        EventKind.PROBLEM,
        "fp",
        "acme",
        "acme/ws1",
        "acme/ws1/x",
        Status.CRITICAL,
        "down",
        category="host-down",
    )
    assert PRIORITIZE(ws)[0] == "P4"
    unknown = Event(
        0, "ingest:x", EventKind.PROBLEM, "fp", "acme", None, None, Status.CRITICAL, "?"
    )
    priority, why = PRIORITIZE(unknown)  # kept and ticketed, never paged on its own
    assert priority == "P4" and why.startswith("P4 because:")
