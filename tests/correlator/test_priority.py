"""Priority rules: the defaults as a table, the two-phase model, and config errors."""

from __future__ import annotations

from typing import Any

import pytest

from correlator.priority import DEFAULT_RULES, FALLBACK, Facts, prioritize
from monitord.config.load import ConfigErrors, config_from_dict
from monitord.config.model import Contract, Priority, PriorityRule
from monitord.inventory import Device
from monitord.model import Status

CRIT, WARN, UNKNOWN = Status.CRITICAL, Status.WARNING, Status.UNKNOWN


def facts(category: str, role: str = "server", severity: Status = CRIT, **kw: Any) -> Facts:
    return Facts(severity=severity, category=category, role=role, **kw)


@pytest.mark.parametrize(
    ("problem", "explanation"),
    [
        (
            facts("backup-failed", criticality="high"),
            "P1 because: server, category backup-failed → P2; criticality high +1",
        ),
        (facts("backup-failed"), "P2 because: server, category backup-failed"),
        (
            facts("antivirus-disabled", "network"),
            "P2 because: network, category antivirus-disabled",
        ),
        (facts("ups-on-battery", "ups"), "P2 because: ups, category ups-on-battery"),
        (facts("raid-degraded"), "P2 because: server, category raid-degraded"),
        (
            facts("disk-full", severity=WARN),
            "P3 because: server, category disk-full → P2; severity warning -1",
        ),
        (
            facts("disk-full", severity=WARN, criticality="high"),
            "P2 because: server, category disk-full → P2; criticality high +1; severity warning -1",
        ),
        (facts("host-down"), "P2 because: server, category host-down"),
        (
            facts("host-down", "network", criticality="high"),
            "P1 because: network, category host-down → P2; criticality high +1",
        ),
        (facts("service-down", severity=UNKNOWN), "P2 because: server, category service-down"),
        (facts("site-down", "network"), "P1 because: category site-down"),
        (
            facts("site-down", "network", criticality="high"),
            "P1 because: category site-down → P1; criticality high +1 (P1 is the highest)",
        ),
        (facts("av-outdated", "workstation"), "P3 because: category av-outdated"),
        (facts("backup-failed", "workstation"), "P3 because: category backup-failed"),
        (facts("cert-expiring"), "P3 because: server"),
        (facts("unreachable-workstation", "workstation"), "P4 because: workstation"),
        (
            facts("toner-low", "printer", severity=WARN),
            "P4 because: printer → P4; severity warning -1 (P4 is the lowest)",
        ),
        (
            facts("host-down", criticality="low"),
            "P3 because: server, category host-down → P2; criticality low -1",
        ),
        (facts("anything", "mystery"), "P3 because: no rule matched"),
    ],
)
def test_default_rules(problem: Facts, explanation: str) -> None:
    decision = prioritize(problem)
    assert decision.explanation == explanation
    assert decision.priority == Priority(explanation[:2])


def test_servers_and_network_rank_above_workstations() -> None:
    for category in ("host-down", "backup-failed", "disk-full", "antivirus-disabled", "other"):
        ranks = {
            role: prioritize(facts(category, role)).priority
            for role in ("server", "network", "workstation")
        }
        assert ranks["server"] < ranks["workstation"], category
        assert ranks["network"] < ranks["workstation"], category


def test_security_and_capacity_rank_above_other_problems_of_the_role() -> None:
    for role in ("server", "workstation"):
        plain = prioritize(facts("cert-expiring", role)).priority
        for category in ("antivirus-disabled", "av-outdated", "backup-failed", "disk-full"):
            assert prioritize(facts(category, role)).priority < plain


def rules(*specs: dict[str, Any]) -> tuple[PriorityRule, ...]:
    return tuple(PriorityRule.model_validate(s) for s in specs)


def test_first_priority_rule_wins_and_every_adjustment_applies() -> None:
    custom = rules(
        {"name": "vip", "match": {"tags": "vip"}, "adjust": 1},
        {
            "name": "acme-servers",
            "match": {"customers": ["acme"], "roles": "server"},
            "priority": "P3",
        },
        {"name": "servers", "match": {"roles": "server"}, "priority": "P1"},
        {"name": "covered", "match": {"after_hours_cover": True}, "adjust": 1},
    )
    decision = prioritize(
        facts("host-down", customer="acme", tags=("vip", "web"), after_hours_cover=True), custom
    )
    assert decision.priority == Priority.P1
    assert decision.rules == ("acme-servers", "vip", "covered")
    assert decision.explanation == (
        "P1 because: server, customer acme → P3; tag vip +1; after-hours cover +1"
    )
    other = prioritize(facts("host-down", customer="globex"), custom)
    assert other.explanation == "P1 because: server"


