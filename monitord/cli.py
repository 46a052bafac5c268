"""The `monitord` command. Signals are translated into App calls here, and only here."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monitord import (
    __version__,
    cli_oncall,
    cli_paging,
    cli_rmm,
    cli_suppressions,
    cli_tickets,
    logs,
)
from monitord.config import ConfigErrors, LoadedConfig, load_config

log = logging.getLogger("monitord")

DEFAULT_CONFIG = Path("/etc/monitord/monitord.yaml")
# Commands that live in their own module: name → its `run(args)`.
SUBCOMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "silence": cli_suppressions.run,
    "maintenance": cli_suppressions.run,
    "oncall": cli_oncall.run,
    "override": cli_paging.run,
    "escalations": cli_paging.run,
    "rmm": cli_rmm.run,
    "tickets": cli_tickets.run,
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="monitord", description=__doc__)
    p.add_argument("--version", action="version", version=f"monitord {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    check = sub.add_parser("check-config", help="validate a config file (exit 0 or 2)")
    check.add_argument("file", type=Path)
    status = sub.add_parser("status", help="what is down now, from the running daemon")
    status.add_argument("--url", default="http://127.0.0.1:9787")
    status.add_argument("--json", action="store_true")
    explain = sub.add_parser("explain", help="every rule that acted on an incident, in order")
    explain.add_argument("incident", type=int)
    explain.add_argument("--url", default="http://127.0.0.1:9787")
    ack = sub.add_parser("ack", help="acknowledge an incident")
    ack.add_argument("incident", type=int)
    ack.add_argument("--by", required=True, help="who acknowledges")
    ack.add_argument("--url", default="http://127.0.0.1:9787")
    demo = sub.add_parser("demo", help="run the lab fleet and the daemon together")
    demo.add_argument("--devices", type=int, default=1200)
    demo.add_argument("--customers", type=int, default=40)
    demo.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where to write the generated config and state (default: a temp dir)",
    )
    demo.add_argument("--listen", default="127.0.0.1:9787")
    demo.add_argument("--fault-after", type=float, default=15.0)
    demo.add_argument("--interval", type=float, default=10.0, help="check interval (s)")
    demo.add_argument("--lab-control", default="127.0.0.1:9788")
    demo.add_argument("--lab-ports", default="8022,8080", help="TCP banner,HTTP ports")
    demo.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    sub.add_parser("lab", help="serve the simulated fleet on loopback (see: monitord lab --help)")
    cli_suppressions.add_parsers(sub)
    cli_oncall.add_parser(sub)
    cli_paging.add_parsers(sub)
    cli_rmm.add_parser(sub)
    cli_tickets.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["lab"]:
        # The lab has its own option parser; hand it everything after "lab".
        from monitord.lab.main import main as lab_main

        return int(lab_main(argv[1:]))
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return check_config(args.file)
    if args.command == "status":
        return show_status(args.url, as_json=args.json)
    if args.command == "explain":
        return explain(args.url, args.incident)
    if args.command == "ack":
        return acknowledge(args.url, args.incident, args.by)
    if args.command in SUBCOMMANDS:
        return SUBCOMMANDS[args.command](args)
    if args.command == "demo":
        from monitord.demo import run_demo

        logs.setup("info")
        return _run_loop(run_demo(args))
    return run_daemon(args.config)


def check_config(path: Path) -> int:
    try:
        loaded = load_config(path)
    except ConfigErrors as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        print(f"{path}: {len(exc.errors)} error(s)", file=sys.stderr)
        return 2
    inv = loaded.inventory
    print(
        f"{path}: ok ({len(loaded.config.customers)} customers, {len(inv.devices)} devices, "
        f"{len(inv.checks)} checks)"
    )
    return 0


def _run_loop(coro: object) -> int:
    try:
        import uvloop

        return int(uvloop.run(coro))  # type: ignore[arg-type]
    except ImportError:
        return int(asyncio.run(coro))  # type: ignore[arg-type]


def run_daemon(path: Path) -> int:
    try:
        loaded = load_config(path)
    except ConfigErrors as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 2
    logs.setup(loaded.config.daemon.log_level)
    return _run_loop(serve_forever(loaded, path))


async def serve_forever(loaded: LoadedConfig, path: Path | None) -> int:
    """Run the daemon until SIGTERM/SIGINT; SIGHUP reloads. Returns the exit code."""
    from monitord.api.http import serve
    from monitord.app import App
    from monitord.errors import StorageError
    from monitord.sdnotify import Notifier, watchdog_loop

    app = App(loaded, config_path=path)
    notifier = Notifier.from_env()
    try:
        await app.start()
    except StorageError as exc:
        log.error("cannot start: %s", exc)
        return 1
    try:
        runner = await serve(app, loaded.config.daemon.listen)
    except OSError as exc:
        log.error("cannot listen on %s: %s", loaded.config.daemon.listen, exc.strerror)
        await app.stop()
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload(app, notifier)))
    watchdog = loop.create_task(watchdog_loop(notifier, app.healthy))
    notifier.ready()
    notifier.status(
        f"checking {len(app.inventory.checks)} checks on {len(app.inventory.devices)} devices"
    )
    log.info("listening", extra={"url": f"http://{loaded.config.daemon.listen}"})
    await stop.wait()
    notifier.stopping()
    log.info("shutting down")
    watchdog.cancel()
    await runner.cleanup()
    await app.stop()
    return 0


async def _reload(app: object, notifier: object) -> None:
    from monitord.app import App
    from monitord.sdnotify import Notifier

    assert isinstance(app, App) and isinstance(notifier, Notifier)
    notifier.reloading()
    try:
        await app.reload()
    except ConfigErrors as exc:
        log.error(
            "reload rejected, keeping the running config: %s", "; ".join(str(e) for e in exc.errors)
        )
    except Exception as exc:  # a reload must never take the daemon down
        log.error("reload failed, keeping the running config: %s", exc)
    notifier.ready()


def show_status(url: str, *, as_json: bool = False) -> int:
    """Print what is down now, from the running daemon's API. Exit 1 if unreachable."""
    try:
        summary = _get(f"{url}/api/v1/status")
        problems = _get(f"{url}/api/v1/problems")["problems"]
        incidents = _get(f"{url}/api/v1/incidents?state=open")["incidents"]
    except (urllib.error.URLError, OSError) as exc:
        print(f"monitord is not answering at {url}: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(
            json.dumps({"summary": summary, "problems": problems, "incidents": incidents}, indent=2)
        )
        return 0
    counts = summary["by_status"]
    print(
        f"{summary['devices']} devices, {summary['checks']} checks: "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
    )
    print(f"\nopen incidents: {len(incidents)}")
    for inc in incidents:
        print(f"  #{inc['id']:<5} {inc['priority']} {inc['state']:<12} {inc['title']}")
    hard = [p for p in problems if p["state_type"] == "hard"]
    print(f"\nproblems: {len(hard)} hard, {len(problems) - len(hard)} soft")
    for p in problems[:50]:
        print(f"  {p['status'].upper():<8} {p['state_type']:<4} {p['check']:<45} {p['output']}")
    if len(problems) > 50:
        print(f"  … {len(problems) - 50} more (use --json)")
    return 0


