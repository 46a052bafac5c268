"""Maintenance windows and silences: scope, recurrence across DST, reasons, config errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from correlator.events import Event, EventKind
from correlator.windows import (
    active_windows,
    customer_zones,
    event_labels,
    matches,
    matching_silences,
    window_end,
)
from monitord.config import ConfigErrors, load_config
from monitord.config.model import Customer, MaintenanceWindow, Matcher, Silence
from monitord.inventory import Device
from monitord.model import Status

PRAGUE = ZoneInfo("Europe/Prague")
ZONES = {"acme": "Europe/Prague", "globex": "America/New_York"}
SRV = {
    "customer": "acme",
    "site": "hq",
    "device": "srv-1",
    "device_id": "acme/srv-1",
    "check": "ping",
    "category": "host-down",
    "source": "check",
    "severity": "critical",
    "role": "server",
    "tags": "windows,vip",
}


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0, zone: ZoneInfo = PRAGUE) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=zone).timestamp()


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp()


def window(**spec: Any) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate({"name": "patch tuesday", "customer": "acme", **spec})


def reasons(
    windows: list[MaintenanceWindow], now: float, labels: dict[str, str] = SRV
) -> list[str]:
    return [s.reason for s in active_windows(windows, labels, now, zones=ZONES)]


# -- maintenance windows ------------------------------------------------------------


def test_one_off_window_in_the_customers_zone() -> None:
    w = window(start="2026-11-24 20:00", end="2026-11-24 22:00")  # CET: 19:00-21:00 UTC
    assert reasons([w], at(2026, 11, 24, 19, 59)) == []
    assert reasons([w], at(2026, 11, 24, 20)) == [
        "maintenance 'patch tuesday' (acme, until 2026-11-24T21:00Z)"
    ]
    assert reasons([w], at(2026, 11, 24, 22)) == []
    found = active_windows([w], SRV, at(2026, 11, 24, 21), zones=ZONES)
    assert found[0].until == utc(2026, 11, 24, 21) and found[0].source is w
    assert window_end(w, at(2026, 11, 24, 21), zones=ZONES) == utc(2026, 11, 24, 21)
    assert window_end(w, at(2026, 11, 24, 23), zones=ZONES) is None


def test_one_off_window_with_offset_or_duration_or_own_zone() -> None:
    aware = window(start="2026-11-24T20:00:00+00:00", end="2026-11-24T22:00:00Z")
    assert reasons([aware], utc(2026, 11, 24, 21, 30))
    assert not reasons([aware], utc(2026, 11, 24, 19, 30))
    timed = window(start="2026-11-24 20:00", duration="90m")
    assert window_end(timed, at(2026, 11, 24, 20), zones=ZONES) == at(2026, 11, 24, 21, 30)
    zoned = window(start="2026-11-24 20:00", end="2026-11-24 21:00", timezone="UTC")
    assert reasons([zoned], utc(2026, 11, 24, 20, 30))
    # no customer and no zone: UTC
    everyone = MaintenanceWindow.model_validate(
        {"name": "upgrade", "start": "2026-11-24 20:00", "duration": 60}
    )
    labels = {**SRV, "customer": "globex"}
    assert reasons([everyone], utc(2026, 11, 24, 20), labels) == [
        "maintenance 'upgrade' (all customers, until 2026-11-24T20:01Z)"
    ]


def test_weekly_window_keeps_its_wall_clock_time_across_dst() -> None:
    w = window(weekly="tue 20:00-22:00")
    summer, winter = at(2026, 10, 20, 21), at(2026, 10, 27, 21)  # both Tuesdays, 21:00 local
    assert reasons([w], summer) == ["maintenance 'patch tuesday' (acme, until 2026-10-20T20:00Z)"]
    assert reasons([w], winter) == ["maintenance 'patch tuesday' (acme, until 2026-10-27T21:00Z)"]
    assert reasons([w], at(2026, 10, 27, 19, 59)) == []
    assert reasons([w], at(2026, 10, 28, 21)) == []  # Wednesday


def test_weekly_overnight_window_and_several_ranges() -> None:
    w = window(weekly=["sat 22:00-02:00", "wed 12:00-13:00"])
    assert window_end(w, at(2026, 11, 22, 1), zones=ZONES) == at(2026, 11, 22, 2)  # Sunday 01:00
    assert window_end(w, at(2026, 11, 21, 23), zones=ZONES) == at(2026, 11, 22, 2)
    assert window_end(w, at(2026, 11, 25, 12, 30), zones=ZONES) == at(2026, 11, 25, 13)
    assert window_end(w, at(2026, 11, 22, 3), zones=ZONES) is None


def test_back_to_back_ranges_are_one_occurrence() -> None:
    w = window(weekly=["sat 00:00-00:00", "sun 00:00-06:00"])
    assert window_end(w, at(2026, 11, 21, 9), zones=ZONES) == at(2026, 11, 22, 6)


def test_recurring_window_bounded_by_start_and_end() -> None:
    w = window(weekly="tue 20:00-22:00", start="2026-11-01 00:00", end="2026-11-24 21:00")
    assert not reasons([w], at(2026, 10, 27, 21))  # before the first
    assert reasons([w], at(2026, 11, 17, 21))
    assert window_end(w, at(2026, 11, 24, 20, 30), zones=ZONES) == at(2026, 11, 24, 21)
    assert not reasons([w], at(2026, 11, 24, 21, 30))  # cut short by `end`
    assert not reasons([w], at(2026, 12, 1, 21))


def test_cron_window_in_local_time_across_dst() -> None:
    w = window(cron="0 20 * * 2", duration="2h")  # Tuesdays 20:00 local
    assert window_end(w, at(2026, 10, 20, 21), zones=ZONES) == utc(2026, 10, 20, 20)
    assert window_end(w, at(2026, 10, 27, 21), zones=ZONES) == utc(2026, 10, 27, 21)
    assert window_end(w, at(2026, 10, 27, 22), zones=ZONES) is None
    assert window_end(w, at(2026, 10, 27, 19, 59), zones=ZONES) is None
    # first Sunday of the month at 03:00 for 4 h ("1-7 * sun" would be days 1-7 OR Sundays)
    monthly = window(cron="0 3 * * sun#1", duration="4h")
    assert window_end(monthly, at(2026, 11, 1, 6), zones=ZONES) == at(2026, 11, 1, 7)
    assert window_end(monthly, at(2026, 11, 8, 6), zones=ZONES) is None


def test_overlapping_cron_occurrences_chain() -> None:
    w = window(cron="0 20,21 * * 2", duration="90m")  # 20:00-21:30 and 21:00-22:30
    assert window_end(w, at(2026, 11, 24, 20, 10), zones=ZONES) == at(2026, 11, 24, 22, 30)
    assert window_end(w, at(2026, 11, 24, 22, 10), zones=ZONES) == at(2026, 11, 24, 22, 30)


@pytest.mark.parametrize(
    ("scope", "labels", "hit"),
    [
        ({}, {}, True),
        ({}, {"customer": "globex"}, False),
        ({"sites": "hq"}, {}, True),
        ({"sites": "acme/hq"}, {}, True),
        ({"sites": "branch"}, {}, False),
        ({"devices": "srv-1"}, {}, True),
        ({"devices": ["acme/srv-1"]}, {}, True),
        ({"devices": ["srv-2", "srv-3"]}, {}, False),
        ({"tags": "vip"}, {}, True),
        ({"tags": ["linux"]}, {}, False),
        ({"tags": ["vip"], "sites": ["hq"]}, {"site": "branch"}, False),
        ({"tags": ["vip"]}, {"tags": ""}, False),
    ],
)
def test_scope(scope: dict[str, Any], labels: dict[str, str], hit: bool) -> None:
    w = window(start="2026-11-24 20:00", end="2026-11-24 22:00", **scope)
    assert bool(reasons([w], at(2026, 11, 24, 21), {**SRV, **labels})) is hit


def test_reason_names_the_narrowed_scope() -> None:
    w = window(start="2026-11-24 20:00", end="2026-11-24 22:00", sites="hq", devices="srv-1 srv-2")
    assert reasons([w], at(2026, 11, 24, 21)) == [
        "maintenance 'patch tuesday' (acme site hq devices srv-1 srv-2, until 2026-11-24T21:00Z)"
    ]


def test_customer_zones() -> None:
    customers = [
        Customer.model_validate({"name": "acme"}),
        Customer.model_validate({"name": "globex", "contract": {"timezone": "America/New_York"}}),
    ]
    assert customer_zones(customers) == ZONES
    w = window(customer="globex", start="2026-11-24 20:00", end="2026-11-24 21:00")
    labels = {**SRV, "customer": "globex"}
    assert reasons([w], utc(2026, 11, 25, 1, 30), labels)  # 20:30 in New York


@settings(max_examples=100, deadline=None)
@given(
    spec=st.sampled_from(
        [
            {"weekly": "tue 20:00-22:00"},
            {"weekly": ["sat 22:00-02:00", "sun 01:00-03:00"]},
            {"weekly": "mon-sun 02:00-03:00"},  # inside the DST gap / fold
            {"cron": "30 2 * * *", "duration": "1h"},
            {"cron": "*/20 * * * *", "duration": "10m"},
        ]
    ),
    now=st.floats(min_value=utc(2025, 1, 1), max_value=utc(2028, 1, 1)),
    frac=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_an_active_window_stays_active_until_its_end(
    spec: dict[str, Any], now: float, frac: float
) -> None:
    w = window(**spec)
    end = window_end(w, now, zones=ZONES)
    if end is None:
        return
    assert end > now
    inside = now + (end - now) * frac
    if inside < end:  # the product can round up to `end` itself
        assert window_end(w, inside, zones=ZONES) == end
    assert window_end(w, end, zones=ZONES) is None


# -- silences ------------------------------------------------------------------------


def silence(*matchers: str, **kw: Any) -> Silence:
    return Silence.model_validate(
        {"matchers": matchers, "author": "jan", "reason": "router swap", **kw}
    )


@pytest.mark.parametrize(
    ("matcher", "hit"),
    [
        ("device=srv-1", True),
        ("device=srv-2", False),
        ("device!=srv-2", True),
        ('check="ping"', True),
        ("check=~pi.*", True),
        ("check=~pi", False),  # regexes match the whole value
        ("check!~disk.*", True),
        ("category=~host-down|service-down", True),
        ("site=", False),
        ("site!=", True),
        ("tags=vip", True),
        ("tags=win", False),
        ("tags=~win.*", True),
        ("tags!=vip", False),
        ("severity=critical", True),
    ],
)
def test_matchers(matcher: str, hit: bool) -> None:
    assert matches(Matcher.model_validate(matcher), SRV) is hit


def test_a_missing_label_is_empty() -> None:
    labels = {"customer": "acme"}
    assert matches(Matcher.model_validate("site="), labels)
    assert matches(Matcher.model_validate("site!=hq"), labels)
    assert not matches(Matcher.model_validate("tags=~.+"), labels)
    assert matches(Matcher.model_validate("tags="), labels)


def test_matching_silences_and_their_reasons() -> None:
    silences = [
        silence("customer=acme", "device=~srv-.*", id=12, expiry="2026-11-24T22:00:00Z"),
        silence("customer=acme", "device=rtr-1"),
        silence(
            "category=host-down", author="eva", reason="known outage", start="2026-11-25T00:00Z"
        ),
    ]
    found = matching_silences(silences, SRV, utc(2026, 11, 24, 21))
    assert [s.reason for s in found] == ["silence #12 by jan: router swap"]
    assert found[0].until == utc(2026, 11, 24, 22) and found[0].kind == "silence"
    assert matching_silences(silences, SRV, utc(2026, 11, 24, 22)) == []
    later = matching_silences(silences, SRV, utc(2026, 11, 25, 1))
    assert [(s.reason, s.until) for s in later] == [("silence by eva: known outage", None)]


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"matchers": ["devcie=srv-1"]}, "unknown label 'devcie' (known: customer, site,"),
        ({"matchers": ["device"]}, "expected a matcher like 'device=srv-1'"),
        ({"matchers": ["check=~disk("]}, "bad regex 'disk(': missing ), unterminated subpattern"),
        ({"matchers": []}, "a silence needs at least one matcher"),
        ({"matchers": ["site!=hq", "check=~.*"]}, "the silence would mute everything"),
        ({"start": "2026-11-24 20:00:00"}, "Input should have timezone info"),
        ({"start": "2026-11-24T20:00Z", "expiry": "2026-11-24T19:00Z"}, "expires (2026-11-24"),
        ({"author": ""}, "at least 1 character"),
    ],
)
def test_silence_errors(spec: dict[str, Any], error: str) -> None:
    data = {"matchers": ["device=srv-1"], "author": "jan", "reason": "r", **spec}
    with pytest.raises(ValidationError) as info:
        Silence.model_validate(data)
    assert error in str(info.value)


def test_models_round_trip_through_json() -> None:
    s = silence("customer=acme", 'check=~"disk.*"', id=3, expiry="2026-11-24T22:00:00+01:00")
    assert Silence.model_validate_json(s.model_dump_json()) == s
    assert str(s.matchers[1]) == "check=~disk.*"
    for w in (
        window(weekly=["sat 22:00-02:00"], sites="hq", tags="vip"),
        window(cron="0 20 * * 2", duration="2h"),
        window(start="2026-11-24 20:00", end="2026-11-24T22:00"),
    ):
        assert MaintenanceWindow.model_validate_json(w.model_dump_json()) == w


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({}, "a window needs 'start' and 'end' (or 'weekly' or 'cron')"),
        ({"start": "2026-11-24 20:00"}, "a one-off window needs either 'end' or 'duration'"),
        ({"weekly": "tue 20:00-22:00", "cron": "0 20 * * 2"}, "either 'weekly' or 'cron'"),
        ({"cron": "0 20 * * 2"}, "a cron window needs a 'duration'"),
        ({"cron": "0 25 * * 2", "duration": 60}, "bad cron expression '0 25 * * 2'"),
        ({"weekly": "tue 20:00-22:00", "duration": 60}, "takes its length from its hours"),
        ({"weekly": "someday"}, "expected business hours like 'mon-fri 08:00-17:00'"),
        ({"start": "2026-11-24 20:00", "end": "2026-11-24 19:00"}, "window ends (2026-11-24"),
        ({"start": "2026-11-24 20:00", "end": "2026-11-24T21:00Z"}, "both with or both without"),
        ({"start": "2026-11-24 20:00", "duration": 0}, "duration must be positive"),
        ({"timezone": "Mars/Olympus", "weekly": "tue 20:00-22:00"}, "unknown time zone"),
    ],
)
def test_window_errors(spec: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError) as info:
        window(**spec)
    assert error in str(info.value)


def test_event_labels() -> None:
    device = Device(
        id="acme/srv-1",
        name="srv-1",
        customer="acme",
        site="hq",
        address="192.0.2.5",
        role="server",
        os="",
        criticality="normal",
        tags=("windows", "vip"),
        parent_id=None,
    )
    event = Event(
        ts=0.0,
        source="check",
        kind=EventKind.PROBLEM,
        fingerprint="f",
        customer="acme",
        device_id="acme/srv-1",
        check_id="acme/srv-1/ping",
        status=Status.CRITICAL,
        message="down",
        category="host-down",
    )
    assert event_labels(event, device) == SRV
    bare = event_labels(event, category="unreachable")
    assert bare["category"] == "unreachable" and bare["device_id"] == "acme/srv-1"
    assert "site" not in bare


# -- config cross-checks ----------------------------------------------------------

CONFIG = """\
customers:
  - name: acme
    sites: [{name: hq}]
    contract: {holidays_country: CZ}
  - name: globex
    contract: {timezone: America/New_York, holidays_country: US, holidays_subdivision: NY}
