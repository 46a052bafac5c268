"""`monitord oncall [--at ISO] [--schedule NAME]`: who is on call now, or at a time.

By default it asks the running daemon (`GET /api/v1/oncall`), so the answer
is the schedule the daemon pages from. With `--config FILE` it computes the
same answer offline from that file, to check a schedule before deploying it
(or when the daemon is down).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from monitord.api.oncall import oncall_view, parse_at
from monitord.config import ConfigErrors, load_config


def add_parser(sub: Any) -> None:
    """Add the `oncall` command to the `monitord` parser."""
    p = sub.add_parser("oncall", help="who is on call now or at --at, with the reason")
    p.add_argument("--at", help="an ISO time with an offset (2026-11-23T08:00+01:00, …Z)")
    p.add_argument("--schedule", help="only this schedule")
    p.add_argument("--url", default="http://127.0.0.1:9787")
    p.add_argument("--config", type=Path, help="compute offline from this config file")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Carry out a parsed `oncall` command: 0, 1 (daemon/request failed) or 2 (bad input)."""
    try:
        body = _offline(args) if args.config else _online(args)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except ConfigErrors as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 2
    except LookupError as exc:
        print(str(exc.args[0]), file=sys.stderr)
        return 1
    except urllib.error.HTTPError as exc:
        print(f"{exc.code}: {_error_text(exc)}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"monitord is not answering at {args.url}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        print(render(body))
    return 0


def _offline(args: argparse.Namespace) -> dict[str, Any]:
    t = parse_at(args.at) if args.at else time.time()  # the CLI is the edge: it may read the clock
    return oncall_view(load_config(args.config).config.oncall, t, args.schedule)


def _online(args: argparse.Namespace) -> dict[str, Any]:
    if args.at:
        parse_at(args.at)  # a bad time is the caller's mistake, found before asking
    query = {k: v for k, v in (("at", args.at), ("schedule", args.schedule)) if v}
    url = f"{args.url}/api/v1/oncall" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=5) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def render(body: dict[str, Any]) -> str:
    """The text form: one block per schedule layer."""
    lines = [f"on call at {body['at']}"]
    if not body["oncall"]:
        lines.append("  no on-call schedules configured")
    for e in body["oncall"]:
        who = e["name"] or "nobody"
        contact = ", ".join(e["phones"])
        until = f" until {e['shift_end']}" if e["shift_end"] else ""
        lines.append(
            f"  {e['schedule']}/{e['layer']}: {who}"
            + (f" ({contact})" if contact else "")
            + until
            + (" [fallback]" if e["fallback"] else "")
        )
        lines.append(f"    {e['reason']}")
        nxt = e["next_handover"]
        if nxt:
            lines.append(f"    next handover {nxt['at']} to {nxt['name']}")
    return "\n".join(lines)


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("error", exc.reason))
    except ValueError:
        return str(exc.reason)
