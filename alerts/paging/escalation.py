"""Escalations: the state of every page, in the database, advanced on the clock.

`PagePlanner.plan` runs in the transaction that records an incident change (the
notify stage) and decides there:

| notification | what happens                                                          |
| ------------ | --------------------------------------------------------------------- |
| trigger      | routing decision (timeline, actor "paging"); an escalation starts     |
| reopen       | the same: a problem back after it was notified pages again            |
| update       | only a priority change matters: one that makes it paged now routes it |
|              | like a trigger (a P3 turned P1 at night) or brings a page deferred to |
|              | the morning forward; others page nobody, a running escalation goes on |
| acknowledge  | the escalation stops; unsent pages are cancelled; the others paged    |
|              | hear who took it                                                      |
| resolve      | the escalation ends; unsent pages are cancelled; everyone who got the |
|              | trigger (also before an ack of theirs expired) gets a resolve         |

`Escalator.advance(conn, now)` is the periodic job (one transaction): it fires the
steps that are due (their targets resolved against the schedule at that instant),
lapses expired acks, re-offers acks whose holder's shift ended, and releases pages
the per-engineer rate limit held back as one summary. The pages themselves are
written by `pages` (outbox rows with an op key per escalation, engineer, step and
round), so firing twice writes nothing twice and a restart neither loses nor
repeats a step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update

from alerts.oncall import who_is_on_call
from alerts.outbox import put
from alerts.paging.model import Env, Outcome, engineer_target, iso, log_entry
from alerts.paging.pages import page, release_held
from alerts.paging.routing import (
    INTERNAL_POLICY,
    LEGACY_POLICY,
    Decision,
    Facts,
    decide,
    local_time,
)
from correlator.calendar import Calendars
from correlator.model import Notification
from monitord.config.model import Config
from monitord.config.oncall import Engineer, OncallConfig
from monitord.config.paging import CHANNEL_PREFIX, FALLBACK, Policy, Step
from monitord.storage.schema import (
    incidents,
    outbox,
    page_acks,
    page_channels,
    page_escalations,
    page_recipients,
)

log = logging.getLogger(__name__)

OPEN_STATES = ("pending", "active", "acked", "exhausted")
MUTED_RECHECK = 300.0  # a deferred page held by maintenance looks again after this


class Escalator:
    """Every paging decision, inside the caller's transaction (see the module docstring)."""

    def __init__(self, env: Callable[[Connection, float], Env]) -> None:
        self.env = env

    # notifications -------------------------------------------------------------
    def on_note(self, conn: Connection, note: Notification, now: float, via: str) -> Outcome:
        out = Outcome()
        row = conn.execute(select(incidents).where(incidents.c.id == note.incident)).first()
        if row is None:
            return out
        if note.action in ("trigger", "reopen"):
            self._route(conn, row, now, out, "returned: " if note.action == "reopen" else "")
        elif note.action == "update" and "priority" in note.changes:
            self._reprioritised(conn, row, now, out)
        elif note.action == "acknowledge":
            self._acknowledged(conn, row, now, note.message, via, out)
        elif note.action == "resolve":
            self._resolved(conn, row, now, out)
        return out

    def _open(self, conn: Connection, incident_id: int) -> Any:
        return conn.execute(
            select(page_escalations)
            .where(
                page_escalations.c.incident_id == incident_id,
                page_escalations.c.state.in_(OPEN_STATES),
            )
            .order_by(page_escalations.c.id.desc())
        ).first()

    def decision(self, env: Env, row: Any, now: float) -> Decision:
        facts = Facts(row.priority, row.customer, row.category, env.muted(row.id, now))
        return decide(
            facts,
            env.config.paging,
            env.config.alerting.page_priorities,
            env.calendars.get(row.customer),
            now,
        )

    def _route(
        self, conn: Connection, row: Any, now: float, out: Outcome, why: str, quiet: bool = False
    ) -> None:
        if self._open(conn, row.id) is not None:
            return  # one escalation per incident at a time
        env = self.env(conn, now)
        decision = self.decision(env, row, now)
        if quiet and decision.action == "ticket":
            return  # a change that pages nobody is not worth a line
        log_entry(conn, row.id, now, "route", why + decision.text())
        if decision.action == "ticket":
            return
        _start(conn, row, decision, now, decision.reason)
        out.paged = True  # wake the escalation job: its first step is due

    def _reprioritised(self, conn: Connection, row: Any, now: float, out: Outcome) -> None:
        """A new priority: an incident nobody is paged for is routed afresh (a P3 turned
        P1 at night pages now); a page deferred to the morning that the new priority
        makes urgent is brought forward; a running escalation carries on as it is (a
        lower priority never stops a page already under way)."""
        esc = self._open(conn, row.id)
        why = f"priority now {row.priority}: "
        if esc is None:
            self._route(conn, row, now, out, why, quiet=True)
            return
        if esc.state != "pending":
            return
        env = self.env(conn, now)
        if self.decision(env, row, now).action != "page":
            return
        self._set(conn, esc.id, now, state="superseded", next_at=None)
        when = local_time(esc.next_at, env.calendars.get(row.customer))
        self._route(conn, row, now, out, why + f"the page deferred to {when} goes now; ")

    def _acknowledged(
        self, conn: Connection, row: Any, now: float, message: str, via: str, out: Outcome
    ) -> None:
        # the incident row of this transaction carries who (the correlator set it)
        who = row.acked_by or message.removeprefix("acknowledged by ").strip() or "?"
        esc = self._open(conn, row.id)
        conn.execute(
            insert(page_acks).values(
                incident_id=row.id,
                escalation_id=esc.id if esc is not None else None,
                by=who[:100],
                via=via[:30],
                ts=now,
            )
        )
        if esc is None:
            return
        env = self.env(conn, now)
        policy = self._policy(env, esc.policy)
        expiry = env.config.paging.ack_expiry
        if policy is not None and policy.ack_expiry is not None:
            expiry = policy.ack_expiry
        layer = conn.execute(
            select(page_recipients.c.via)
            .where(
                page_recipients.c.escalation_id == esc.id,
                page_recipients.c.engineer == who,
                page_recipients.c.via.contains("/"),
            )
            .order_by(page_recipients.c.id.desc())
        ).scalar()
        conn.execute(
            update(page_escalations)
            .where(page_escalations.c.id == esc.id)
            .values(
                state="acked",
                acked_by=who[:100],
                acked_at=now,
                acked_via=via[:30],
                ack_expires_at=now + expiry if expiry > 0 else None,
                acked_layer=layer,
                next_at=None,
                updated_at=now,
            )
        )
        cancelled = self._cancel_unsent(conn, esc.id, "acknowledged")
        detail = f"escalation stopped: acknowledged by {who} via {via}"
        if expiry > 0:
            detail += f"; the ack lapses at {iso(now + expiry)} unless resolved"
        if cancelled:
            detail += f"; {cancelled} unsent page(s) cancelled"
        log_entry(conn, row.id, now, "ack", detail)
        if esc.started_at is not None:
            out.acked.append(now - esc.started_at)
        told = self._tell(conn, [esc], row, "acknowledge", now, f"acknowledged by {who}", skip=who)
        if told:
            out.paged = True

    def _resolved(self, conn: Connection, row: Any, now: float, out: Outcome) -> None:
        # Escalations whose ack expired were replaced by a new one (or by none: ticket
        # only by then); whoever they paged hears of the resolve too.
        lapsed = conn.execute(
            select(page_escalations).where(
                page_escalations.c.incident_id == row.id, page_escalations.c.state == "expired"
            )
        ).all()
        esc = self._open(conn, row.id)
        if esc is None and not lapsed:
            return
        for old in lapsed:
            self._set(conn, old.id, now, state="resolved")
        cancelled = 0
        if esc is not None:
            self._set(conn, esc.id, now, state="resolved", next_at=None)
            cancelled = self._cancel_unsent(conn, esc.id, "resolved")
        escalations = ([esc] if esc is not None else []) + list(lapsed)
        told = self._tell(conn, escalations, row, "resolve", now, "resolved")
        if esc is not None and esc.state == "pending" and not told:
            log_entry(conn, row.id, now, "cancel", "resolved before its page was due: nobody paged")
            return
        detail = f"resolved: a resolve page to {', '.join(told) or 'nobody'}"
        if cancelled:
            detail += f"; {cancelled} unsent page(s) cancelled"
        log_entry(conn, row.id, now, "resolve", detail)
        out.paged = out.paged or bool(told)

    def _cancel_unsent(self, conn: Connection, escalation_id: int, why: str) -> int:
        """Cancel this escalation's pages nobody has tried to send yet (summaries that
        also carry other incidents stay); drop its held ones. Returns how many."""
        conn.execute(
            update(page_recipients)
            .where(page_recipients.c.escalation_id == escalation_id, page_recipients.c.held)
            .values(held=False)
        )
        rows = conn.execute(
            select(page_recipients.c.outbox_id)
            .join(outbox, outbox.c.id == page_recipients.c.outbox_id)
            .where(
                page_recipients.c.escalation_id == escalation_id,
                outbox.c.delivered_at.is_(None),
                outbox.c.attempts == 0,
                outbox.c.parked.is_(False),
            )
        ).all()
        cancelled = 0
        for (outbox_id,) in rows:
            shared = conn.execute(
                select(func.count())
                .select_from(page_recipients)
                .where(page_recipients.c.outbox_id == outbox_id)
            ).scalar_one()
            if shared > 1:
                continue
            conn.execute(
                update(outbox)
                .where(outbox.c.id == outbox_id)
                .values(parked=True, last_error=f"cancelled: {why}")
            )
            cancelled += 1
        return cancelled

    def _tell(
        self,
        conn: Connection,
        escalations: list[Any],
        row: Any,
        action: str,
        now: float,
        message: str,
        skip: str | None = None,
    ) -> list[str]:
        """A resolve (or ack notice) to everyone whose trigger page of `escalations` was
        sent or is being sent; returns their names."""
        esc = escalations[0]
        paged = conn.execute(
            select(page_recipients.c.engineer)
            .join(outbox, outbox.c.id == page_recipients.c.outbox_id)
            .where(
                page_recipients.c.escalation_id.in_([e.id for e in escalations]),
                or_(outbox.c.delivered_at.is_not(None), outbox.c.attempts > 0),
                outbox.c.kind == "page",
            )
            .distinct()
        ).all()
        names = sorted({r.engineer for r in paged} - {skip})
        if action == "acknowledge":  # a console needs no "someone took it"; PagerDuty does
            consoles = {
                CHANNEL_PREFIX + c.name for c in self.env(conn, now).config.alerting.channels
            }
            names = [n for n in names if n not in consoles]
        for name in names:
            key = f"page:{esc.id}:{name}:{action}:{int(now)}"
            if conn.execute(select(outbox.c.id).where(outbox.c.op_key == key)).first():
                continue
            title = f"{row.title}"
            payload = {
                "engineer": name,
                "incidents": [row.id],
                "title": title,
                "body": message,
                "priority": row.priority,
                "dedup_key": f"monitord-incident-{row.id}",
                "ack_url": None,
                "subject": f"[{row.priority}] {title}",
                "ts": now,
            }
            channel = name.startswith(CHANNEL_PREFIX)
            target = name[len(CHANNEL_PREFIX) :] if channel else engineer_target(name)
            put(
                conn,
                kind="page",
                target=target,
                op=action,
                incident_id=row.id,
                op_key=key,
                payload=payload,
                now=now,
            )
        return names

    # the periodic job -----------------------------------------------------------
    def advance(self, conn: Connection, now: float) -> Outcome:
        """Everything due at `now` (see the module docstring), in `conn`'s transaction."""
        out = Outcome()
        env = self.env(conn, now)
        self._watch_layers(conn, env, now, out)
        self._lapse_acks(conn, env, now, out)
        if env.config.paging.handover:
            self._handovers(conn, env, now, out)
            self._unanswered_handovers(conn, env, now, out)
        batch: dict[str, list[tuple[Any, Any, str, int, int, str]]] = {}
        # FOR UPDATE (PostgreSQL): an ack committing meanwhile waits for this step and then
        # cancels what it queued; a second daemon re-reads and finds the step taken.
        due = conn.execute(
            select(page_escalations)
            .where(
                page_escalations.c.state.in_(("pending", "active")),
                page_escalations.c.next_at <= now,
            )
            .order_by(page_escalations.c.id)
            .with_for_update()
        ).all()
        for esc in due:
            self._fire(conn, env, esc, now, batch, out)
        release_held(conn, env, now, batch, out)
        for name, items in batch.items():
            page(conn, env, name, items, now, out)
        return out

    def _policy(self, env: Env, name: str | None) -> Policy | None:
        paging = env.config.paging
        if name == INTERNAL_POLICY:
            targets = paging.internal_targets
            if env.oncall.fallback is None:
                targets = tuple(t for t in targets if t != FALLBACK)
            if not targets:
                targets = tuple(CHANNEL_PREFIX + c.name for c in env.config.alerting.channels)
            return Policy(name=INTERNAL_POLICY, steps=(Step(targets=targets or ("fallback",)),))
        if name == LEGACY_POLICY:
            targets = tuple(CHANNEL_PREFIX + c.name for c in env.config.alerting.channels)
            return Policy(name=LEGACY_POLICY, steps=(Step(targets=targets),)) if targets else None
        return paging.policy(name)

    def _fire(
        self,
        conn: Connection,
        env: Env,
        esc: Any,
        now: float,
        batch: dict[str, list[tuple[Any, Any, str, int, int, str]]],
        out: Outcome,
    ) -> None:
        row = self._due_row(conn, env, esc, now)
        if row is None:
            return
        policy = self._policy(env, esc.policy)
        if policy is None:
            log_entry(
                conn,
                row.id,
                now,
                "page",
                f"policy {esc.policy!r} is no longer configured: the internal targets instead",
            )
            policy = self._policy(env, INTERNAL_POLICY)
            assert policy is not None
        index = min(esc.step, len(policy.steps) - 1)
        step = policy.steps[index]
        names: list[str] = []
        for target in step.targets:
            for name, via in self._resolve_target(conn, env, target, now, out):
                names.append(f"{name} ({via})" if via != name else name)
                batch.setdefault(name, []).append((esc, row, via, index, esc.loop, "trigger"))
        if index > 0 or esc.loop > 0:
            out.escalations.append(policy.name)
        round_ = f", round {esc.loop + 1}" if esc.loop else ""
        log_entry(
            conn,
            row.id,
            now,
            "page" if index == 0 and esc.loop == 0 else "escalate",
            f"policy {policy.name} step {index + 1}{round_}: "
            + (", ".join(names) if names else "nobody to page"),
        )
        nxt, loop = index + 1, esc.loop
        if nxt >= len(policy.steps):
            nxt, loop = 0, loop + 1
        if loop > policy.repeat:
            self._set(conn, esc.id, now, state="exhausted", step=nxt, loop=loop, next_at=None)
            if len(policy.steps) > 1 or policy.repeat:
                log_entry(
                    conn,
                    row.id,
                    now,
                    "exhausted",
                    f"policy {policy.name} ran out of steps: nobody acknowledged",
                )
            return
        self._set(conn, esc.id, now, step=nxt, loop=loop, next_at=now + step.wait)

    def _due_row(self, conn: Connection, env: Env, esc: Any, now: float) -> Any:
        """The incident of a due escalation, or None when it must not fire now (resolved
        meanwhile; a deferred page while its incident is in maintenance)."""
        row = conn.execute(select(incidents).where(incidents.c.id == esc.incident_id)).first()
        if row is None or row.state == "resolved":
            self._set(conn, esc.id, now, state="resolved", next_at=None)
            return None
        if esc.state == "pending":
            muted = env.muted(row.id, now)
            if muted:
                self._set(conn, esc.id, now, next_at=now + MUTED_RECHECK)
                log_entry(conn, row.id, now, "held", f"deferred page held: {muted}")
                return None
            self._set(conn, esc.id, now, state="active", started_at=now)
        return row

    def _set(self, conn: Connection, escalation_id: int, now: float, **values: Any) -> None:
        conn.execute(
            update(page_escalations)
            .where(page_escalations.c.id == escalation_id)
            .values(updated_at=now, **values)
        )

    def _resolve_target(
        self, conn: Connection, env: Env, target: str, now: float, out: Outcome
    ) -> list[tuple[str, str]]:
        """(engineer or channel:<name>, the target it came through) for one target at `now`.

        A layer with nobody on call raises the internal incident `oncall-gap:<layer>`
        (cleared when someone is on call there again) and pages the fallback contact.
        """
        oncall = env.oncall
        if target.startswith(CHANNEL_PREFIX):
            return [(target, target)]
        if target == FALLBACK:
            return [(oncall.fallback.name, FALLBACK)] if oncall.fallback else []
        if "/" not in target:
            return [(target, target)]
        schedule_name, _, layer_name = target.partition("/")
        schedule = oncall.schedule(schedule_name)
        layer = schedule.layer(layer_name) if schedule else None
        names = {e.name: e.label for e in oncall.engineers}
        who = who_is_on_call(schedule, layer, now, names) if schedule and layer else None
        gap = f"gap:{target}"
        if who is not None:
            if self._flag(conn, gap, now, False):
                out.internal.append((f"oncall-gap:{target}", f"{target} is covered again", True))
            return [(who.engineer, target)]
        if not self._flag(conn, gap, now, True):
            out.internal.append(
                (
                    f"oncall-gap:{target}",
                    f"nobody is on call in {target}: the fallback contact is paged instead",
                    False,
                )
            )
        return [(oncall.fallback.name, FALLBACK)] if oncall.fallback else []

    def _watch_layers(self, conn: Connection, env: Env, now: float, out: Outcome) -> None:
        """Every layer a policy pages: a gap is raised now, not at 2 a.m. when it is
        needed, and cleared as soon as someone is on call there again."""
        layers = {
            target
            for policy in env.config.paging.policies
            for step in policy.steps
            for target in step.targets
            if "/" in target and not target.startswith(CHANNEL_PREFIX)
        }
        for target in sorted(layers):
            self._resolve_target(conn, env, target, now, out)

    def _flag(self, conn: Connection, name: str, now: float, raised: bool) -> bool:
        """Set a raised flag in page_channels; returns what it was before."""
        row = conn.execute(
            select(page_channels.c.raised).where(page_channels.c.name == name)
        ).first()
        if row is None:
            if raised:
                conn.execute(
                    insert(page_channels).values(
                        name=name, raised=True, last_error="", updated_at=now, failing_since=now
                    )
                )
            return False
        if bool(row.raised) != raised:
            conn.execute(
                update(page_channels)
                .where(page_channels.c.name == name)
                .values(raised=raised, updated_at=now)
            )
        return bool(row.raised)

    # acks over time --------------------------------------------------------------
    def _lapse_acks(self, conn: Connection, env: Env, now: float, out: Outcome) -> None:
        lapsed = conn.execute(
            select(page_escalations).where(
                page_escalations.c.state == "acked",
                page_escalations.c.ack_expires_at.is_not(None),
                page_escalations.c.ack_expires_at <= now,
            )
        ).all()
        for esc in lapsed:
            row = conn.execute(select(incidents).where(incidents.c.id == esc.incident_id)).first()
            if row is None or row.state == "resolved":
                self._set(conn, esc.id, now, state="resolved", next_at=None)
                continue
            self._set(conn, esc.id, now, state="expired", next_at=None)
            why = f"the acknowledgement by {esc.acked_by} expired unresolved"
            out.unack.append((row.id, why))
            decision = self.decision(env, row, now)
            log_entry(conn, row.id, now, "ack-expired", f"{why}: " + decision.text())
            if decision.action != "ticket":
                _start(conn, row, decision, now, f"{why}; {decision.reason}")

    def _handovers(self, conn: Connection, env: Env, now: float, out: Outcome) -> None:
        held = conn.execute(
            select(page_escalations).where(
                page_escalations.c.state == "acked", page_escalations.c.acked_layer.is_not(None)
            )
        ).all()
        names = {e.name: e.label for e in env.oncall.engineers}
        for esc in held:
            schedule_name, _, layer_name = str(esc.acked_layer).partition("/")
            schedule = env.oncall.schedule(schedule_name)
            layer = schedule.layer(layer_name) if schedule else None
            if schedule is None or layer is None:
                continue
            now_on = who_is_on_call(schedule, layer, now, names)
            if now_on is None or now_on.engineer == esc.acked_by:
                continue
            row = conn.execute(select(incidents).where(incidents.c.id == esc.incident_id)).first()
            if row is None or row.state == "resolved":
                continue
            policy = self._policy(env, esc.policy)
            index = 0
            if policy is not None:
                index = next(
                    (i for i, s in enumerate(policy.steps) if esc.acked_layer in s.targets), 0
                )
            wait = policy.steps[index].wait if policy is not None else 600.0
            nxt, loop = index + 1, 0
            state = "active"
            if policy is None or nxt >= len(policy.steps):
                nxt, loop = 0, 1
                state = "active" if policy is not None and policy.repeat >= 1 else "exhausted"
            self._set(
                conn,
                esc.id,
                now,
                state=state,
                step=nxt,
                loop=loop,
                next_at=now + wait if state == "active" else None,
                acked_by=None,
                acked_at=None,
                acked_via=None,
                ack_expires_at=None,
                acked_layer=None,
            )
            why = (
                f"{esc.acked_by}'s shift in {esc.acked_layer} ended with the incident acknowledged"
            )
            out.unack.append((row.id, why))
            log_entry(
                conn,
                row.id,
                now,
                "handover",
                f"{why}: re-offered to {names.get(now_on.engineer, now_on.engineer)}",
            )
            page(
                conn,
                env,
                now_on.engineer,
                [(esc, row, str(esc.acked_layer), index, loop, f"handover:{esc.acked_by}")],
                now,
                out,
            )

    def _unanswered_handovers(self, conn: Connection, env: Env, now: float, out: Outcome) -> None:
        """An escalation that ran out of steps with nobody acknowledging is offered to
        whoever comes on call in one of its policy's layers (the Monday 08:00 shift
        learns of the night's unanswered P1), and escalates from there once more."""
        names = {e.name: e.label for e in env.oncall.engineers}
        for esc in conn.execute(
            select(page_escalations).where(page_escalations.c.state == "exhausted")
        ).all():
            policy = self._policy(env, esc.policy)
            row = conn.execute(select(incidents).where(incidents.c.id == esc.incident_id)).first()
            if policy is None or row is None or row.state == "resolved":
                continue
            found = self._newcomer(conn, env, esc, policy, now)
            if found is None:
                continue
            index, target, engineer, before = found
            nxt = index + 1
            state = "active" if nxt < len(policy.steps) else "exhausted"
            self._set(
                conn,
                esc.id,
                now,
                state=state,
                step=nxt,
                loop=policy.repeat,
                next_at=now + policy.steps[index].wait if state == "active" else None,
            )
            log_entry(
                conn,
                row.id,
                now,
                "handover",
                f"nobody acknowledged before the shift in {target} ended: offered to "
                f"{names.get(engineer, engineer)}",
            )
            kind = f"handover:{before}"
            page(conn, env, engineer, [(esc, row, target, index, policy.repeat, kind)], now, out)

    def _newcomer(
        self, conn: Connection, env: Env, esc: Any, policy: Policy, now: float
    ) -> tuple[int, str, str, str] | None:
        """(step, layer, engineer on call there now, who was paged there before) for the
        first layer of `policy` whose on-call engineer `esc` has not paged through it."""
        names = {e.name: e.label for e in env.oncall.engineers}
        for index, step in enumerate(policy.steps):
            for target in step.targets:
                if "/" not in target or target.startswith(CHANNEL_PREFIX):
                    continue
                schedule_name, _, layer_name = target.partition("/")
                schedule = env.oncall.schedule(schedule_name)
                layer = schedule.layer(layer_name) if schedule else None
                on = who_is_on_call(schedule, layer, now, names) if schedule and layer else None
                if on is None:
                    continue
                paged = (
                    conn.execute(
                        select(page_recipients.c.engineer)
                        .where(
                            page_recipients.c.escalation_id == esc.id,
                            page_recipients.c.via == target,
                        )
                        .order_by(page_recipients.c.id.desc())
                    )
                    .scalars()
                    .all()
                )
                if paged and on.engineer not in paged:
                    return index, target, on.engineer, paged[0]
        return None

    # writing pages ----------------------------------------------------------------


