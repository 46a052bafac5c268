"""Benchmark of the `snmp` check: CPU per GET, first-contact cost, fleet projection.

The agents are one snmpsim process serving a fleet of simulated devices on
127.1.x.y (tests/snmp_agents.py, the layout of shared/fixtures/snmp/
make_fleet.py); the poller is `SnmpCheck.run` in a fresh child interpreter
per run, on uvloop like the daemon, so the CPU measured (user+sys of the
child while it polls) is the check's alone and starts from cold caches.

(a) `get`:   CPU-seconds per 1,000 v2c GETs of 3 OIDs (sysUpTime, sysName,
             sysDescr) through SnmpCheck.run, 64 concurrent, cycling over the
             fleet after one unmeasured first-contact round.
(b) `first`: CPU-seconds of the first poll of N devices never seen before
             (N = 1,000 and 2,000): must grow linearly.
(c) projection: 10,000 devices x 3 OIDs once a minute, from (a), as a fraction
             of one core.
(d) `first` with SNMPv3 authPriv (SHA/AES; engine discovery and key
             localisation per device): first poll of N = 500 and 1,000 devices,
             and the second poll of the same as the v3 steady-state cost.
Medians of --runs runs. Results go to bench/results/snmp.json.

    python -m bench.snmp --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench.core import RESULTS, machine

OIDS = ["sysUpTime.0", "sysName.0", "sysDescr.0"]
CONCURRENCY = 64
TIMEOUT = 10.0
DEVICES_TARGET = 10_000
TARGET_GETS_PER_CPU_S = 1000.0
TARGET_CORE_FRACTION = 0.3


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ----------------------------------------------------------------- child side


async def _poll_round(check: Any, targets: list[Any], params: Any, total: int) -> Counter[str]:
    """`total` GETs over `targets` (cycling), CONCURRENCY at a time; status counts."""
    statuses: Counter[str] = Counter()
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < total:
            target = targets[next_index % len(targets)]
            next_index += 1
            result = await check.run(target, params, TIMEOUT)
            statuses[result.status.name] += 1
            if result.status.name != "OK" and statuses[result.status.name] <= 3:
                print(f"  {target.address}: {result.message}", file=sys.stderr)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return statuses


async def _measured(check: Any, targets: list[Any], params: Any, total: int) -> dict[str, Any]:
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    statuses = await _poll_round(check, targets, params, total)
    cpu, wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
    return {
        "gets": total,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "gets_per_s": round(total / wall, 1),
        "cpu_s_per_1000": round(cpu / total * 1000, 4),
        "non_ok": total - statuses["OK"],
    }


V3 = {
    "version": "v3",
    "user": "monuser",
    "auth_protocol": "SHA",
    "auth_key": "authpass123",
    "priv_protocol": "AES",
    "priv_key": "privpass123",
    "context": "public",
}


async def child(mode: str, port: int, count: int, gets: int, v3: bool) -> dict[str, Any]:
    from checks.snmp import SnmpCheck, SnmpParams
    from monitord.model import Target
    from tests.snmp_agents import fleet_address

    security = V3 if v3 else {"community": "public"}
    params = SnmpParams.model_validate({"port": port, "get": OIDS, **security})
    targets = [Target(f"dev{i}", fleet_address(i)) for i in range(count)]
    check = SnmpCheck()
    await check.start()
    try:
        first = await _measured(check, targets, params, count)
        if mode == "first":
            steady = await _measured(check, targets, params, count)
            return {"devices": count, "first_poll": first, "second_poll": steady}
        return {
            "devices": count,
            "first_poll": first,
            "steady": await _measured(check, targets, params, gets),
        }
    finally:
        await check.close()


def run_loop(coro: Coroutine[Any, Any, dict[str, Any]], loop: str) -> dict[str, Any]:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


# ---------------------------------------------------------------- parent side


def in_child(
    mode: str, port: int, count: int, gets: int, loop: str, v3: bool = False
) -> dict[str, Any]:
    spec = json.dumps(
        {"mode": mode, "port": port, "count": count, "gets": gets, "loop": loop, "v3": v3}
    )
    out = subprocess.run(
        [sys.executable, "-m", "bench.snmp", "--child", spec],
        capture_output=True,
        text=True,
        check=True,
    )
    if out.stderr.strip():
        print(out.stderr.strip(), flush=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def median_by(runs: list[dict[str, Any]], key: Callable[[dict[str, Any]], float]) -> dict[str, Any]:
    return sorted(runs, key=key)[len(runs) // 2]


def bench_get(port: int, fleet: int, gets: int, runs: int, loop: str) -> dict[str, Any]:
    per = []
    for i in range(runs):
        r = in_child("get", port, fleet, gets, loop)
        per.append(r)
        print(f"  get run {i + 1}: {r['steady']}", flush=True)
    best = median_by(per, lambda r: r["steady"]["cpu_s_per_1000"])
    cpu_per_1000 = best["steady"]["cpu_s_per_1000"]
    return {
        "what": f"v2c GET of 3 OIDs through SnmpCheck.run, {CONCURRENCY} concurrent, "
        f"{gets} GETs cycling over {fleet} simulated devices (after a first-contact round)",
        "target": f"<= {1000 / TARGET_GETS_PER_CPU_S:g} CPU-s per 1,000 GETs",
        "median": best["steady"],
        "gets_per_cpu_s": round(1000 / cpu_per_1000, 1),
        "cpu_s_per_1000_each_run": [r["steady"]["cpu_s_per_1000"] for r in per],
        "all_runs": per,
    }


def bench_first(
    port: int, sizes: list[int], runs: int, loop: str, v3: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "what": f"CPU-s of the first poll of N never-seen devices ({'v3 authPriv' if v3 else 'v2c'}"
        " GET of 3 OIDs each), fresh check instance; second_poll = the same devices again",
        "target": "grows ~linearly with N",
    }
    medians = {}
    for n in sizes:
        per = []
        for i in range(runs):
            r = in_child("first", port, n, n, loop, v3)
            per.append(r)
            print(f"  first N={n} run {i + 1}: {r['first_poll']}", flush=True)
        best = median_by(per, lambda r: r["first_poll"]["cpu_s"])
        medians[n] = best["first_poll"]["cpu_s"]
        out[f"n{n}"] = {
            "median_first_poll": best["first_poll"],
            "median_second_poll": best["second_poll"],
            "first_poll_cpu_s_each_run": [r["first_poll"]["cpu_s"] for r in per],
        }
    if len(sizes) >= 2:
        small, big = sizes[0], sizes[-1]
        out["growth"] = {
            "devices_ratio": round(big / small, 2),
            "cpu_ratio": round(medians[big] / medians[small], 2),
        }
    return out


def projection(cpu_per_1000: float) -> dict[str, Any]:
    gets_per_s = DEVICES_TARGET * 1 / 60
    fraction = gets_per_s * cpu_per_1000 / 1000
    return {
        "what": f"{DEVICES_TARGET:,} devices x 3 OIDs (one GET) once a minute",
        "gets_per_s": round(gets_per_s, 1),
        "cpu_s_per_1000_used": cpu_per_1000,
        "fraction_of_one_core": round(fraction, 3),
        "target": f"< {TARGET_CORE_FRACTION}",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--gets", type=int, default=6000, help="measured GETs per run of (a)")
    p.add_argument("--fleet", type=int, default=1000, help="devices cycled over in (a)")
    p.add_argument("--first", default="1000,2000", help="device counts for (b)")
    p.add_argument("--v3-first", default="500,1000", help="device counts for (d); '' skips")
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: one run, JSON out
    args = p.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        coro = child(spec["mode"], spec["port"], spec["count"], spec["gets"], spec["v3"])
        print(json.dumps(run_loop(coro, spec["loop"])))
        return 0

    from tests.snmp_agents import snmpsim_available, snmpsim_fleet

    if not snmpsim_available():
        print("snmpsim is not installed (pip install snmpsim==1.2.2 pysmi)", file=sys.stderr)
        return 2
    sizes = [int(n) for n in args.first.split(",")]
    v3_max = max((int(n) for n in args.v3_first.split(",")), default=0) if args.v3_first else 0
    devices = max(args.fleet, *sizes, v3_max)
    started = machine()
    with tempfile.TemporaryDirectory(prefix="bench-snmp-") as tmp:
        t0 = time.monotonic()
        with snmpsim_fleet(Path(tmp), devices) as sim:
            print(f"snmpsim: {devices} devices up in {time.monotonic() - t0:.1f} s", flush=True)
            print("(a) CPU per GET:", flush=True)
            a = bench_get(sim.port, args.fleet, args.gets, args.runs, args.loop)
            print("(b) first contact:", flush=True)
            b = bench_first(sim.port, sizes, args.runs, args.loop)
            d = None
            if args.v3_first:
                print("(d) first contact, SNMPv3:", flush=True)
                v3_sizes = [int(n) for n in args.v3_first.split(",")]
                d = bench_first(sim.port, v3_sizes, args.runs, args.loop, v3=True)
    out = {
        "scenario": "snmp",
        "runs": args.runs,
        "loop": args.loop,
        "get": a,
        "first_contact": b,
        "projection": projection(a["median"]["cpu_s_per_1000"]),
        "v3_first_contact": d,
        "agent": f"snmpsim 1.2.2, one process, {devices} endpoints (4 engines)",
        "machine": {**started, "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "snmp.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("projection",)}, indent=2), flush=True)
    print(f"a: {a['median']}\nb: {b.get('growth')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
