"""N-sight adapter benchmark: what reading a 1,200-device account costs the daemon.

An N-sight DEA emulator in its own process serves a data-model account of 40
clients × 5 sites, 1,200 devices (300 servers) and 300 failing checks plus 35
availability blocks. The real `NsightSource` (unpaced, as in a test; the pacing
it would need in production is computed from the call count) reads the
inventory, then the failures. Measured per run: wall time, this process's
CPU-seconds (the adapter: HTTP client, XML parsing, records), and the calls made.

    python -m bench.rmm_adapter --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.core import cpu_seconds, free_port, lab_subprocess, machine

RESULTS = Path(__file__).resolve().parent / "results"
KEY = "bench-adapter-key-0123456789"
CLIENTS, SITES, DEVICES, CHECKS, OFFLINE = 40, 5, 1200, 300, 35
NOW = 1741944605.0


def account() -> Any:
    from monitord.lab.rmm_nsight_model import NsCheck, NsClient, NsDevice, NsightAccount, NsSite

    acc = NsightAccount(clock=lambda: NOW)
    for c in range(CLIENTS):
        acc.add(NsClient(str(410000 + c), f"Customer {c:02d} Ltd"))
        for s in range(SITES):
            acc.add(NsSite(str(520000 + c * 10 + s), str(410000 + c), f"Site {s}"))
    for d in range(DEVICES):
        site = str(520000 + (d % CLIENTS) * 10 + (d // CLIENTS) % SITES)
        acc.add(
            NsDevice(
                str(30000000 + d),
                site,
                f"PC{d:04d}",
                "server" if d % 4 == 0 else "workstation",
                ip=f"192.0.2.{d % 250}",
                os="Microsoft Windows 11 Pro",
                user=f"CUST\\user{d}",
                last_seen=NOW - 60,
            )
        )
    for i in range(CHECKS):
        acc.add(
            NsCheck(
                str(70000000 + i),
                str(30000000 + (i * 4) % DEVICES),
                "1004",
                f"Disk Space Check - Drive C: ({i})",
                "C: 3% free",
                started=NOW - 3600,
                last=NOW - 60,
                consecutive_fails=3,
            )
        )
    for i in range(OFFLINE):
        acc.set_availability(str(30000001 + i * 7), "offline", NOW - 7200)
    return acc


async def _serve(port: int) -> None:
    from monitord.lab.rmm_nsight import NsightEmulator

    async with NsightEmulator(account(), api_key=KEY, port=port):
        await asyncio.Event().wait()


async def one_run(url: str) -> dict[str, Any]:
    from monitord.sources.rmm.nsight import NsightConfig, NsightSource

    src = NsightSource(NsightConfig(server=url, api_key=KEY, max_calls_per_minute=0))
    try:
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        inventory = await src.inventory()
        cpu1, wall1 = cpu_seconds(), time.perf_counter()
        failures = await src.failures()
        cpu2, wall2 = cpu_seconds(), time.perf_counter()
    finally:
        await src.aclose()
    assert len(inventory.devices) == DEVICES, len(inventory.devices)
    assert len(failures) == CHECKS + OFFLINE, len(failures)
    inventory_calls = 1 + CLIENTS + 2 * CLIENTS * SITES
    failure_calls = 1 + CLIENTS
    return {
        "inventory_wall_s": round(wall1 - wall0, 3),
        "inventory_cpu_s": round(cpu1 - cpu0, 3),
        "failures_wall_s": round(wall2 - wall1, 3),
        "failures_cpu_s": round(cpu2 - cpu1, 3),
        "inventory_calls": inventory_calls,
        "failure_calls": failure_calls,
        # at N-able's 60 calls per minute (a sliding window), the least time a real
        # account of this size takes
        "paced_inventory_s": (inventory_calls - 1) // 60 * 60,
        "paced_failures_s": (failure_calls - 1) // 60 * 60,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0
    port = free_port()
    cmd = [sys.executable, "-m", "bench.rmm_adapter", "--serve", str(port)]
    url = f"http://127.0.0.1:{port}"
    with lab_subprocess(cmd, f"{url}/api/?apikey={KEY}&service=list_clients"):
        runs = [asyncio.run(one_run(url)) for _ in range(args.runs)]
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    result = {
        "nsight_adapter": {
            "account": f"{CLIENTS} clients, {CLIENTS * SITES} sites, {DEVICES} devices, "
            f"{CHECKS} failing checks, {OFFLINE} offline",
            "median": median,
            "runs": runs,
        },
        "machine": machine(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rmm_adapter.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["nsight_adapter"]["median"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
