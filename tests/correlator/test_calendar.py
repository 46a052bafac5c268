"""Business calendars: hours in the customer's zone, Czech holidays, DST, overnight hours."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from correlator.calendar import BusinessCalendar, Calendars
from monitord.config.model import Contract, Customer

PRAGUE = ZoneInfo("Europe/Prague")
HOUR = 3600.0


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0, zone: ZoneInfo = PRAGUE) -> float:
    """Wall-clock time in `zone` as an epoch float."""
    return datetime(y, mo, d, h, mi, tzinfo=zone).timestamp()


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp()


def calendar(**contract: Any) -> BusinessCalendar:
    return BusinessCalendar(Contract.model_validate(contract))


DEFAULT = calendar()  # mon-fri 08:00-17:00, Europe/Prague, CZ holidays
ROUND_THE_CLOCK = calendar(business_hours="mon-sun 00:00-00:00", holidays_country="")
NIGHTS = calendar(business_hours="mon-fri 22:00-06:00", holidays_country="")


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (at(2026, 11, 23, 9), True),  # Monday
        (at(2026, 11, 23, 7, 59), False),
        (at(2026, 11, 23, 8), True),  # the start is business time …
        (at(2026, 11, 23, 17), False),  # … the end is not
        (at(2026, 11, 21, 10), False),  # Saturday
        (at(2026, 11, 22, 10), False),  # Sunday
    ],
)
def test_business_hours_are_local_weekday_hours(when: float, expected: bool) -> None:
    assert DEFAULT.is_business_time(when) is expected


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 10, 28),  # Independent Czechoslovak State Day (Wednesday)
        date(2026, 11, 17),  # Struggle for Freedom and Democracy Day (Tuesday)
        date(2026, 12, 24),  # Christmas Eve (Thursday)
        date(2026, 12, 25),  # Christmas Day (Friday)
        date(2026, 4, 3),  # Good Friday
        date(2026, 4, 6),  # Easter Monday
        date(2027, 3, 29),  # Easter Monday 2027: a moving holiday
        date(2026, 5, 8),  # Victory Day
        date(2026, 7, 6),  # Jan Hus Day (Monday)
    ],
)
def test_czech_public_holidays_have_no_business_hours(day: date) -> None:
    assert DEFAULT.is_business_time(at(day.year, day.month, day.day, 10)) is False
    assert DEFAULT.closed_reason(day)


def test_holiday_names_explain_the_closure() -> None:
    assert DEFAULT.closed_reason(date(2026, 12, 24)) == "Christmas Eve"
    assert DEFAULT.closed_reason(date(2026, 4, 6)) == "Easter Monday"
    assert DEFAULT.closed_reason(date(2026, 12, 28)) is None
    assert DEFAULT.is_business_time(at(2026, 12, 28, 10)) is True


@pytest.mark.parametrize(
    ("problem_at", "pages_at"),
    [
        # a non-covered customer's P1 at 02:00 Saturday pages at 08:00 Monday
        (at(2026, 11, 21, 2), at(2026, 11, 23, 8)),
        # … or at the first business hour after a holiday (17 Nov is a Tuesday)
        (at(2026, 11, 16, 20), at(2026, 11, 18, 8)),
        # Christmas: Thu 24, Fri 25 and the weekend are closed
        (at(2026, 12, 23, 18), at(2026, 12, 28, 8)),
        # Easter: Good Friday and Easter Monday
        (at(2026, 4, 2, 17, 30), at(2026, 4, 7, 8)),
        # inside business hours it is now
        (at(2026, 11, 23, 10, 15), at(2026, 11, 23, 10, 15)),
        # early on a working day: the same morning
        (at(2026, 11, 24, 6), at(2026, 11, 24, 8)),
    ],
)
def test_next_business_start(problem_at: float, pages_at: float) -> None:
    assert DEFAULT.next_business_start(problem_at) == pages_at


def test_hours_follow_the_wall_clock_across_the_spring_dst_change() -> None:
    # Prague moves to CEST on Sunday 29 March 2026: 08:00 is 07:00 UTC before, 06:00 after.
    assert DEFAULT.next_business_start(at(2026, 3, 27, 18)) == utc(2026, 3, 30, 6)
    assert DEFAULT.next_business_start(at(2026, 3, 26, 18)) == utc(2026, 3, 27, 7)
    assert DEFAULT.is_business_time(utc(2026, 3, 30, 6)) is True
    assert DEFAULT.is_business_time(utc(2026, 3, 30, 5, 59)) is False
    assert DEFAULT.is_business_time(utc(2026, 3, 27, 6, 30)) is False


def test_hours_follow_the_wall_clock_across_the_autumn_dst_change() -> None:
    # Back to CET on Sunday 25 October 2026: 17:00 is 15:00 UTC before, 16:00 after.
    assert DEFAULT.is_business_time(utc(2026, 10, 23, 15, 30)) is False
    assert DEFAULT.is_business_time(utc(2026, 10, 26, 15, 30)) is True
    assert DEFAULT.next_business_start(at(2026, 10, 23, 18)) == utc(2026, 10, 26, 7)


def test_business_seconds_between() -> None:
    week = DEFAULT.business_seconds_between(at(2026, 11, 23), at(2026, 11, 30))
    assert week == 45 * HOUR  # five 9-hour days
    # 16:00 Monday to 09:00 Tuesday: the last hour of one day and the first of the next
    assert DEFAULT.business_seconds_between(at(2026, 11, 23, 16), at(2026, 11, 24, 9)) == 2 * HOUR
    # Christmas week: only Monday to Wednesday
    christmas = DEFAULT.business_seconds_between(at(2026, 12, 21), at(2026, 12, 28))
    assert christmas == 27 * HOUR
    # across the spring DST change: 45 h, then Monday to Wednesday (Good Friday follows)
    assert DEFAULT.business_seconds_between(at(2026, 3, 23), at(2026, 4, 2)) == 72 * HOUR
    assert DEFAULT.business_seconds_between(at(2026, 11, 24), at(2026, 11, 23)) == 0.0


def test_round_the_clock_days_are_23_and_25_hours_on_dst_sundays() -> None:
    spring = ROUND_THE_CLOCK.business_seconds_between(at(2026, 3, 29), at(2026, 3, 30))
    autumn = ROUND_THE_CLOCK.business_seconds_between(at(2026, 10, 25), at(2026, 10, 26))
    assert (spring, autumn) == (23 * HOUR, 25 * HOUR)
    t = at(2026, 3, 29, 2, 30)  # inside the spring-forward gap, still an instant
    assert ROUND_THE_CLOCK.is_business_time(t)
    assert ROUND_THE_CLOCK.next_business_start(t) == t


def test_add_business_seconds_is_an_sla_clock() -> None:
    # a one-hour reaction time started at 16:30 Friday is due at 08:30 Monday
    assert DEFAULT.add_business_seconds(at(2026, 11, 20, 16, 30), HOUR) == at(2026, 11, 23, 8, 30)
    # started on Saturday, zero seconds is the next business start
    assert DEFAULT.add_business_seconds(at(2026, 11, 21, 12), 0) == at(2026, 11, 23, 8)
    # 8 hours from Wednesday 23 December 12:00: 5 h that day, 3 h on Monday 28th
    assert DEFAULT.add_business_seconds(at(2026, 12, 23, 12), 8 * HOUR) == at(2026, 12, 28, 11)


def test_overnight_hours_run_past_midnight() -> None:
    assert NIGHTS.is_business_time(at(2026, 11, 23, 23))  # Monday night
    assert NIGHTS.is_business_time(at(2026, 11, 24, 5, 59))  # … into Tuesday morning
    assert not NIGHTS.is_business_time(at(2026, 11, 24, 6))
    assert NIGHTS.is_business_time(at(2026, 11, 21, 5))  # Friday's night ends on Saturday
    assert not NIGHTS.is_business_time(at(2026, 11, 21, 23))  # no Saturday night
    assert NIGHTS.next_business_start(at(2026, 11, 21, 12)) == at(2026, 11, 23, 22)
    # Friday 27 March 22:00 to Saturday 06:00 is 8 h; a Saturday night across the
    # spring change would be 7 h — measured on a calendar that has one
    assert NIGHTS.business_seconds_between(at(2026, 3, 27, 12), at(2026, 3, 28, 12)) == 8 * HOUR
    saturday = calendar(business_hours="sat 22:00-06:00", holidays_country="")
    assert saturday.business_seconds_between(at(2026, 3, 28), at(2026, 3, 30)) == 7 * HOUR


def test_a_holiday_closes_the_hours_that_start_on_it() -> None:
    nights = calendar(business_hours="mon-sun 22:00-06:00")  # with CZ holidays
    assert nights.is_business_time(at(2026, 12, 24, 5))  # started on the 23rd
    assert not nights.is_business_time(at(2026, 12, 24, 23))  # would start on the 24th
    assert nights.next_business_start(at(2026, 12, 24, 12)) == at(2026, 12, 27, 22)


def test_several_windows_and_closed_days() -> None:
    cal = calendar(
        business_hours=["mon-fri 08:00-12:00", "mon-fri 11:00-17:00", "sat 09:00-12:00"],
        closed_days=["2026-11-27"],
    )
    # overlapping windows count once
    assert cal.business_seconds_between(at(2026, 11, 23), at(2026, 11, 24)) == 9 * HOUR
    assert cal.is_business_time(at(2026, 11, 28, 10))  # Saturday morning
    assert not cal.is_business_time(at(2026, 11, 27, 10))  # the closed Friday
    assert cal.closed_reason(date(2026, 11, 27)) == "closed day"
    assert cal.next_business_start(at(2026, 11, 26, 18)) == at(2026, 11, 28, 9)


def test_subdivision_holidays() -> None:
    bavaria = calendar(timezone="Europe/Berlin", holidays_country="DE", holidays_subdivision="BY")
    berlin = calendar(timezone="Europe/Berlin", holidays_country="DE")
    epiphany = at(2026, 1, 6, 10, zone=ZoneInfo("Europe/Berlin"))  # a Tuesday
    assert not bavaria.is_business_time(epiphany)
    assert berlin.is_business_time(epiphany)


def test_no_hours_at_all() -> None:
    never = calendar(business_hours=[])
    t = at(2026, 11, 23, 10)
    assert not never.is_business_time(t)
    assert never.next_business_start(t) is None
    assert never.add_business_seconds(t, 60) is None
    assert never.business_seconds_between(t, t + 86400 * 30) == 0.0


def test_calendars_are_per_customer_and_cached() -> None:
    acme = Customer.model_validate(
        {"name": "acme", "contract": {"business_hours": "mon-fri 07:00-19:00"}}
    )
    globex = Customer.model_validate({"name": "globex"})
    calendars = Calendars([acme, globex])
    assert calendars.get("acme") is calendars.get("acme")
    assert calendars.get("acme").is_business_time(at(2026, 11, 23, 7, 30))
    assert not calendars.get("globex").is_business_time(at(2026, 11, 23, 7, 30))
    assert calendars.get("nobody").contract == Contract()
    assert calendars.get(None) is calendars.get("nobody")
    # customers in one country share one holiday table
    assert calendars.get("acme")._public is calendars.get("globex")._public


# -- properties ----------------------------------------------------------------------

CALENDARS = [
    DEFAULT,
    ROUND_THE_CLOCK,
    NIGHTS,
    calendar(business_hours=["mon-fri 08:00-12:00", "mon-fri 13:00-17:00", "sat 02:30-03:00"]),
    calendar(business_hours="mon-sun 02:00-03:00", holidays_country=""),  # DST-gap hours
    calendar(timezone="America/New_York", holidays_country="US"),
]
instants = st.floats(min_value=utc(2024, 1, 1), max_value=utc(2030, 1, 1))
calendars = st.sampled_from(CALENDARS)


@settings(max_examples=200, deadline=None)
@given(cal=calendars, t=instants, frac=st.floats(min_value=0, max_value=1))
def test_next_business_start_is_business_time_and_nothing_before_it_is(
    cal: BusinessCalendar, t: float, frac: float
) -> None:
    start = cal.next_business_start(t)
    assert start is not None and start >= t
    assert cal.is_business_time(start)
    assert cal.business_seconds_between(t, start) == 0.0
    if start > t:
        assert not cal.is_business_time(t + (start - t) * frac * 0.999)


@settings(max_examples=100, deadline=None)
@given(
    cal=calendars,
    a=instants,
    gaps=st.tuples(
        st.floats(min_value=0, max_value=20 * 86400), st.floats(min_value=0, max_value=20 * 86400)
    ),
)
def test_business_seconds_add_up(
    cal: BusinessCalendar, a: float, gaps: tuple[float, float]
) -> None:
    b, c = a + gaps[0], a + gaps[0] + gaps[1]
    whole = cal.business_seconds_between(a, c)
    parts = cal.business_seconds_between(a, b) + cal.business_seconds_between(b, c)
    assert whole == pytest.approx(parts, abs=1e-3)
    assert 0 <= whole <= c - a


@settings(max_examples=100, deadline=None)
@given(cal=calendars, t=instants, seconds=st.floats(min_value=0, max_value=40 * HOUR))
def test_add_business_seconds_inverts_business_seconds_between(
    cal: BusinessCalendar, t: float, seconds: float
) -> None:
    due = cal.add_business_seconds(t, seconds)
    assert due is not None
    assert cal.business_seconds_between(t, due) == pytest.approx(seconds, abs=1e-3)


@settings(max_examples=300, deadline=None)
@given(t=instants)
def test_default_calendar_agrees_with_the_local_wall_clock(t: float) -> None:
    local = datetime.fromtimestamp(t, PRAGUE)
    expected = (
        local.weekday() < 5 and 8 <= local.hour < 17 and DEFAULT.closed_reason(local.date()) is None
    )
    assert DEFAULT.is_business_time(t) is expected
