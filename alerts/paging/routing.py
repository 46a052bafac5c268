"""Who gets paged for an incident, and when: page now, page at the start of the next
business period, or ticket only — with the reason in words.

Pure: facts in, a `Decision` out (no I/O, no clock). The rules, in order:

1. RMM agent problems and disputed RMM failures never page (they are the RMM's
   noise, cross-checked and found wanting; a ticket is all they get).
2. monitord's own problems (category `internal`: a channel failing, nobody on
   call, a ticket system down) page `paging.internal_targets` at any hour.
3. An incident in a maintenance window pages nobody.
4. With no `paging.routes`, paging works as before it was configured: the
   `alerting.page_priorities` page `alerting.channels`, at any hour.
5. The first route matching priority, customer and category picks the policy;
   none matching: ticket only.
6. In the customer's business hours (its contract's hours in its zone, minus
   public holidays and closed days): the desk (the route's `business_policy`,
   else `paging.desk_policy`, else the route's policy).
7. Out of hours, with after-hours cover: the route's policy now, unless the
   contract's reaction target for the priority is still met by the next business
   start (a P3 with 8 h at 07:30), which then pages the desk.
8. Out of hours without cover: the desk at the next business start (08:00
   Monday for 02:00 Saturday; the first business hour after a holiday).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from correlator.calendar import BusinessCalendar, local_date
from correlator.events import INTERNAL
from monitord.config.base import Priority
from monitord.config.paging import PagingConfig, Route
from monitord.config.rmm import LOW_CATEGORIES

INTERNAL_POLICY = "internal"  # built from paging.internal_targets
LEGACY_POLICY = "channels"  # alerting.channels, when no routes are configured

Action = Literal["page", "defer", "ticket"]


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    policy: str | None = None
    at: float | None = None  # when to page: now, or the next business start

    def text(self) -> str:
        verb = {"page": "page now", "defer": "page later", "ticket": "ticket only"}[self.action]
        policy = f" (policy {self.policy})" if self.policy else ""
        return f"{verb}{policy}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Facts:
    priority: str
    customer: str | None
    category: str
    muted: str = ""  # why the incident is muted now (maintenance), "" when it is not


def decide(
    facts: Facts,
    paging: PagingConfig,
    page_priorities: tuple[Priority, ...],
    calendar: BusinessCalendar,
    now: float,
) -> Decision:
    """The routing decision for one incident at `now` (see the module docstring)."""
    special = _special(facts, paging, page_priorities, now)
    if special is not None:
        return special
    route, index = _route(paging, facts)
    if route is None:
        return Decision("ticket", f"{facts.priority} matches no paging route")
    name = f"route {index}"
    desk = route.business_policy or paging.desk_policy or route.policy
    who = facts.customer or "(no customer)"
    if calendar.is_business_time(now):
        return Decision("page", f"{name}; business hours of {who}: the desk", desk, now)
    start = calendar.next_business_start(now)
    when = "no business hours ahead" if start is None else local_time(start, calendar)
    if calendar.contract.after_hours_cover:
        reaction = calendar.contract.reaction.get(Priority(facts.priority))
        if start is not None and reaction is not None and start - now <= reaction:
            return Decision(
                "defer",
                f"{name}; {who} has after-hours cover, but its {facts.priority} reaction "
                f"target ({_span(reaction)}) is still met by the next business start, "
                f"{when}: the desk then",
                desk,
                start,
            )
        return Decision(
            "page", f"{name}; out of business hours, {who} has after-hours cover", route.policy, now
        )
    if start is None:
        return Decision("ticket", f"{name}; {who} has no after-hours cover and {when}")
    closed = _closed_between(calendar, now, start)
    return Decision(
        "defer",
        f"{name}; {who} has no after-hours cover: the desk at the next business start, {when}"
        + (f" (after {closed})" if closed else ""),
        desk,
        start,
    )


def _special(
    facts: Facts, paging: PagingConfig, page_priorities: tuple[Priority, ...], now: float
) -> Decision | None:
    """Rules 1-4: RMM noise, monitord's own problems, maintenance, no routes."""
    if facts.category in LOW_CATEGORIES:
        return Decision(
            "ticket",
            f"category {facts.category}: RMM agent problems and disputed RMM failures never page",
        )
    if facts.category == INTERNAL:
        return Decision(
            "page",
            "monitord's own problem: paging.internal_targets, at any hour",
            INTERNAL_POLICY,
            now,
        )
    if facts.muted:
        return Decision("ticket", f"in maintenance: {facts.muted}")
    if paging.routes:
        return None
    if facts.priority in {p.value for p in page_priorities}:
        return Decision(
            "page",
            f"{facts.priority} is in alerting.page_priorities (no paging routes configured)",
            LEGACY_POLICY,
            now,
        )
    return Decision("ticket", f"{facts.priority} is not in alerting.page_priorities")


def _route(paging: PagingConfig, facts: Facts) -> tuple[Route | None, int]:
    for i, route in enumerate(paging.routes):
        if route.match.matches(facts.priority, facts.customer, facts.category):
            return route, i
    return None, -1


def local_time(t: float, calendar: BusinessCalendar) -> str:
    local = datetime.fromtimestamp(t, UTC).astimezone(calendar.zone)
    return local.strftime("%a %Y-%m-%d %H:%M ") + calendar.zone.key


def _span(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 60)}m"


def _closed_between(calendar: BusinessCalendar, a: float, b: float) -> str:
    """The names of closed days (holidays) from `a`'s local day to `b`'s, joined."""
    day, last = local_date(a, calendar.zone), local_date(b, calendar.zone)
    names: list[str] = []
    while day <= last:
        why = calendar.closed_reason(day)
        if why and why not in names:
            names.append(why)
        day += timedelta(days=1)
    return ", ".join(names)