def test_final_rule_skips_adjustments() -> None:
    custom = rules(
        {"match": {"categories": "unreachable-workstation"}, "priority": "P4", "final": True},
        {"match": {"criticality": "high"}, "adjust": 2},
    )
    pinned = prioritize(facts("unreachable-workstation", "workstation", criticality="high"), custom)
    assert pinned.explanation == "P4 because: category unreachable-workstation"
    moved = prioritize(facts("host-down", criticality="high"), custom)
    assert moved.explanation == "P1 because: no rule matched → P3; criticality high +2"
    assert FALLBACK == Priority.P3


def test_adjustments_add_up_before_clamping() -> None:
    # +1 then -1 on a P1 stays P1: the order of adjustments does not matter.
    custom = rules(
        {"match": {}, "priority": "P1"},
        {"match": {"criticality": "high"}, "adjust": 1},
        {"match": {"severity": "warning"}, "adjust": -1},
    )
    decision = prioritize(facts("x", severity=WARN, criticality="high"), custom)
    assert decision.priority == Priority.P1
    assert (
        decision.explanation == "P1 because: default → P1; criticality high +1; severity warning -1"
    )


def test_facts_of_a_device_and_contract() -> None:
    device = Device(
        id="acme/srv-1",
        name="srv-1",
        customer="acme",
        site="hq",
        address="192.0.2.5",
        role="server",
        os="windows",
        criticality="high",
        tags=("vip",),
        parent_id=None,
    )
    got = Facts.of(
        device, Contract(after_hours_cover=True), severity=CRIT, category="backup-failed"
    )
    assert got == Facts(CRIT, "backup-failed", "server", "high", ("vip",), "acme", True)
    assert prioritize(got).priority == Priority.P1


def test_default_rules_are_valid_models() -> None:
    assert all(isinstance(r, PriorityRule) for r in DEFAULT_RULES)
    assert config_from_dict({}).config.priority_rules is None


# -- config --------------------------------------------------------------------------


def errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        config_from_dict({"customers": [{"name": "acme"}], **data})
    return [f"{e.path}: {e.message}" for e in info.value.errors]


def test_configured_rules_load_and_unknown_categories_are_fine() -> None:
    loaded = config_from_dict(
        {
            "customers": [{"name": "acme"}],
            "priority_rules": [
                {
                    "name": "acme",
                    "match": {"customers": "acme", "categories": "my-own"},
                    "priority": "P2",
                },
                {"match": {"roles": ["server", "network"]}, "adjust": +1},
            ],
        }
    )
    custom = loaded.config.priority_rules
    assert custom is not None and custom[0].match.categories == ("my-own",)
    assert prioritize(facts("my-own", customer="acme"), custom).priority == Priority.P1


def test_unknown_role_and_priority_are_located_errors() -> None:
    assert errors(
        {
            "priority_rules": [
                {"match": {"roles": ["servr"]}, "priority": "P2"},
                {"match": {}, "priority": "P5"},
                {"match": {"severity": "fatal"}, "adjust": 1},
            ]
        }
    ) == [
        "priority_rules[0].match.roles[0]: input should be 'server', 'workstation', 'network',"
        " 'printer', 'ups' or 'other'",
        "priority_rules[1].priority: input should be 'P1', 'P2', 'P3' or 'P4'",
        "priority_rules[2].match.severity[0]: input should be 'ok', 'warning', 'critical'"
        " or 'unknown'",
    ]


def test_rule_effect_errors() -> None:
    assert errors(
        {
            "priority_rules": [
                {"match": {}, "priority": "P2", "adjust": 1},
                {"match": {}},
                {"match": {}, "adjust": 0},
                {"match": {}, "adjust": 1, "final": True},
                {"match": {}, "adjust": 5},
            ]
        }
    ) == [
        "priority_rules[0]: a priority rule needs exactly one of 'priority' or 'adjust'",
        "priority_rules[1]: a priority rule needs exactly one of 'priority' or 'adjust'",
        "priority_rules[2]: adjust must not be 0 (+1 raises urgency, -1 lowers it)",
        "priority_rules[3]: 'final' applies only to a rule with a 'priority'",
        "priority_rules[4].adjust: input should be less than or equal to 3",
    ]


def test_unknown_customer_and_unreachable_rule() -> None:
    assert errors(
        {
            "priority_rules": [
                {"match": {"customers": ["acme", "acmee"]}, "priority": "P2"},
                {"name": "everything", "match": {}, "priority": "P3"},
                {"match": {"criticality": "high"}, "adjust": 1},
                {"match": {"roles": "server"}, "priority": "P1"},
            ]
        }
    ) == [
        "priority_rules[0].match.customers[1]: unknown customer 'acmee'",
        "priority_rules[3]: rule is never used: priority_rules[1] before it matches everything",
    ]
