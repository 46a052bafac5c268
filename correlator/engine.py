"""The correlator: events in, few, right incidents out, every decision explained.

`handle(event, now)` and `tick(now)` change the in-memory incidents and record
what they did in a `Changes` batch (incident rows, members, timeline entries,
notifications), which `correlator.store` writes in the writer's transaction.
No I/O and no clock here: `now` comes in, so replaying a stream gives the
same incidents.

The rules, in the order they act on a new problem:
1. fingerprint: the same problem (customer, device, problem) is one incident,
   whichever source reported it, however often;
2. dependency: a problem on a device behind a down parent is attached to the
   parent's outage incident as unreachable and never notified on its own;
3. reopen: a problem back within the reopen window reopens its incident;
4. priority: from the rules, with the explanation kept on the incident;
5. grouping: notification waits group_wait (first of a customer) or
   group_interval, then, right before notifying, the dependency is checked
   again (a parent that turned suspect meanwhile holds the child back, up to
   dependency_wait), mutes apply (maintenance, silences, off-hours
   workstations: held, notified when the mute ends if still open), and the
   storm guard folds a burst at one site into one incident.
Suppression only ever holds back a *trigger*; a resolve of something already
notified always goes out.

Notifications (what tickets and pages act on): "trigger" the first time an
incident is notified, "reopen" when one notified before returns within the
reopen window (its ticket is reopened, not duplicated), "update" when a
notified incident changes in a way the desk should read (priority, more
devices affected, RMM verdict; member counts at most once per
group_interval), "acknowledge", and "resolve".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from correlator.events import INTERNAL, Event, EventKind, fingerprint
from correlator.model import (
    ACKNOWLEDGED,
    OPEN,
    RESOLVED,
    Changes,
    Incident,
    LogEntry,
    Member,
    Notification,
)
from correlator.topology import Health, Topology
from monitord.config.model import CorrelationConfig
from monitord.model import Status

log = logging.getLogger(__name__)

Prioritize = Callable[[Event], tuple[str, str]]
Mute = Callable[[Incident, float], str]
"""Returns why `incident` must not be notified now ("" when it may be)."""

RECHECK_PAUSE = 5.0  # seconds between re-evaluations of a held incident
VERDICT_NOTE = "RMM verdict "  # how the RMM feed's verdict-change notes begin


@dataclass(frozen=True)
class Rules:
    config: CorrelationConfig
    prioritize: Prioritize
    mute: Mute


class Correlator:
    def __init__(self, rules: Rules, topology: Topology, next_id: int = 1) -> None:
        self.rules = rules
        self.topology = topology
        self.next_id = next_id
        self.by_fp: dict[str, Incident] = {}  # open, and resolved within the reopen window
        self.by_id: dict[int, Incident] = {}
        self.member_of: dict[str, int] = {}  # member key → outage/storm incident id
        self.group_due: dict[str | None, float] = {}  # customer → next grouped flush
        self.members_grew: set[int] = set()  # outages/storms whose members changed
        self.changes = Changes()

    # loading -----------------------------------------------------------------
    def restore(self, incidents: Iterable[Incident]) -> None:
        """Take back the incidents the store loaded (open and recently resolved)."""
        for inc in incidents:
            self.by_id[inc.id] = inc
            current = self.by_fp.get(inc.fingerprint)
            if current is None or current.id < inc.id:
                self.by_fp[inc.fingerprint] = inc
            for member in inc.members.values():
                if inc.is_open and member.state != "recovered":
                    self.member_of[member.key] = inc.id
            self.next_id = max(self.next_id, inc.id + 1)

    def take_changes(self) -> Changes:
        changes, self.changes = self.changes, Changes()
        return changes

    # helpers -----------------------------------------------------------------
    def _log(self, inc: Incident, ts: float, action: str, detail: str) -> None:
        self.changes.log.append(LogEntry(inc.id, ts, "monitord", action, detail))
        self.changes.touch(inc)

    def _notify(
        self, inc: Incident, action: str, ts: float, message: str, changes: tuple[str, ...] = ()
    ) -> None:
        self.changes.notifications.append(
            Notification(
                inc.id,
                action,
                ts,
                inc.priority,
                inc.title,
                inc.customer,
                inc.device_id,
                message,
                changes,
            )
        )

    def _schedule(self, inc: Incident, now: float) -> None:
        """Give `inc` its grouped notification time (Alertmanager group_wait/interval)."""
        cfg = self.rules.config
        due = self.group_due.get(inc.customer)
        if due is None or due < now:
            due = now + cfg.group_wait
            self.group_due[inc.customer] = due
        inc.notify_at = due

    def _new(self, event: Event, fp: str, kind: str, title: str, now: float) -> Incident:
        device = self.topology.devices.get(event.device_id or "")
        priority, reason = self.rules.prioritize(event)
        inc = Incident(
            id=self.next_id,
            fingerprint=fp,
            kind=kind,
            state=OPEN,
            priority=priority,
            severity=int(event.status),
            title=title[:300],
            customer=event.customer,
            site=device.site if device else None,
            device_id=event.device_id,
            check_id=event.check_id,
            category=event.category,
            opened_at=now,
            updated_at=now,
            reason=reason,
        )
        self.next_id += 1
        self.by_fp[fp] = inc
        self.by_id[inc.id] = inc
        self._log(inc, now, "opened", f"fingerprint {fp[:12]} from {event.source}: {event.message}")
        self._log(inc, now, "priority", reason)
        return inc

    # events --------------------------------------------------------------------
    def handle(self, event: Event, now: float) -> None:
        """Apply one event; see the module docstring for the order of rules."""
        incident_id: int | None = None
        if event.kind == EventKind.PROBLEM:
            incident_id = self._problem(event, now)
        elif event.kind == EventKind.RECOVERY:
            incident_id = self._recovery(event, now)
        elif event.kind in (EventKind.FLAP_START, EventKind.FLAP_STOP):
            incident_id = self._flap(event, now)
        else:
            inc = self.by_fp.get(event.fingerprint)
            if inc is not None and inc.is_open:
                self._log(inc, now, "info", event.message)
                incident_id = inc.id
                if inc.notified and is_verdict_change(event):
                    self._notify(inc, "update", now, event.message, ("verdict",))
        self.changes.events.append((event, incident_id))

    def _problem(self, event: Event, now: float) -> int:
        fp = event.fingerprint
        inc = self.by_fp.get(fp)
        if inc is not None and inc.is_open:
            if inc.severity != int(event.status):
                inc.severity = int(event.status)
                inc.updated_at = now
                self._log(inc, now, "severity", f"{event.status.label}: {event.message}")
                if inc.kind in ("check", "event"):
                    self._reprioritize(inc, event, now)
            return inc.id
        holder = self.member_of.get(_member_key(event))
        if holder is not None and self.by_id[holder].is_open:
            return self._member_update(self.by_id[holder], event, now)
        root = self.topology.down_ancestor(event.device_id)
        if root is not None:
            outage = self._outage(root, now)
            self._attach(
                outage,
                event,
                now,
                "unreachable",
                f"dependency: {_name(event.device_id)} unreachable behind "
                f"{_name(root)} (parent down)",
            )
            return outage.id
        inc = self._open_or_reopen(event, fp, now)
        if (
            event.device_id
            and self.topology.health(event.device_id) == Health.DOWN
            and self.topology.groups(event.device_id)
        ):
            outage = self._outage(event.device_id, now)
            self._fold(
                inc,
                outage,
                now,
                "dependency: the device itself is down; its checks are part of the outage",
            )
            return outage.id
        suspect = self.topology.suspect_ancestor(event.device_id)
        if suspect is not None:
            self.changes.rechecks.add(suspect)  # race guard: confirm the parent now
        return inc.id

    def _reprioritize(self, inc: Incident, event: Event, now: float) -> None:
        """A changed severity may change the priority; a notified incident says so."""
        priority, reason = self.rules.prioritize(event)
        if priority == inc.priority:
            return
        old, inc.priority, inc.reason = inc.priority, priority, reason
        self._log(inc, now, "priority", f"{old} -> {priority}: {reason}")
        if inc.notified:
            message = f"priority {old} -> {priority}: {reason}"
            self._notify(inc, "update", now, message, ("priority",))

    def _open_or_reopen(self, event: Event, fp: str, now: float) -> Incident:
        old = self.by_fp.get(fp)
        if (
            old is not None
            and old.resolved_at is not None
            and now - old.resolved_at <= self.rules.config.reopen_window
        ):
            old.state, old.resolved_at, old.updated_at = OPEN, None, now
            old.severity = int(event.status)
            self._log(
                old, now, "reopened", f"problem returned within the reopen window: {event.message}"
            )
            if not old.notified and old.parent_id is None:
                self._schedule(old, now)
            return old
        if event.category == INTERNAL:
            inc = self._new(event, fp, "internal", f"monitord: {event.message}", now)
        elif event.device_id is None:
            title = f"unknown device: {event.message}"
            inc = self._new(event, fp, "unknown-device", title, now)
        else:
            what = event.check_id or event.device_id
            inc = self._new(
                event,
                fp,
                "check" if event.check_id else "event",
                f"{what}: {event.status.name} - {event.message}",
                now,
            )
        self._schedule(inc, now)
        return inc

    def _recovery(self, event: Event, now: float) -> int | None:
        holder = self.member_of.get(_member_key(event))
        inc = self.by_fp.get(event.fingerprint)
        result: int | None = None
        if holder is not None:
            outage = self.by_id[holder]
            self._member_recovered(outage, _member_key(event), now)
            result = holder
        if inc is not None and inc.is_open:
            if inc.flapping:
                self._log(
                    inc,
                    now,
                    "flapping",
                    "recovered while flapping: kept open until the flapping stops",
                )
                return inc.id
            self._resolve(inc, now, event.message)
            result = inc.id
        if event.device_id:
            self._maybe_end_outage(event.device_id, now)
        return result

    def _flap(self, event: Event, now: float) -> int | None:
        inc = self.by_fp.get(event.fingerprint)
        if inc is None or not inc.is_open:
            return None
        inc.flapping = event.kind == EventKind.FLAP_START
        self._log(
            inc,
            now,
            "flapping",
            "flapping started: one incident, no repeated notifications"
            if inc.flapping
            else "flapping stopped",
        )
        if not inc.flapping and event.status == Status.OK:
            self._resolve(inc, now, "recovered and no longer flapping")
        return inc.id

    def _resolve(self, inc: Incident, now: float, message: str) -> None:
        inc.state, inc.resolved_at, inc.updated_at = RESOLVED, now, now
        self._log(inc, now, "resolved", message)
        if inc.notified:
            self._notify(inc, "resolve", now, message)
        inc.notified = False
        inc.notify_at = None
        for key, member in inc.members.items():
            if self.member_of.get(key) == inc.id:
                del self.member_of[key]
            self.changes.members.append((inc.id, member))

    # outages -------------------------------------------------------------------
    def _outage(self, root: str, now: float) -> Incident:
        """The open outage incident of `root` (a down device with dependents)."""
        device = self.topology.devices[root]
        fp = fingerprint(device.customer, root, "device-down")
        inc = self.by_fp.get(fp)
        if inc is not None and inc.is_open:
            return inc
        behind = self.topology.dependents(root)
        site = self.topology.site_gateway_of(root)
        if site:
            title = f"site {site} down: {device.name} unreachable, {behind} devices behind it"
        elif behind:
            title = f"{device.name} down, {behind} devices behind it"
        else:
            checks = len(self.topology.reachability.get(root, ()))
            title = f"{device.name} down: none of its {checks} checks answers"
        event = Event(
            now,
            "correlator",
            EventKind.PROBLEM,
            fp,
            device.customer,
            root,
            None,
            Status.CRITICAL,
            title,
            category="site-down" if site else "host-down",
        )
        inc = self._open_or_reopen(event, fp, now)
        inc.kind, inc.title = "outage", title
        self._log(
            inc,
            now,
            "dependency",
            f"{device.name} is down (all reachability checks "
            f"hard): {behind} dependent devices are folded in",
        )
        self._adopt_descendants(inc, root, now)
        return inc

    def _adopt_descendants(self, outage: Incident, root: str, now: float) -> None:
        for other in list(self.by_id.values()):
            if other is outage or not other.is_open or other.parent_id is not None:
                continue
            if other.kind not in ("check", "event", "outage"):
                continue
            if other.device_id == root or self.topology.is_descendant(other.device_id, root):
                self._fold(other, outage, now, f"dependency: behind {_name(root)}, which is down")

    def _fold(self, inc: Incident, into: Incident, now: float, why: str) -> None:
        inc.parent_id = into.id
        inc.notify_at = None
        self._log(inc, now, "folded", f"{why} -> incident #{into.id}")
        key = inc.check_id or f"device:{inc.device_id}"
        into.members[key] = Member(key, inc.device_id, "unreachable", now, inc.title)
        self.member_of[key] = into.id
        self.changes.members.append((into.id, into.members[key]))
        self._log(into, now, "member", f"+ {key}: {why}")
        self.members_grew.add(into.id)

    def _attach(self, outage: Incident, event: Event, now: float, state: str, why: str) -> None:
        key = _member_key(event)
        outage.members[key] = Member(key, event.device_id, state, now, event.message)
        self.member_of[key] = outage.id
        self.changes.members.append((outage.id, outage.members[key]))
        self._log(outage, now, "member", f"+ {key}: {why}")
        self.members_grew.add(outage.id)

    def _member_update(self, outage: Incident, event: Event, now: float) -> int:
        member = outage.members.get(_member_key(event))
        if member is not None and member.message != event.message:
            member.message = event.message
            self.changes.members.append((outage.id, member))
        return outage.id

    def _member_recovered(self, outage: Incident, key: str, now: float) -> None:
        member = outage.members.get(key)
        if member is None or member.state == "recovered":
            return
        member.state, member.since = "recovered", now
        self.member_of.pop(key, None)
        self.changes.members.append((outage.id, member))
        self._log(outage, now, "member", f"- {key}: recovered")

    def _maybe_end_outage(self, device_id: str, now: float) -> None:
        device = self.topology.devices.get(device_id)
        if device is None:
            return
        fp = fingerprint(device.customer, device_id, "device-down")
        outage = self.by_fp.get(fp)
        if outage is None or not outage.is_open or self.topology.health(device_id) == Health.DOWN:
            return
        self._resolve(outage, now, f"{device.name} is reachable again")
        self._release(outage, now)

    def _release(self, outage: Incident, now: float) -> None:
        """After an outage: what is still failing behind it becomes its own incident."""
        for other in list(self.by_id.values()):
            if other.parent_id != outage.id:
                continue
            other.parent_id = None
            if other.is_open and (
                other.check_id is None or self.topology.check_failing(other.check_id)
            ):
                self._log(
                    other,
                    now,
                    "unfolded",
                    f"incident #{outage.id} resolved; still failing on its own",
                )
                if not other.notified:
                    # Re-check it now: most children recover within seconds of their
                    # parent, and must not be notified in that window.
                    self._schedule(other, now)
                    if other.device_id:
                        self.changes.rechecks.add(other.device_id)
            elif other.is_open:
                self._resolve(other, now, f"recovered with incident #{outage.id}")
        for member in outage.members.values():
            if (
                member.state != "recovered"
                and not member.key.startswith("device:")
                and self.topology.check_failing(member.key)
            ):
                self._open_member(member, now)

    def _open_member(self, member: Member, now: float) -> None:
        """A check that was unreachable behind the outage and still fails."""
        device = self.topology.devices.get(member.device_id or "")
        if device is None:
            return
        check_name = member.key.rsplit("/", 1)[-1]
        fp = fingerprint(device.customer, device.id, f"check:{check_name}")
        current = self.by_fp.get(fp)
        if current is not None and current.is_open:
            return  # it has its own incident already (unfolded above)
        event = Event(
            now,
            "correlator",
            EventKind.PROBLEM,
            fp,
            device.customer,
            device.id,
            member.key,
            Status.CRITICAL,
            member.message or "still failing",
        )
        inc = self._open_or_reopen(event, fp, now)
        self._log(inc, now, "unfolded", "parent recovered; this check still fails")
        self.changes.rechecks.add(device.id)

    # notification ----------------------------------------------------------
    def tick(self, now: float) -> None:
        """Notify incidents whose grouped time has come, after a last look at
        dependencies, mutes and storms."""
        due = [
            i
            for i in self.by_id.values()
            if i.is_open
            and i.parent_id is None
            and not i.notified
            and i.notify_at is not None
            and i.notify_at <= now
        ]
        if due:
            ready = [i for i in due if self._may_notify(i, now)]
            for inc in self._storm_guard(ready, now):
                action = "reopen" if inc.ever_notified else "trigger"
                inc.notified = inc.ever_notified = True
                inc.notify_at = None
                inc.muted_by = ""
                inc.told_members, inc.told_at = affected(inc), now
                self._log(
                    inc,
                    now,
                    "notified",
                    f"{inc.priority} to the desk (ticket, page by priority)"
                    + (": it returned, its ticket reopens" if action == "reopen" else ""),
                )
                self._notify(inc, action, now, inc.title)
        self._tell_members(now)
        self._forget_old(now)

    def _tell_members(self, now: float) -> None:
        """An "update" when more devices are affected than the desk was told of,
        at most once per group_interval per incident (a 60-device outage that
        grows over a minute is one or two comments, not sixty)."""
        for incident_id in list(self.members_grew):
            inc = self.by_id.get(incident_id)
            if inc is None or not inc.is_open or not inc.notified or inc.parent_id is not None:
                self.members_grew.discard(incident_id)
                continue
            count = affected(inc)
            if count <= inc.told_members:
                self.members_grew.discard(incident_id)
                continue
            if inc.told_at is not None and now - inc.told_at < self.rules.config.group_interval:
                continue  # told recently: the next tick after the interval tells the total
            message = f"{count} devices affected (was {inc.told_members})"
            inc.told_members, inc.told_at = count, now
            self._log(inc, now, "update", message)
            self._notify(inc, "update", now, message, ("members",))
            self.members_grew.discard(incident_id)

    def _may_notify(self, inc: Incident, now: float) -> bool:
        root = self.topology.down_ancestor(inc.device_id)
        if root is not None:
            self._fold(
                inc,
                self._outage(root, now),
                now,
                f"dependency: parent {_name(root)} went down before notification",
            )
            return False
        suspect = self.topology.suspect_ancestor(inc.device_id)
        if (
            suspect is None
            and inc.device_id
            and self.topology.groups(inc.device_id)
            and self.topology.health(inc.device_id) == Health.SUSPECT
        ):
            suspect = inc.device_id  # its other checks may still turn it into an outage
        if suspect is not None:
            started = inc.wait_started or now
            if inc.wait_started is None:
                inc.wait_started = now
                self._log(
                    inc,
                    now,
                    "waiting",
                    f"parent {_name(suspect)} is failing but not "
                    "confirmed; holding the notification",
                )
                self.changes.rechecks.add(suspect)
            if now - started < self.rules.config.dependency_wait:
                inc.notify_at = now + RECHECK_PAUSE
                return False
        reason = self.rules.mute(inc, now)
        if reason:
            if reason != inc.muted_by:
                inc.muted_by = reason
                self._log(inc, now, "muted", f"{reason}; notified when it ends if still open")
            inc.notify_at = now + RECHECK_PAUSE * 6
            return False
        return True

    def _storm_guard(self, ready: list[Incident], now: float) -> list[Incident]:
        cfg = self.rules.config
        by_site: dict[tuple[str | None, str | None], list[Incident]] = {}
        for inc in ready:
            if inc.kind in ("check", "event"):
                by_site.setdefault((inc.customer, inc.site), []).append(inc)
        out = [i for i in ready if i.kind not in ("check", "event")]
        for (customer, site), group in by_site.items():
            if len(group) < cfg.storm_threshold:
                out.extend(group)
                continue
            storm = self._storm(customer, site, len(group), now)
            for inc in group:
                self._fold(
                    inc,
                    storm,
                    now,
                    f"storm guard: {len(group)} new incidents at "
                    f"{site or customer} within {cfg.storm_window:g}s",
                )
            out.append(storm)
        return out

    def _storm(self, customer: str | None, site: str | None, n: int, now: float) -> Incident:
        window = int(now // self.rules.config.storm_window)
        fp = fingerprint(customer, None, f"storm:{site}:{window}")
        title = f"{n} problems at {site or customer} at once (storm)"
        event = Event(
            now,
            "correlator",
            EventKind.PROBLEM,
            fp,
            customer,
            None,
            None,
            Status.CRITICAL,
            title,
            category="storm",
        )
        inc = self.by_fp.get(fp)
        if inc is None or not inc.is_open:
            inc = self._new(event, fp, "storm", title, now)
            inc.site = site
        return inc

    def _forget_old(self, now: float) -> None:
        """Drop resolved incidents past the reopen window from memory (not the DB)."""
        if len(self.by_id) < 1000:
            return
        horizon = now - self.rules.config.reopen_window
        for inc in [
            i for i in self.by_id.values() if i.resolved_at is not None and i.resolved_at < horizon
        ]:
            del self.by_id[inc.id]
            if self.by_fp.get(inc.fingerprint) is inc:
                del self.by_fp[inc.fingerprint]

    # operator actions ------------------------------------------------------
    def recheck_muted(self, now: float) -> None:
        """Look at held (muted) incidents again at the next tick instead of at
        their periodic re-check: an operator who expires a silence or deletes a
        window expects what it held to be notified now."""
        for inc in self.by_id.values():
            if inc.is_open and inc.parent_id is None and not inc.notified and inc.muted_by:
                inc.notify_at = now

    def acknowledge(self, incident_id: int, who: str, now: float) -> Incident | None:
        inc = self.by_id.get(incident_id)
        if inc is None or not inc.is_open:
            return None
        inc.state, inc.acked_by, inc.acked_at, inc.updated_at = ACKNOWLEDGED, who, now, now
        self._log(inc, now, "acknowledged", f"by {who}")
        if inc.notified:  # tickets note it, escalation stops
            self._notify(inc, "acknowledge", now, f"acknowledged by {who}")
        return inc

    def unacknowledge(self, incident_id: int, why: str, now: float) -> Incident | None:
        """An acknowledgement lapsed (it expired, or its holder's shift ended and paging
        re-offered it): the incident is open again, waiting for someone to take it."""
        inc = self.by_id.get(incident_id)
        if inc is None or inc.state != ACKNOWLEDGED:
            return None
        inc.state, inc.acked_by, inc.acked_at, inc.updated_at = OPEN, None, None, now
        self._log(inc, now, "unacknowledged", why)
        return inc


def affected(inc: Incident) -> int:
    """How many devices `inc` affects now: its own and its members' still failing."""
    devices = {m.device_id for m in inc.members.values() if m.state != "recovered"}
    if inc.device_id:
        devices.add(inc.device_id)
    devices.discard(None)
    return len(devices)


def is_verdict_change(event: Event) -> bool:
    """An RMM feed's note that its verdict on a failure changed (monitord.rmm.feed
    writes these as INFO events "RMM verdict <old> → <new>: <rule>")."""
    return event.source.startswith("rmm") and event.message.startswith(VERDICT_NOTE)


def _member_key(event: Event) -> str:
    return event.check_id or f"device:{event.device_id}"


def _name(device_id: str | None) -> str:
    return (device_id or "?").split("/", 1)[-1]
