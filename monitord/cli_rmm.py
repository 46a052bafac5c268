"""`monitord rmm feeds|observations|observation|devices|conflicts|logons|sync|poll`.

Like `monitord status`, these ask the running daemon (`--url`) and print what it
answered. Exit 0 on success, 1 when the daemon refused or is not answering.
`explain_lines` is what `monitord explain` adds for an incident the RMM fed.
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


def add_parser(sub: Any) -> None:
    rmm = sub.add_parser("rmm", help="RMM feeds, verdicts on RMM failures, synced devices")
    actions = rmm.add_subparsers(dest="action", required=True)
    actions.add_parser("feeds", help="health of each RMM source's feed")
    obs = actions.add_parser("observations", help="RMM failures with monitord's verdicts")
    obs.add_argument("--all", action="store_true", help="also those the RMM cleared")
    obs.add_argument("--verdict")
    obs.add_argument("--customer")
    obs.add_argument("--device", help="customer/name")
    one = actions.add_parser("observation", help="one observation: evidence and history")
    one.add_argument("id", type=int)
    dev = actions.add_parser("devices", help="RMM devices and the monitord devices they map to")
    dev.add_argument("--source")
    dev.add_argument("--state", choices=("active", "unmapped", "conflict", "retired"))
    con = actions.add_parser("conflicts", help="what the sync reported instead of guessing")
    con.add_argument("--all", action="store_true", help="also resolved ones")
    who = actions.add_parser("logons", help="who is logged on where")
    who.add_argument("--user", help="user name, with or without DOMAIN\\")
    who.add_argument("--device", help="customer/name")
    who.add_argument("--all", action="store_true", help="also past logons")
    for name in ("sync", "poll"):
        now = actions.add_parser(name, help=f"{name} one source now")
        now.add_argument("source")
    for action in actions.choices.values():
        action.add_argument("--url", default=DEFAULT_URL)
        action.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    url, action = args.url.rstrip("/"), args.action
    try:
        if action in ("sync", "poll"):
            data = call_api(
                "POST", f"{url}/api/v1/rmm/{urllib.parse.quote(args.source)}/{action}", timeout=120
            )
        elif action == "observation":
            data = call_api("GET", f"{url}/api/v1/rmm/observations/{args.id}")
        else:
            data = call_api(
                "GET", f"{url}/api/v1/rmm/{action}?{urllib.parse.urlencode(_query(args))}"
            )
    except urllib.error.HTTPError as exc:
        print(f"refused ({exc.code}): {_error(exc)}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"monitord is not answering at {url}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for line in _render(action, data):
        print(line)
    return 0


def _query(args: argparse.Namespace) -> dict[str, str]:
    q: dict[str, str] = {}
    for key in ("verdict", "customer", "device", "source", "state", "user"):
        value = getattr(args, key, None)
        if value:
            q[key] = value
    if getattr(args, "all", False):
        q["state" if args.action in ("observations", "conflicts") else "all"] = (
            "all" if args.action in ("observations", "conflicts") else "1"
        )
    return q


def _render(action: str, data: dict[str, Any]) -> list[str]:
    if action == "feeds":
        return [_feed(f) for f in data["feeds"]] or ["no RMM source"]
    if action == "observations":
        return [_observation(o) for o in data["observations"]] or ["no RMM observations"]
    if action == "observation":
        return [_observation(data), *_evidence(data), *_history(data)]
    if action == "devices":
        return [
            f"{d['source']}:{d['rmm_id']:<10} {d['state']:<9} {d['name']:<24} -> "
            f"{d['device'] or '-'}{' (linked)' if d['linked'] else ''}"
            f"{'  user ' + d['logged_on'] if d['logged_on'] else ''}"
            for d in data["devices"]
        ] or ["no RMM devices"]
    if action == "conflicts":
        return [f"#{c['id']} {c['source']} {c['kind']}: {c['detail']}" for c in data["conflicts"]]
    if action == "logons":
        return [
            f"{lg['user']:<28} on {lg['device'] or '(not synced)'} since {lg['first_seen']}"
            + (f" until {lg['ended_at']}" if lg["ended_at"] else "")
            for lg in data["logons"]
        ] or ["nobody found"]
    return [json.dumps(data)]


def _feed(f: dict[str, Any]) -> str:
    state = "stale" if f["stale"] else "ok" if f["ok"] else "failing"
    line = f"{f['source']} ({f['kind']}): {state}, last good poll {f['last_good_at'] or 'never'}"
    if f["error"]:
        line += f"; {f['error_reason']}: {f['error']}"
    return line + f"; last sync {f['last_good_sync_at'] or 'never'} {f['sync_counts'] or ''}"


def _observation(o: dict[str, Any]) -> str:
    where = o["device"] or f"{o['source']} device {o['rmm_device']}"
    what = o["kind"] if o["kind"] != "check" else o["description"]
    cleared = f" (cleared {o['cleared_at']})" if o["cleared_at"] else ""
    incident = f" -> incident #{o['incident']}" if o["incident"] else ""
    head = f"#{o['id']:<5} {o['verdict']:<13} {where}: {what}{cleared}{incident}"
    return f"{head}\n       {o['rule']}"


def _evidence(o: dict[str, Any]) -> list[str]:
    return [
        f"  evidence: {e['check']} {e['status']} ({e['origin']}): {e['output']}"
        for e in o["evidence"]
    ]


def _history(o: dict[str, Any]) -> list[str]:
    return [f"  {h['ts']}  {h['verdict']:<13} {h['rule']}" for h in o.get("history", ())]


def explain_lines(incident: dict[str, Any]) -> list[str]:
    """What `monitord explain` prints of the RMM verdicts that fed `incident`."""
    return [
        f"  rmm {o['source']} #{o['id']} {o['verdict']}: {o['description']} - {o['rule']}"
        for o in incident.get("rmm", ())
    ]


def _error(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("error", exc.reason))
    except ValueError:
        return str(exc.reason)