def _start(conn: Connection, row: Any, decision: Decision, now: float, reason: str) -> None:
    """A new escalation of incident `row` as `decision` (page now, or pending until
    `decision.at`) says."""
    conn.execute(
        insert(page_escalations).values(
            incident_id=row.id,
            policy=decision.policy,
            state="active" if decision.action == "page" else "pending",
            step=0,
            loop=0,
            next_at=decision.at if decision.at is not None else now,
            reason=reason[:2000],
            priority=row.priority,
            customer=row.customer,
            created_at=now,
            started_at=now if decision.action == "page" else None,
            updated_at=now,
        )
    )


def config_env(config: Callable[[], Config]) -> Callable[[Connection, float], Env]:
    """An `Env` for `config` with its stored overrides and no mutes (tools, benchmarks)."""
    from alerts.paging.overrides import effective, stored

    def build(conn: Connection, now: float) -> Env:
        cfg = config()
        return Env(
            cfg,
            effective(cfg.oncall, stored(conn, now)),
            Calendars(cfg.customers),
            lambda _i, _t: "",
            cfg.daemon.public_url,
        )

    return build


def engineers_of(oncall: OncallConfig) -> dict[str, Engineer]:
    """Every pageable person by name: the engineers and the fallback contact."""
    out = {e.name: e for e in oncall.engineers}
    if oncall.fallback is not None:
        out.setdefault(oncall.fallback.name, oncall.fallback)
    return out


def open_escalations(conn: Connection) -> list[Any]:
    return list(
        conn.execute(
            select(page_escalations)
            .where(page_escalations.c.state.in_(OPEN_STATES))
            .order_by(page_escalations.c.id)
        ).all()
    )