devices:
  - {name: srv-1, customer: acme, site: hq, address: 192.0.2.5, role: server}
  - {name: rtr-1, customer: globex, address: 192.0.2.6, role: network}
maintenance:
  - name: patch tuesday
    customer: acme
    sites: [hq]
    weekly: tue 20:00-22:00
  - name: core upgrade
    devices: [globex/rtr-1]
    start: 2026-11-24 20:00
    end: 2026-11-24 23:00
    timezone: America/New_York
silences:
  - matchers: [customer=acme, "check=~disk.*"]
    author: jan
    reason: disks are being replaced
    expiry: 2026-12-01T00:00:00+01:00
"""


def load(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "monitord.yaml"
    path.write_text(text)
    with pytest.raises(ConfigErrors) as info:
        load_config(path)
    return [str(e).replace(str(tmp_path) + "/", "") for e in info.value.errors]


def test_example_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "monitord.yaml"
    path.write_text(CONFIG)
    config = load_config(path).config
    assert [w.name for w in config.maintenance] == ["patch tuesday", "core upgrade"]
    assert config.silences[0].matchers[1] == Matcher(name="check", op="=~", value="disk.*")
    assert config.customers[1].contract.holidays_subdivision == "NY"


def test_unknown_scopes_are_located_errors(tmp_path: Path) -> None:
    text = (
        CONFIG.replace("sites: [hq]", "sites: [hq, branch, globex/hq]")
        .replace("devices: [globex/rtr-1]", "devices: [globex/rtr-9, rtr-1]")
        .replace("customer=acme,", "customer=acmee, device=srv-9, site=hq,")
        .replace(
            "silences:",
            "  - {name: other, customer: initech, cron: '0 1 * * *', duration: 1h}\n"
            "  - {name: patch tuesday, customer: acme, weekly: wed 20:00-22:00}\n"
            "silences:",
        )
    )
    assert load(tmp_path, text) == [
        "monitord.yaml:13: maintenance[0].sites[1]: unknown site 'branch' of 'acme'",
        "monitord.yaml:13: maintenance[0].sites[2]: site 'globex/hq' is not a site of 'acme'",
        "monitord.yaml:16: maintenance[1].devices[0]: unknown device 'globex/rtr-9'",
        "monitord.yaml:16: maintenance[1].devices[1]: device 'rtr-1' needs its customer:"
        " write 'customer/rtr-1' or set 'customer'",
        "monitord.yaml:20: maintenance[2].customer: unknown customer 'initech'",
        "monitord.yaml:21: maintenance[3].name: duplicate maintenance window 'patch tuesday'",
        "monitord.yaml:23: silences[0].matchers[0]: no customer is named 'acmee'",
        "monitord.yaml:23: silences[0].matchers[1]: no device is named 'srv-9'",
    ]


def test_unknown_holiday_country_and_subdivision(tmp_path: Path) -> None:
    text = CONFIG.replace("holidays_country: CZ", "holidays_country: XX").replace(
        "holidays_subdivision: NY", "holidays_subdivision: QQ"
    )
    errs = load(tmp_path, text)
    assert errs[0] == (
        "monitord.yaml:4: customers[0].contract.holidays_country: unknown holidays country"
        " 'XX' (an ISO 3166 code such as 'CZ', or '' for none)"
    )
    assert errs[1].startswith(
        "monitord.yaml:6: customers[1].contract.holidays_subdivision: unknown subdivision"
        " 'QQ' of 'US' (known: AK, AL, "
    )
    assert len(errs) == 2


def test_model_errors_are_located(tmp_path: Path) -> None:
    text = CONFIG.replace(
        "weekly: tue 20:00-22:00", "weekly: tue 20:00-22:00\n    cron: '* * * * *'"
    )
    text = text.replace("matchers: [customer=acme,", "matchers: [custmer=acme,")
    assert load(tmp_path, text) == [
        "monitord.yaml:11: maintenance[0]: a window is either 'weekly' or 'cron', not both",
        "monitord.yaml:22: silences[0].matchers[0]: unknown label 'custmer' (known: customer,"
        " site, device, device_id, check, category, source, severity, role, tags)",
    ]