def explain(url: str, incident_id: int) -> int:
    """Print why an incident is as it is, from the decisions stored with it."""
    try:
        inc = _get(f"{url}/api/v1/incidents/{incident_id}")
    except urllib.error.HTTPError as exc:
        print(f"incident #{incident_id}: {exc.code} {_error_text(exc)}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"monitord is not answering at {url}: {exc}", file=sys.stderr)
        return 1
    print(f"#{inc['id']} [{inc['priority']}] {inc['state']}: {inc['title']}")
    print(
        f"  kind {inc['kind']}, customer {inc['customer']}, device {inc['device']}, "
        f"notified {'yes' if inc['notified'] else 'no'}"
        + (f", part of #{inc['part_of']}" if inc["part_of"] else "")
        + (f", muted: {inc['muted_by']}" if inc["muted_by"] else "")
    )
    for step in inc["timeline"]:
        print(f"  {step['ts']}  {step['action']:<12} {step['detail']}")
    for member in inc["members"]:
        print(f"  member {member['member']} ({member['state']} since {member['since']})")
    for line in cli_rmm.explain_lines(inc):
        print(line)
    return 0


def acknowledge(url: str, incident_id: int, who: str) -> int:
    req = urllib.request.Request(
        f"{url}/api/v1/incidents/{incident_id}/ack",
        method="POST",
        data=json.dumps({"by": who, "via": "cli"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        print(f"incident #{incident_id}: {exc.code} {_error_text(exc)}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"monitord is not answering at {url}: {exc}", file=sys.stderr)
        return 1
    print(f"#{body['id']} acknowledged by {body['acked_by']}")
    return 0


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("error", exc.reason))
    except ValueError:
        return str(exc.reason)


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


if __name__ == "__main__":
    sys.exit(main())
