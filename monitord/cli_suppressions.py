"""`monitord silence list|add|expire` and `monitord maintenance list|add|delete`.

Both talk to the running daemon's API (`--url`), like `monitord status`: the
daemon validates, stores and applies; this prints what it answered, with who
set each entry. Exit 0 on success, 1 when the daemon refused (its reasons are
printed) or is not answering.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from monitord.api_client import call_api
from monitord.config.types import parse_duration

DEFAULT_URL = "http://127.0.0.1:9787"


def add_parsers(sub: Any) -> None:
    """Add the `silence` and `maintenance` commands to the `monitord` parser."""
    silence = sub.add_parser("silence", help="list, add or expire silences (running daemon)")
    actions = silence.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="silences in force, from the config and the API")
    add = actions.add_parser("add", help="mute new problems matching every --match")
    add.add_argument(
        "--match",
        action="append",
        required=True,
        metavar="MATCHER",
        help="label=value, label!=value, label=~regex or label!~regex; repeat: all must hold",
    )
    add.add_argument("--author", required=True, help="who sets it")
    add.add_argument("--reason", required=True)
    until = add.add_mutually_exclusive_group(required=True)
    until.add_argument("--for", dest="duration", type=_duration, help="e.g. 2h, 30m, 1d")
    until.add_argument("--until", type=_instant, help="ISO time (without offset: local time)")
    add.add_argument("--start", type=_instant, help="ISO time (default: now)")
    expire = actions.add_parser("expire", help="end a silence now (its record stays)")
    expire.add_argument("id")
    expire.add_argument("--by", help="who ends it")

    window = sub.add_parser(
        "maintenance", help="list, add or delete maintenance windows (running daemon)"
    )
    w_actions = window.add_subparsers(dest="action", required=True)
    w_listing = w_actions.add_parser("list", help="windows, from the config and the API")
    w_add = w_actions.add_parser(
        "add",
        help="one-off (--start with --end or --duration), weekly (--weekly) or --cron with "
        "--duration; times without an offset are local to --timezone, else the customer's",
    )
    w_add.add_argument("--name", required=True)
    w_add.add_argument("--customer")
    for scope in ("sites", "devices", "tags"):
        w_add.add_argument(f"--{scope}", help="comma-separated")
    w_add.add_argument("--timezone", help="IANA zone (default: the customer's contract zone)")
    w_add.add_argument("--start", help="e.g. '2026-12-05 06:00'")
    w_add.add_argument("--end")
    w_add.add_argument("--duration", help="e.g. 2h")
    w_add.add_argument("--weekly", action="append", help="e.g. 'tue 20:00-22:00' (repeatable)")
    w_add.add_argument("--cron", help="e.g. '0 3 * * 0' (with --duration)")
    w_add.add_argument("--author", required=True, help="who sets it")
    w_add.add_argument("--reason", default="")
    delete = w_actions.add_parser("delete", help="end a window now (its record stays)")
    delete.add_argument("id")
    delete.add_argument("--by", help="who deletes it")

    for p in (listing, w_listing):
        p.add_argument("--all", action="store_true", help="also those that ended or ran out")
        p.add_argument("--json", action="store_true")
    for p in (listing, add, expire, w_listing, w_add, delete):
        p.add_argument("--url", default=DEFAULT_URL)


def run(args: argparse.Namespace) -> int:
    """Carry out a parsed `silence` or `maintenance` command."""
    path = "silences" if args.command == "silence" else "maintenance"
    base = f"{args.url}/api/v1/{path}"
    actions: dict[str, Callable[[], int]] = {
        "list": lambda: _list(args, base, path),
        "add": lambda: _add(args, base),
        "expire": lambda: _end(args, base, "expired"),
        "delete": lambda: _end(args, base, "deleted"),
    }
    try:
        return actions[args.action]()
    except urllib.error.HTTPError as exc:
        lines = _refusal(exc)
        print(f"refused ({exc.code}): {lines[0]}", file=sys.stderr)
        for line in lines[1:]:
            print(f"  {line}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"monitord is not answering at {args.url}: {exc}", file=sys.stderr)
        return 1


def _list(args: argparse.Namespace, base: str, key: str) -> int:
    entries = call_api("GET", base + ("?state=all" if args.all else ""))[key]
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    noun = "silences" if key == "silences" else "maintenance windows"
    print(f"{len(entries)} {noun}")
    for e in entries:
        what = " ".join(e["matchers"]) if key == "silences" else _window_text(e)
        print(f"  {_ident(e):<10} {e['source']:<6} {_state(e):<34} {what}")
        print(f"  {'':<10} set by {e['created_by']}" + (f": {e['reason']}" if e["reason"] else ""))
    return 0


def _add(args: argparse.Namespace, base: str) -> int:
    if args.command == "silence":
        expiry = args.until or (datetime.now(UTC) + timedelta(seconds=args.duration)).isoformat()
        body: dict[str, Any] = {
            "matchers": args.match,
            "author": args.author,
            "reason": args.reason,
            "expiry": expiry,
        }
        if args.start:
            body["start"] = args.start
    else:
        fields = ("name", "customer", "timezone", "start", "end", "duration", "cron", "author")
        body = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
        body |= {s: getattr(args, s) for s in ("sites", "devices", "tags") if getattr(args, s)}
        if args.weekly:
            body["weekly"] = args.weekly
        if args.reason:
            body["reason"] = args.reason
    entry = call_api("POST", base, body)
    noun = "silence" if args.command == "silence" else "maintenance window"
    print(f"{noun} {_ident(entry)} added by {entry['created_by']}: {_state(entry)}")
    return 0


def _end(args: argparse.Namespace, base: str, verb: str) -> int:
    query = f"?by={urllib.parse.quote(args.by)}" if args.by else ""
    entry = call_api("DELETE", f"{base}/{urllib.parse.quote(args.id, safe='')}{query}")
    noun = "silence" if args.command == "silence" else "maintenance window"
    who = f" by {entry['ended_by']}" if entry["ended_by"] else ""
    print(f"{noun} {_ident(entry)} {verb}{who} (set by {entry['created_by']})")
    return 0


def _ident(entry: dict[str, Any]) -> str:
    return f"#{entry['id']}" if entry["source"] == "api" else str(entry["id"])


def _state(e: dict[str, Any]) -> str:
    if e["ended_at"]:
        return f"ended {_short(e['ended_at'])}" + (f" by {e['ended_by']}" if e["ended_by"] else "")
    if e["active"]:
        return f"active until {_short(e['active_until'])}" if e["active_until"] else "active"
    if e["expires_at"] and e["expires_at"] <= datetime.now(UTC).isoformat():
        return f"over since {_short(e['expires_at'])}"
    return "not active now" + (f", ends {_short(e['expires_at'])}" if e["expires_at"] else "")


def _window_text(e: dict[str, Any]) -> str:
    scope = [repr(e["name"]), e["customer"] or "all customers"]
    for noun in ("sites", "devices", "tags"):
        if e[noun]:
            scope.append(f"{noun} {','.join(e[noun])}")
    if e["weekly"]:
        when = "weekly " + ", ".join(e["weekly"])
    elif e["cron"]:
        when = f"cron '{e['cron']}' for {_seconds(e['duration'])}"
    else:
        end = f"to {e['end']}" if e["end"] else f"for {_seconds(e['duration'])}"
        when = f"{e['start']} {end}"
    return " ".join(scope) + f"; {when}" + (f" ({e['timezone']})" if e["timezone"] else "")


def _short(iso: str) -> str:
    """`2026-12-05T06:00:00+00:00` → `2026-12-05 06:00Z` (the API answers in UTC)."""
    return iso[:16].replace("T", " ") + "Z"


def _seconds(value: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{unit}"
    return f"{value:g}s"


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the duration must be positive")
    return seconds


def _instant(text: str) -> str:
    """An ISO time with its offset; one without is the local time of this machine."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO time like 2026-12-05T06:00, got {text!r}"
        ) from None
    return (value if value.tzinfo else value.astimezone()).isoformat()


def _refusal(exc: urllib.error.HTTPError) -> list[str]:
    """The daemon's reasons: its error, then each located problem of a 422."""
    try:
        body = json.loads(exc.read())
    except ValueError:
        return [str(exc.reason)]
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        return [f"{len(errors)} problem(s)", *map(str, errors)]
    return [str(body.get("error", exc.reason)) if isinstance(body, dict) else str(exc.reason)]
