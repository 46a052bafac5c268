"""An RMM failure and monitord's evidence → a verdict, and the incident it feeds (pure).

Verdicts:

- `confirmed`: monitord sees the same fault. The incident is the one monitord's
  own covering check reports (`check_fingerprint`: an RMM "offline" and the
  device's failing reachability check are one incident), or, with no covering
  check, the problem `<category>` / `<category>:<description>` of the device: the
  same identity any source reporting that category uses.
- `agent-problem`: the RMM says offline/overdue but the device answers: one
  low-priority "RMM agent not reporting on X" incident per device (`rmm-agent`).
- `disputed`: monitord's evidence contradicts the failure: shown, and ticketed at
  low priority (`rmm-disputed`) only once it has lasted the rule's `persist`.
- `unverifiable`: nothing monitord runs can see it (AV definitions, patches), or
  nothing answered: passed on with the RMM's severity under the rule's category.
- `blind-spot`: monitord's own fault on a device the RMM reports healthy (made by
  the feed, flagged on monitord's incident).

Evidence says *fault*, *fine* or nothing (UNKNOWN, or a result too old). A fault
wins over fine for checks (one failing probe is a confirmation); for
availability any answer wins (a device that answers is up, whatever else timed
out). On a device monitord cannot reach, checks other than its reachability
checks say nothing: their failures are the outage's, not the RMM check's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from correlator.events import check_fingerprint, fingerprint
from monitord.config.rmm import AGENT_CATEGORY, DISPUTED_CATEGORY, Verdicts
from monitord.model import Status

CONFIRMED = "confirmed"
AGENT_PROBLEM = "agent-problem"
DISPUTED = "disputed"
UNVERIFIABLE = "unverifiable"
BLIND_SPOT = "blind-spot"
VERDICTS = (CONFIRMED, AGENT_PROBLEM, DISPUTED, UNVERIFIABLE, BLIND_SPOT)

AVAILABILITY_KINDS = frozenset({"offline", "overdue", "unreachable"})
FAULT, FINE, SILENT = "fault", "fine", "silent"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One thing monitord knows about the fault: a scheduled check's state
    (`origin` "check") or an on-demand verification (`origin` "verify")."""

    origin: str
    check: str  # check id
    kind: str
    status: Status
    hard: bool
    output: str
    at: float
    reachability: bool = False
    fresh: bool = True

    @property
    def says(self) -> str:
        if not self.fresh or self.status == Status.UNKNOWN:
            return SILENT
        return FINE if self.status == Status.OK else FAULT

    @property
    def name(self) -> str:
        return self.check.rsplit("/", 1)[-1]

    def line(self) -> str:
        state = "on demand" if self.origin == "verify" else ("hard" if self.hard else "soft")
        stale = "" if self.fresh else ", stale"
        return f"{self.name} {self.status.label} ({state}{stale}): {self.output[:160]}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "check": self.check,
            "kind": self.kind,
            "status": self.status.label,
            "hard": self.hard,
            "fresh": self.fresh,
            "reachability": self.reachability,
            "output": self.output[:500],
            "at": self.at,
            "says": self.says,
        }


@dataclass(frozen=True, slots=True)
class Facts:
    """What the verdict looks at of one RMM failure."""

    kind: str  # FailureKind value
    category: str  # RMM Category value
    description: str
    device: str | None  # monitord device id; None: not in the inventory
    device_down: bool = False  # every reachability check of the device fails (hard)
    reach_checks: tuple[str, ...] = ()  # the device's reachability check ids


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: str
    rule: str  # the deciding rule, in words
    check_id: str | None = None  # monitord's check covering the same fault


