"""The verdict rule on its own: evidence in, verdict, deciding rule and identity out."""

from __future__ import annotations

from correlator.events import check_fingerprint, fingerprint
from monitord.config.rmm import RmmConfig
from monitord.model import Status
from monitord.rmm.verdicts import Decision, Evidence, Facts, decide, identity, severity

RMM = RmmConfig()
DEV = "acme/srv1"


def ev(
    check: str, status: Status, *, origin: str = "check", reach: bool = False, fresh: bool = True
) -> Evidence:
    return Evidence(
        origin, f"{DEV}/{check}", "tcp", status, True, f"{check} said so", 1.0, reach, fresh
    )


def facts(kind: str, category: str, *, down: bool = False, device: str | None = DEV) -> Facts:
    return Facts(
        kind, category, "Windows Service Check - DNS Server", device, down, (f"{DEV}/ping",)
    )


def test_availability_any_answer_is_an_agent_problem() -> None:
    rule = RMM.rule("availability")
    got = decide(
        facts("overdue", "availability"),
        rule,
        [ev("ping", Status.CRITICAL, reach=True), ev("ssh", Status.OK, reach=True)],
    )
    assert got.verdict == "agent-problem"
    assert "the RMM says overdue, but the device answers: ssh ok" in got.rule
    got = decide(facts("offline", "availability"), rule, [ev("ping", Status.CRITICAL, reach=True)])
    assert (got.verdict, got.check_id) == ("confirmed", f"{DEV}/ping")
    # a check run again on demand replaces its older scheduled state
    got = decide(
        facts("offline", "availability"),
        rule,
        [
            ev("ping", Status.OK, reach=True),
            ev("ping", Status.CRITICAL, origin="verify", reach=True),
        ],
    )
    assert got.verdict == "confirmed"
    got = decide(facts("offline", "availability"), rule, [ev("ping", Status.UNKNOWN, reach=True)])
    assert got.verdict == "unverifiable" and "no answer either way" in got.rule


def test_checks_confirmed_disputed_or_unverifiable() -> None:
    rule = RMM.rule("service")
    got = decide(
        facts("check", "service"), rule, [ev("dns", Status.CRITICAL), ev("web", Status.OK)]
    )
    assert (got.verdict, got.check_id) == ("confirmed", f"{DEV}/dns")
    got = decide(facts("check", "service"), rule, [ev("dns", Status.OK)])
    assert got.verdict == "disputed" and "monitord sees it fine: dns ok" in got.rule
    got = decide(facts("check", "service"), rule, [ev("dns", Status.OK, fresh=False)])
    assert got.verdict == "unverifiable" and "gave no answer" in got.rule
    got = decide(facts("check", "service"), rule, [])
    assert got.verdict == "unverifiable"
    assert "configure rmm.verdicts.service.evidence or .verify" in got.rule
    # on a device that does not answer, its other checks' failures are the outage's
    got = decide(facts("check", "service", down=True), rule, [ev("dns", Status.CRITICAL)])
    assert got.verdict == "unverifiable" and "does not answer monitord" in got.rule
    got = decide(facts("check", "antivirus"), RMM.rule("antivirus"), [ev("dns", Status.OK)])
    assert got.verdict == "unverifiable" and "cannot see this from outside" in got.rule
    got = decide(facts("check", "service", device=None), rule, [])
    assert got.verdict == "unverifiable" and "not in monitord's inventory" in got.rule


def test_identity_is_source_independent() -> None:
    confirmed = Decision("confirmed", "", f"{DEV}/ping")
    ident = identity(
        confirmed,
        customer="acme",
        device=DEV,
        kind="offline",
        description="x",
        category="host-down",
    )
    # exactly the fingerprint monitord's own ping check reports under
    assert ident.fingerprint == check_fingerprint("acme", DEV, "ping")
    assert ident.check_id == f"{DEV}/ping"
    alone = Decision("unverifiable", "", None)
    ident = identity(
        alone,
        customer="acme",
        device=DEV,
        kind="check",
        description="Backup  Check",
        category="backup-failed",
    )
    assert ident.fingerprint == fingerprint("acme", DEV, "backup-failed:backup check")
    agent = identity(
        Decision("agent-problem", "", None),
        customer="acme",
        device=DEV,
        kind="overdue",
        description="",
        category="host-down",
    )
    assert (agent.fingerprint, agent.category) == (
        fingerprint("acme", DEV, "rmm-agent"),
        "rmm-agent",
    )
    assert severity("testalertdelayed") == Status.WARNING
    assert severity("testerror") == Status.CRITICAL
