"""P1–P4 for a problem, from ordered rules, with the reason in words.

Pure: facts in, a `PriorityDecision` out. The model is two-phase so that it
stays explainable:

1. the first rule with a `priority` whose match holds sets the base priority
   (`FALLBACK` when none does);
2. then the adjustments of every matching rule with an `adjust` add up (+1 is
   one step more urgent, P3 → P2) and move it, clamped to P1..P4, so their
   order does not matter — unless the base rule is `final`.

The explanation names the facts each applied rule matched on, e.g.
`P1 because: server, category backup-failed → P2; criticality high +1`,
so "why was I paged?" has an answer on the ticket (anchors §3-14).

`DEFAULT_RULES` apply when the config has no `priority_rules:`; a configured
list replaces them entirely (copy the defaults from here to extend them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitord.config.model import (
    Contract,
    Criticality,
    Priority,
    PriorityMatch,
    PriorityRule,
    Role,
)
from monitord.inventory import Device
from monitord.model import Status

FALLBACK = Priority.P3
"""The base priority when no rule with a `priority` matches."""

_ORDER = (Priority.P1, Priority.P2, Priority.P3, Priority.P4)

SECURITY_AND_CAPACITY = (
    "antivirus-disabled",
    "av-outdated",
    "backup-failed",
    "disk-full",
    "raid-degraded",
    "ups-on-battery",
)
"""Categories that rank high by default: each is a loss or an attack waiting to happen."""

_INFRA = (Role.SERVER, Role.NETWORK, Role.UPS)


def _rule(
    name: str, priority: Priority | None = None, adjust: int | None = None, **match: object
) -> PriorityRule:
    return PriorityRule.model_validate(
        {"name": name, "match": match, "priority": priority, "adjust": adjust}
    )


DEFAULT_RULES: tuple[PriorityRule, ...] = (
    _rule("site-down", Priority.P1, categories=("site-down",)),
    _rule(
        "infrastructure-security-capacity",
        Priority.P2,
        roles=_INFRA,
        categories=SECURITY_AND_CAPACITY,
    ),
    _rule(
        "infrastructure-down",
        Priority.P2,
        roles=(Role.SERVER, Role.NETWORK),
        categories=("host-down", "service-down"),
    ),
    _rule("security-capacity", Priority.P3, categories=SECURITY_AND_CAPACITY),
    _rule("infrastructure", Priority.P3, roles=_INFRA),
    _rule("endpoints", Priority.P4, roles=(Role.WORKSTATION, Role.PRINTER, Role.OTHER)),
    _rule("criticality-high", adjust=+1, criticality=(Criticality.HIGH,)),
    _rule("criticality-low", adjust=-1, criticality=(Criticality.LOW,)),
    _rule("warning", adjust=-1, severity=("warning",)),
)
"""The built-in rules. A whole site down is P1. Servers, network gear and UPSes
rank above workstations and printers; security and capacity problems rank above
other problems of the same role (P2 on infrastructure, P3 on endpoints); a
server or router down is P2. Criticality high raises one step (a high-criticality
server down is P1), low lowers one; a WARNING is one step below a CRITICAL."""


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rules may look at for one problem."""

    severity: Status
    category: str
    role: str = Role.OTHER.value
    criticality: str = Criticality.NORMAL.value
    tags: tuple[str, ...] = ()
    customer: str | None = None
    after_hours_cover: bool = False

    @classmethod
    def of(cls, device: Device, contract: Contract, *, severity: Status, category: str) -> Facts:
        """The facts of a problem on `device` of a customer with `contract`."""
        return cls(
            severity=severity,
            category=category,
            role=device.role,
            criticality=device.criticality,
            tags=device.tags,
            customer=device.customer,
            after_hours_cover=contract.after_hours_cover,
        )


@dataclass(frozen=True, slots=True)
class Step:
    """One applied rule: its position and name, and what it matched on."""

    rule: int  # index into the rule list; -1 for the fallback
    name: str
    because: str  # "server, category backup-failed"
    adjust: int = 0  # 0 for the base rule


@dataclass(frozen=True, slots=True)
class PriorityDecision:
    """The priority, the base rule that set it and the adjustments that moved it."""

    priority: Priority
    base_priority: Priority
    base: Step
    adjustments: tuple[Step, ...] = ()

    @property
    def rules(self) -> tuple[str, ...]:
        """Names of the applied rules, base first (for the API's "why")."""
        return tuple(s.name for s in (self.base, *self.adjustments))

    @property
    def explanation(self) -> str:
        """`P1 because: server, category backup-failed → P2; criticality high +1`."""
        text = f"{self.priority} because: {self.base.because}"
        if not self.adjustments:
            return text
        text += f" → {self.base_priority}; " + "; ".join(
            f"{s.because} {s.adjust:+d}" for s in self.adjustments
        )
        net = _index(self.base_priority) - sum(s.adjust for s in self.adjustments)
        if net < 0:
            text += f" ({_ORDER[0]} is the highest)"
        elif net >= len(_ORDER):
            text += f" ({_ORDER[-1]} is the lowest)"
        return text


def prioritize(facts: Facts, rules: Sequence[PriorityRule] | None = None) -> PriorityDecision:
    """The priority of a problem with `facts` under `rules` (None: `DEFAULT_RULES`).

    Adjustments add up before the result is clamped to P1..P4, so their order
    does not matter. Never raises: a problem always gets a priority.
    """
    rules = DEFAULT_RULES if rules is None else rules
    found = [(i, rule, matched(rule.match, facts)) for i, rule in enumerate(rules)]
    hits = [(i, rule, because) for i, rule, because in found if because is not None]
    base, priority, final = Step(-1, "", "no rule matched"), FALLBACK, False
    for i, rule, because in hits:
        if rule.priority is not None:
            base, priority, final = Step(i, rule.name, because), rule.priority, rule.final
            break
    adjustments = (
        ()
        if final
        else tuple(
            Step(i, rule.name, because, rule.adjust)
            for i, rule, because in hits
            if rule.adjust is not None
        )
    )
    index = _index(priority) - sum(s.adjust for s in adjustments)
    result = _ORDER[min(max(index, 0), len(_ORDER) - 1)]
    return PriorityDecision(result, priority, base, adjustments)


def _index(priority: Priority) -> int:
    return _ORDER.index(priority)


def matched(match: PriorityMatch, facts: Facts) -> str | None:
    """What `facts` matched on, in words ("server, criticality high"), or None if
    they do not match. An empty match holds always and reads "default"."""
    checks: list[tuple[bool, bool, str]] = [
        (bool(match.roles), facts.role in match.roles, facts.role),
        (
            bool(match.criticality),
            facts.criticality in match.criticality,
            f"criticality {facts.criticality}",
        ),
        (
            bool(match.severity),
            facts.severity.label in match.severity,
            f"severity {facts.severity.label}",
        ),
        (
            bool(match.categories),
            facts.category in match.categories,
            f"category {facts.category}",
        ),
        (
            bool(match.tags),
            bool(set(match.tags) & set(facts.tags)),
            "tag " + ", ".join(t for t in match.tags if t in facts.tags),
        ),
        (
            bool(match.customers),
            facts.customer in match.customers,
            f"customer {facts.customer}",
        ),
        (
            match.after_hours_cover is not None,
            match.after_hours_cover == facts.after_hours_cover,
            "after-hours cover" if facts.after_hours_cover else "no after-hours cover",
        ),
    ]
    words = []
    for given, holds, text in checks:
        if given and not holds:
            return None
        if given:
            words.append(text)
    return ", ".join(words) or "default"