def decide(facts: Facts, rule: Verdicts, evidence: Sequence[Evidence]) -> Decision:
    """The verdict on one RMM failure; see the module docstring."""
    name = f"rmm.verdicts.{facts.category}"
    if facts.device is None:
        return Decision(UNVERIFIABLE, "the device is not in monitord's inventory (not synced)")
    if facts.kind in AVAILABILITY_KINDS:
        return _availability(facts, evidence)
    if rule.unverifiable:
        return Decision(
            UNVERIFIABLE, f"{name}: unverifiable (monitord cannot see this from outside)"
        )
    evidence = _newest(evidence)
    usable = [e for e in evidence if e.reachability or not facts.device_down]
    faults = _ranked([e for e in usable if e.says == FAULT])
    fine = [e for e in usable if e.says == FINE]
    if faults:
        first = faults[0]
        covering = first.check if first.origin == "check" else None
        return Decision(CONFIRMED, f"{name}: monitord sees it too: {first.line()}", covering)
    if fine:
        seen = "; ".join(e.line() for e in fine[:3])
        return Decision(DISPUTED, f"{name}: monitord sees it fine: {seen}")
    if facts.device_down:
        return Decision(
            UNVERIFIABLE, f"{name}: the device does not answer monitord, so nothing can check it"
        )
    if not evidence:
        return Decision(
            UNVERIFIABLE,
            f"{name}: no check of monitord covers {facts.category} on this device "
            f"(configure {name}.evidence or .verify)",
        )
    return Decision(UNVERIFIABLE, f"{name}: monitord's checks gave no answer: {_lines(evidence)}")


def _availability(facts: Facts, evidence: Sequence[Evidence]) -> Decision:
    name = "rmm.verdicts.availability"
    covering = facts.reach_checks[0] if facts.reach_checks else None
    evidence = _newest(evidence)
    fine = _ranked([e for e in evidence if e.says == FINE])
    if fine:
        return Decision(
            AGENT_PROBLEM,
            f"{name}: the RMM says {facts.kind}, but the device answers: {fine[0].line()}",
        )
    faults = _ranked([e for e in evidence if e.says == FAULT])
    if faults:
        return Decision(
            CONFIRMED,
            f"{name}: the device does not answer monitord either: {_lines(faults)}",
            covering,
        )
    if not evidence:
        return Decision(
            UNVERIFIABLE,
            f"{name}: the device has no reachability check and no verification is configured",
        )
    return Decision(UNVERIFIABLE, f"{name}: no answer either way: {_lines(evidence)}")


def _newest(evidence: Sequence[Evidence]) -> list[Evidence]:
    """A check run again on demand replaces its scheduled state: it is newer."""
    rerun = {e.check for e in evidence if e.origin == "verify"}
    return [e for e in evidence if e.origin == "verify" or e.check not in rerun]


def _ranked(items: list[Evidence]) -> list[Evidence]:
    # Scheduled hard states first (monitord's settled view), then soft, then on demand.
    return sorted(items, key=lambda e: (e.origin != "check", not e.hard, e.check))


def _lines(items: Sequence[Evidence]) -> str:
    text = "; ".join(e.line() for e in list(items)[:3])
    return text + (f" (+{len(items) - 3} more)" if len(items) > 3 else "")


# identity ----------------------------------------------------------------------


def problem(category: str, kind: str, description: str) -> str:
    """The source-independent problem of an RMM failure without a covering check."""
    if kind in AVAILABILITY_KINDS:
        return category
    return f"{category}:{' '.join(description.lower().split())[:120]}"


@dataclass(frozen=True, slots=True)
class Identity:
    """The incident a verdict feeds: its fingerprint, category, and the check id the
    event carries (monitord's covering check, so an outage finds it as a member)."""

    fingerprint: str
    category: str
    check_id: str | None


def identity(
    decision: Decision,
    *,
    customer: str | None,
    device: str,
    kind: str,
    description: str,
    category: str,
) -> Identity:
    """`category` is the rule's correlator category (host-down, av-outdated, …)."""
    if decision.verdict == AGENT_PROBLEM:
        return Identity(fingerprint(customer, device, AGENT_CATEGORY), AGENT_CATEGORY, None)
    what = problem(category, kind, description)
    if decision.verdict == DISPUTED:
        fp = fingerprint(customer, device, f"{DISPUTED_CATEGORY}:{what}")
        return Identity(fp, DISPUTED_CATEGORY, None)
    if decision.check_id is not None:
        name = decision.check_id.rsplit("/", 1)[-1]
        return Identity(check_fingerprint(customer, device, name), category, decision.check_id)
    return Identity(fingerprint(customer, device, what), category, None)


def severity(status_word: str) -> Status:
    """The RMM's own severity: a held-back alert or a warning is WARNING."""
    word = status_word.lower()
    if word in ("testalertdelayed", "warning", "info", "warn"):
        return Status.WARNING
    return Status.CRITICAL
