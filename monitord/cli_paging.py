"""`monitord override list|add|delete` and `monitord escalations`, against the running
daemon's API (`--url`): the daemon validates and stores; this prints what it said.

Exit 0 on success, 1 when the daemon refused (every problem is printed, with its
field) or is not answering.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from monitord.api_client import call_api

DEFAULT_URL = "http://127.0.0.1:9787"


def add_parsers(sub: Any) -> None:
    """Add the `override` and `escalations` commands to the `monitord` parser."""
    override = sub.add_parser("override", help="on-call overrides (swap a shift, a sick day)")
    actions = override.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="overrides in force, with who set them")
    listing.add_argument("--all", action="store_true", help="deleted and ended ones too")
    add = actions.add_parser("add", help="put an engineer on call in one layer for a span")
    add.add_argument("--schedule", required=True)
    add.add_argument("--layer", required=True)
    add.add_argument("--engineer", required=True)
    add.add_argument("--start", required=True, help="ISO time; without offset: the schedule's zone")
    add.add_argument("--end", required=True, help="ISO time; without offset: the schedule's zone")
    add.add_argument("--reason", default="")
    add.add_argument("--by", required=True, help="who sets it")
    delete = actions.add_parser("delete", help="remove an override (its record stays)")
    delete.add_argument("id", type=int)
    delete.add_argument("--by", required=True, help="who removes it")
    escalations = sub.add_parser("escalations", help="open escalations and paging channels")
    for p in (listing, add, delete, escalations):
        p.add_argument("--url", default=DEFAULT_URL)
        p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    try:
        if args.command == "escalations":
            body = call_api("GET", f"{args.url}/api/v1/paging/escalations")
            _print(args, body, _render_escalations)
            return 0
        if args.action == "list":
            query = "?state=all" if args.all else ""
            body = call_api("GET", f"{args.url}/api/v1/oncall/overrides{query}")
            _print(args, body, lambda b: "\n".join(_line(o) for o in b["overrides"]) or "none")
        elif args.action == "add":
            data = {
                k: getattr(args, k)
                for k in ("schedule", "layer", "engineer", "start", "end", "reason", "by")
            }
            body = call_api("POST", f"{args.url}/api/v1/oncall/overrides", data)
            _print(args, body, lambda b: "added " + _line(b))
        else:
            by = urllib.parse.urlencode({"by": args.by})
            body = call_api("DELETE", f"{args.url}/api/v1/oncall/overrides/{args.id}?{by}")
            _print(args, body, lambda b: "deleted " + _line(b))
    except urllib.error.HTTPError as exc:
        _refused(exc)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"monitord is not answering at {args.url}: {exc}", file=sys.stderr)
        return 1
    return 0


def _print(args: argparse.Namespace, body: Any, render: Any) -> None:
    print(json.dumps(body, indent=2, ensure_ascii=False) if args.json else render(body))


def _line(o: dict[str, Any]) -> str:
    gone = f" (deleted by {o['deleted_by']})" if o.get("deleted_at") else ""
    reason = f": {o['reason']}" if o.get("reason") else ""
    return (
        f"#{o['id']} {o['schedule']}/{o['layer']}: {o['engineer']} from {o['start']} "
        f"to {o['end']}{reason}, set by {o['created_by']}{gone}"
    )


def _render_escalations(body: dict[str, Any]) -> str:
    lines = [f"open escalations: {len(body['escalations'])}"]
    for e in body["escalations"]:
        held = f", acked by {e['acked_by']} via {e['acked_via']}" if e["acked_by"] else ""
        nxt = f", next step at {e['next_at']}" if e["next_at"] else ""
        lines.append(
            f"  #{e['incident']} {e['state']} policy {e['policy']} step {e['step']} "
            f"round {e['round']}{nxt}{held}"
        )
    for c in body["channels"]:
        state = (
            f"failing since {c['failing_since']}: {c['last_error']}" if c["failing_since"] else "ok"
        )
        lines.append(f"  channel {c['name']}: {state}")
    return "\n".join(lines)


def _refused(exc: urllib.error.HTTPError) -> None:
    try:
        body = json.loads(exc.read())
    except ValueError:
        print(f"{exc.code}: {exc.reason}", file=sys.stderr)
        return
    for problem in body.get("problems", []):
        print(f"{problem['field']}: {problem['message']}", file=sys.stderr)
    if not body.get("problems"):
        print(f"{exc.code}: {body.get('error', exc.reason)}", file=sys.stderr)
