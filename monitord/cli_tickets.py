"""`monitord tickets list|show|assign|comment|log|status|link|parked|retry|systems`.

Talks to the running daemon's API (`--url`), like `monitord status`: the daemon
validates, stores and acts; this prints what it answered. Exit 0 on success, 1
when the daemon refused (its reason is printed) or is not answering.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from monitord.api_client import call_api

DEFAULT_URL = "http://127.0.0.1:9787"


def add_parser(sub: Any) -> None:
    """Add the `tickets` command to the `monitord` parser."""
    tickets = sub.add_parser("tickets", help="tickets, links and parked operations (daemon)")
    actions = tickets.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="built-in tickets, newest first")
    listing.add_argument("--status", choices=("active", "open", "resolved", "closed"))
    listing.add_argument("--customer")
    listing.add_argument("--incident", type=int)
    show = actions.add_parser("show", help="a ticket with its history and work log")
    show.add_argument("ticket", type=int)
    assign = actions.add_parser("assign", help="assign a ticket (--nobody to unassign)")
    assign.add_argument("ticket", type=int)
    who = assign.add_mutually_exclusive_group(required=True)
    who.add_argument("assignee", nargs="?")
    who.add_argument("--nobody", action="store_true")
    comment = actions.add_parser("comment", help="add a comment to a ticket")
    comment.add_argument("ticket", type=int)
    comment.add_argument("text")
    log = actions.add_parser("log", help="log work on a ticket: who, how long, what")
    log.add_argument("ticket", type=int)
    log.add_argument("--minutes", type=int, required=True)
    log.add_argument("--note", required=True, help="what was done")
    status = actions.add_parser("status", help="resolve, close or reopen a ticket")
    status.add_argument("ticket", type=int)
    status.add_argument("status", choices=("open", "resolved", "closed"))
    status.add_argument("--resolution", help="how it was resolved (for the report)")
    link = actions.add_parser(
        "link", help="link an incident to an existing ticket (no new one is opened)"
    )
    link.add_argument("incident", type=int)
    link.add_argument("ticket", help="the ticket's id in that system")
    link.add_argument("--system", default="builtin", help="builtin or a ticket_systems name")
    parked = actions.add_parser("parked", help="ticket operations parked by a refusal")
    parked.add_argument("--system")
    retry = actions.add_parser("retry", help="retry parked operations after a fix")
    retry.add_argument("--system")
    retry.add_argument("--incident", type=int)
    retry.add_argument("--id", type=int, help="one operation")
    actions.add_parser("systems", help="each ticket system: ok, failing or blocked")
    for p in (assign, comment, log, status, link, retry):
        p.add_argument("--by", required=True, help="who does it")
    for p in (listing, show, assign, comment, log, status, link, parked, retry):
        p.add_argument("--json", action="store_true")
    for p in actions.choices.values():
        p.add_argument("--url", default=DEFAULT_URL)


def run(args: argparse.Namespace) -> int:
    """Carry out a parsed `tickets` command."""
    api = f"{args.url}/api/v1"
    actions: dict[str, Callable[[], Any]] = {
        "list": lambda: call_api("GET", f"{api}/tickets?{_query(args)}"),
        "show": lambda: call_api("GET", f"{api}/tickets/{args.ticket}"),
        "assign": lambda: call_api(
            "POST",
            f"{api}/tickets/{args.ticket}/assign",
            {"assignee": None if args.nobody else args.assignee, "by": args.by},
        ),
        "comment": lambda: call_api(
            "POST", f"{api}/tickets/{args.ticket}/comments", {"text": args.text, "by": args.by}
        ),
        "log": lambda: call_api(
            "POST",
            f"{api}/tickets/{args.ticket}/worklog",
            {"minutes": args.minutes, "note": args.note, "by": args.by},
        ),
        "status": lambda: call_api(
            "POST",
            f"{api}/tickets/{args.ticket}/status",
            {"status": args.status, "resolution": args.resolution, "by": args.by},
        ),
        "link": lambda: call_api(
            "POST",
            f"{api}/incidents/{args.incident}/tickets",
            {"system": args.system, "ticket": args.ticket, "by": args.by},
        ),
        "parked": lambda: call_api(
            "GET", f"{api}/ticket-operations?state=parked&{_query(args, 'system')}"
        ),
        "retry": lambda: call_api(
            "POST",
            f"{api}/ticket-operations/retry",
            {"system": args.system, "incident": args.incident, "id": args.id, "by": args.by},
        ),
        "systems": lambda: call_api("GET", f"{api}/ticket-systems"),
    }
    try:
        data = actions[args.action]()
    except urllib.error.HTTPError as exc:
        print(f"refused ({exc.code}): {_error(exc)}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"monitord is not answering at {args.url}: {exc}", file=sys.stderr)
        return 1
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2))
        return 0
    for line in PRINTERS[args.action](data):
        print(line)
    return 0


def _query(args: argparse.Namespace, *names: str) -> str:
    names = names or ("status", "customer", "incident")
    return urllib.parse.urlencode(
        {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    )


def _error(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read())
    except ValueError:
        return str(exc.reason)
    return str(body.get("error", exc.reason)) if isinstance(body, dict) else str(exc.reason)


# -- printing ----------------------------------------------------------------------------


def _row(t: dict[str, Any]) -> str:
    who = t["assignee"] or "-"
    return (
        f"#{t['id']:<5} {t['priority']} {t['status']:<8} {who:<12} {t['customer'] or '-':<12} "
        f"{t['subject']}"
    )


def _list(data: Any) -> list[str]:
    rows = data["tickets"]
    return [f"{len(rows)} tickets", *(f"  {_row(t)}" for t in rows)]


def _show(t: Any) -> list[str]:
    lines = [
        _row(t),
        f"  incidents {', '.join(f'#{i}' for i in t['incidents']) or '-'}; "
        f"opened {t['created_at']}, resolved {t['resolved_at'] or '-'}"
        + (f" by {t['resolved_by']}" if t["resolved_by"] else "")
        + f", closed {t['closed_at'] or '-'}, reopened {t['reopened']}x",
    ]
    if t["resolution"]:
        lines.append(f"  resolution: {t['resolution']}")
    lines.append(f"  time spent: {t['minutes_spent']} min")
    for ref in t["elsewhere"]:
        how = f"linked by {ref['linked_by']}" if ref["linked_by"] else "opened by monitord"
        lines.append(f"  in {ref['system']}: ticket {ref['ticket']} ({how})")
    lines.append("history:")
    for h in t["history"]:
        first, *rest = h["text"].splitlines() or [""]
        lines.append(f"  {h['ts']}  {h['by']:<10} {h['kind']:<11} {first}")
        lines += [f"  {'':<38}{line}" for line in rest]
    if t["worklog"]:
        lines.append("work log:")
        lines += [
            f"  {w['ts']}  {w['by']:<10} {w['minutes']:>4} min  {w['note']}" for w in t["worklog"]
        ]
    return lines


def _link(data: Any) -> list[str]:
    lines = [f"incident #{data['incident']} tickets:"]
    for ref in data["tickets"]:
        how = f"linked by {ref['linked_by']}" if ref["linked_by"] else "opened by monitord"
        lines.append(f"  {ref['system']:<12} {ref['ticket']:<10} {how}")
    return lines


def _ops(data: Any) -> list[str]:
    ops = data["operations"]
    lines = [f"{len(ops)} parked operations"]
    for op in ops:
        lines.append(
            f"  #{op['id']:<6} {op['system']:<12} {op['op']:<8} incident #{op['incident']}: "
            f"{op['error']}"
        )
    return lines


def _retry(data: Any) -> list[str]:
    if not data["retried"]:
        return ["nothing parked matches"]
    return [f"{data['retried']} operations back in line for {', '.join(data['systems'])}"]


def _systems(data: Any) -> list[str]:
    lines = []
    for s in data["systems"]:
        line = f"{s['name']:<14} {s['state']:<8} pending {s['pending']}, parked {s['parked']}"
        if s["state"] != "ok":
            line += f"; since {s['failing_since'] or '-'}: {s['blocked'] or s['last_error']}"
        lines.append(line)
    return lines or ["no external ticket systems configured"]


PRINTERS: dict[str, Callable[[Any], list[str]]] = {
    "list": _list,
    "show": _show,
    "assign": _show,
    "comment": _show,
    "log": _show,
    "status": _show,
    "link": _link,
    "parked": _ops,
    "retry": _retry,
    "systems": _systems,
}
