"""`main(argv)`: run a lab in the foreground until SIGINT or SIGTERM.

    python -m monitord.lab --devices 1200 --customers 40 --seed 1 \\
        --control 127.0.0.1:9788 --tcp-port 8022 --http-port 8080 \\
        [--shards N] [--fleet-json-out PATH | --fleet-json-in PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from monitord.lab.fleet import Fleet, generate_fleet
from monitord.lab.lab import Lab
from monitord.lab.servers import LabError


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected host:port, got {text!r}")
    return host, int(port)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="monitord lab", description="Serve a simulated MSP fleet on 127.0.0.0/8."
    )
    p.add_argument("--devices", type=int, default=1200)
    p.add_argument("--customers", type=int, default=40)
    p.add_argument("--sites", type=int, default=None, help="default: about devices / 12")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--control", type=_host_port, default=("127.0.0.1", 9788), metavar="HOST:PORT")
    p.add_argument("--tcp-port", type=int, default=8022)
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument(
        "--shards", type=int, default=None, help="worker processes (default: 1 per 5,000 devices)"
    )
    p.add_argument("--fleet-json-out", type=Path, metavar="PATH", help="write the fleet here")
    p.add_argument("--fleet-json-in", type=Path, metavar="PATH", help="serve this fleet file")
    p.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio loop")
    return p


def _fleet(args: argparse.Namespace) -> Fleet:
    if args.fleet_json_in is not None:
        return Fleet.from_json(args.fleet_json_in.read_bytes())
    return generate_fleet(args.devices, args.customers, args.seed, sites=args.sites)


async def _serve(fleet: Fleet, args: argparse.Namespace) -> None:
    host, port = args.control
    lab = Lab(
        fleet,
        control_host=host,
        control_port=port,
        tcp_port=args.tcp_port,
        http_port=args.http_port,
        shards=args.shards,
        use_uvloop_in_shards=not args.no_uvloop,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with lab:
            if args.fleet_json_out is not None:
                args.fleet_json_out.write_bytes(lab.fleet_json())
            print(
                f"monitord lab: {len(fleet.devices)} devices, {len(fleet.sites)} sites, "
                f"{len(fleet.customers)} customers; tcp :{lab.tcp_port}, http :{lab.http_port}; "
                f"{lab.shards} shard(s); started in {lab.startup_seconds:.2f} s; "
                f"control {lab.control_url}",
                flush=True,
            )
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    """Run the lab until SIGINT/SIGTERM. Returns 0, or 1 (with a message on
    stderr) if it cannot start; bad arguments exit 2 (argparse)."""
    args = _parser().parse_args(argv)
    try:
        fleet = _fleet(args)
    except (OSError, ValueError) as exc:
        print(f"monitord lab: {exc}", file=sys.stderr)
        return 1
    run: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run
    if not args.no_uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            run = uvloop.run
    try:
        run(_serve(fleet, args))
    except LabError as exc:
        print(f"monitord lab: {exc}", file=sys.stderr)
        return 1
    return 0
