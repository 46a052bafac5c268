"""The routing decision at explicit instants (no clock): contract, business hours,
holidays, reaction targets, maintenance, RMM noise and monitord's own problems."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.paging.routing import Decision, Facts, decide
from correlator.calendar import Calendars
from monitord.config.load import config_from_dict
from tests.paging.harness import at

PAGING: dict[str, Any] = {
    "policies": [
        {"name": "night", "steps": [{"targets": ["boss"]}]},
        {"name": "desk", "steps": [{"targets": ["boss"]}]},
        {"name": "vip", "steps": [{"targets": ["boss"]}]},
    ],
    "routes": [
        {"match": {"priorities": ["P1"], "customers": ["vip"]}, "policy": "vip"},
        {"match": {"priorities": ["P1", "P2", "P3"]}, "policy": "night"},
    ],
    "desk_policy": "desk",
    "ack_secret": "s" * 32,
}


def config(**paging: Any) -> Any:
    return config_from_dict(
        {
            "customers": [
                {"name": "covered", "contract": {"after_hours_cover": True}},
                {"name": "plain"},
                {"name": "vip", "contract": {"after_hours_cover": True}},
            ],
            "oncall": {"engineers": [{"name": "boss", "phones": ["+420777000111"]}]},
            "paging": {**PAGING, **paging},
        }
    ).config


def route(
    when: str, customer: str, priority: str = "P1", category: str = "", muted: str = "", **kw: Any
) -> Decision:
    cfg = config(**kw)
    calendar = Calendars(cfg.customers).get(customer)
    facts = Facts(priority, customer, category, muted)
    return decide(facts, cfg.paging, cfg.alerting.page_priorities, calendar, at(when))


def test_non_covered_p1_at_0200_saturday_waits_for_0800_monday() -> None:
    d = route("2026-11-28T02:00+01:00", "plain")
    assert (d.action, d.policy, d.at) == ("defer", "desk", at("2026-11-30T08:00+01:00"))
    assert d.text() == (
        "page later (policy desk): route 1; plain has no after-hours cover: the desk at the "
        "next business start, Mon 2026-11-30 08:00 Europe/Prague"
    )


def test_after_a_holiday_the_first_business_hour() -> None:
    # Wednesday 23 December 22:00: 24, 25 and 26 December are Czech public holidays,
    # then the weekend: the first business hour is Monday 28 December 08:00.
    d = route("2026-12-23T22:00+01:00", "plain")
    assert (d.action, d.at) == ("defer", at("2026-12-28T08:00+01:00"))
    assert d.reason.endswith(
        "Mon 2026-12-28 08:00 Europe/Prague (after Christmas Eve, Christmas Day, "
        "Second Day of Christmas)"
    )
    # Easter Monday 2026-04-06 is a holiday: Sunday night waits for Tuesday 08:00
    assert route("2026-04-05T23:00+02:00", "plain").at == at("2026-04-07T08:00+02:00")


def test_across_the_spring_dst_change() -> None:
    # Saturday 28 March 2026 02:00 CET; Monday 30 March 08:00 is CEST (06:00 UTC)
    d = route("2026-03-28T02:00+01:00", "plain")
    assert d.at == at("2026-03-30T08:00+02:00")


def test_covered_customer_pages_now_out_of_hours() -> None:
    d = route("2026-11-28T02:00+01:00", "covered")
    assert (d.action, d.policy) == ("page", "night")
    assert d.reason == "route 1; out of business hours, covered has after-hours cover"


def test_a_reaction_target_met_by_the_morning_waits_for_the_desk() -> None:
    # P3's reaction target is 8 h: at 07:30 Monday the 08:00 start meets it
    d = route("2026-11-30T07:30+01:00", "covered", "P3")
    assert (d.action, d.policy, d.at) == ("defer", "desk", at("2026-11-30T08:00+01:00"))
    assert "P3 reaction target (8h) is still met by the next business start" in d.reason
    # ... at 23:00 it is not (9 h to 08:00): page now
    assert route("2026-11-30T23:00+01:00", "covered", "P3").action == "page"


def test_business_hours_page_the_desk() -> None:
    d = route("2026-11-30T10:00+01:00", "plain")
    assert (d.action, d.policy) == ("page", "desk")
    assert d.reason == "route 1; business hours of plain: the desk"


def test_first_matching_route_picks_the_policy() -> None:
    assert route("2026-11-28T02:00+01:00", "vip").policy == "vip"


def test_no_matching_route_is_ticket_only() -> None:
    d = route("2026-11-28T02:00+01:00", "covered", "P4")
    assert (d.action, d.reason) == ("ticket", "P4 matches no paging route")


@pytest.mark.parametrize("category", ["rmm-agent", "rmm-disputed"])
def test_rmm_noise_never_pages(category: str) -> None:
    d = route("2026-11-30T10:00+01:00", "covered", category=category)
    assert d.action == "ticket"
    assert d.reason == (
        f"category {category}: RMM agent problems and disputed RMM failures never page"
    )


def test_monitords_own_problems_page_at_any_hour() -> None:
    d = route("2026-11-28T02:00+01:00", "plain", "P3", category="internal")
    assert (d.action, d.policy) == ("page", "internal")


def test_maintenance_pages_nobody() -> None:
    d = route("2026-11-28T02:00+01:00", "covered", muted="window 'patching'")
    assert (d.action, d.reason) == ("ticket", "in maintenance: window 'patching'")


def test_without_routes_the_page_priorities_page_the_channels() -> None:
    d = route("2026-11-28T02:00+01:00", "plain", "P2", routes=[])
    assert (d.action, d.policy) == ("page", "channels")
    assert route("2026-11-28T02:00+01:00", "plain", "P3", routes=[]).action == "ticket"
