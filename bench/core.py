"""Benchmarks of the daemon core against the lab fleet on loopback.

Each scenario runs the real `App` (scheduler → check → state → storage →
metrics, with uvloop) in this process against a lab served by a separate
process, so the CPU measured (user+sys of this process, all its threads) is
the daemon's alone. Figures are CPU-seconds per 1,000 checks, checks/s,
scheduling-lag percentiles and RSS; each scenario runs several times and the
median run is reported. Results go to bench/results/<scenario>.json.

    python -m bench.core tcp http icmp fleet scale startup --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from monitord.app import App
from monitord.config.load import LoadedConfig, config_from_dict
from monitord.demo_config import fleet_config
from monitord.lab import generate_fleet

RESULTS = Path(__file__).resolve().parent / "results"
# Random ports, so a bench run never collides with a lab a test run has up.
# Inherited by the per-run child processes, which must agree with the parent.
TCP_PORT = int(os.environ.setdefault("MONITORD_BENCH_PORT", str(random.randrange(20000, 29000, 2))))
HTTP_PORT = TCP_PORT + 1


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def lab_process(devices: int, customers: int) -> Iterator[None]:
    """The lab fleet in its own process(es); its CPU is not ours."""
    control = free_port()
    shards = max(1, -(-devices // 5000))
    cmd = [
        sys.executable,
        "-m",
        "monitord",
        "lab",
        "--devices",
        str(devices),
        "--customers",
        str(customers),
        "--control",
        f"127.0.0.1:{control}",
        "--tcp-port",
        str(TCP_PORT),
        "--http-port",
        str(HTTP_PORT),
        "--shards",
        str(shards),
    ]
    with lab_subprocess(cmd, f"http://127.0.0.1:{control}/api/status"):
        yield


@contextmanager
def lab_subprocess(cmd: list[str], status_url: str) -> Iterator[None]:
    """Run `cmd` until the block ends, once `status_url` answers (60 s at most)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(status_url, timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"lab did not start: {err[-2000:]}") from None
                time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def build_config(
    devices: int,
    customers: int,
    checks: list[dict[str, Any]],
    interval: float,
    state_dir: Path,
    **daemon: Any,
) -> LoadedConfig:
    fleet = generate_fleet(devices=devices, customers=customers)
    doc = fleet_config(
        fleet, state_dir, listen=f"127.0.0.1:{free_port()}", tcp_port=TCP_PORT, http_port=HTTP_PORT
    )
    doc["daemon"].update({"log_level": "warning", "max_concurrent_checks": 2000, **daemon})
    doc["defaults"] = {
        "interval": interval,
        "retry_interval": interval,
        "max_attempts": 3,
        "timeout": "5s",
    }
    doc["templates"] = [{"name": "bench", "match": {}, "checks": checks}]
    doc["devices"] = [
        {
            "name": d.name,
            "customer": d.customer,
            "site": d.site,
            "address": d.address,
            "role": str(d.role),
            "parent": d.parent,
        }
        for d in fleet.devices
    ]
    return config_from_dict(doc)


@dataclass
class Run:
    checks: int
    seconds: float
    cpu: float
    lags: list[float] = field(repr=False)
    rss_mb: float
    non_ok: int

    @property
    def cpu_per_1000(self) -> float:
        return 1000 * self.cpu / max(self.checks, 1)

    def summary(self) -> dict[str, Any]:
        lags = sorted(self.lags) or [0.0]

        def pct(p: float) -> float:
            return round(lags[min(len(lags) - 1, int(p * len(lags)))], 4)

        return {
            "checks": self.checks,
            "seconds": round(self.seconds, 2),
            "checks_per_s": round(self.checks / self.seconds, 1),
            "cpu_s": round(self.cpu, 3),
            "cpu_s_per_1000_checks": round(self.cpu_per_1000, 4),
            "cpu_percent_of_one_core": round(100 * self.cpu / self.seconds, 2),
            "lag_p50_s": pct(0.5),
            "lag_p99_s": pct(0.99),
            "lag_max_s": round(lags[-1], 4),
            "rss_mb": round(self.rss_mb, 1),
            "non_ok_results": self.non_ok,
        }


async def measure(loaded: LoadedConfig, warmup: float, window: float) -> Run:
    """Run the daemon for warmup + window seconds; measure only the window."""
    app = App(loaded)
    await app.start()
    assert app.pipeline is not None
    lags: list[float] = []
    counts = {"n": 0, "bad": 0, "on": False}
    handle = app.pipeline.handle

    def counting(spec: Any, result: Any, duration: float, lag: float) -> float:
        if counts["on"]:
            counts["n"] += 1
            counts["bad"] += result.status != 0
            lags.append(lag)
        return handle(spec, result, duration, lag)

    assert app.scheduler is not None
    app.scheduler.on_result = counting
    try:
        await asyncio.sleep(warmup)
        counts["on"] = True
        cpu0, t0 = cpu_seconds(), time.monotonic()
        await asyncio.sleep(window)
        cpu1, t1 = cpu_seconds(), time.monotonic()
        counts["on"] = False
        rss = psutil.Process().memory_info().rss / 2**20
    finally:
        await app.stop()
    return Run(int(counts["n"]), t1 - t0, cpu1 - cpu0, lags, rss, int(counts["bad"]))


def run_loop(coro: Any) -> Any:
    import uvloop

    return uvloop.run(coro)


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.cpu_per_1000)[len(runs) // 2]


# scenarios -------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    devices: int
    checks: list[dict[str, Any]]
    interval: float
    warmup: float
    window: float
    needs_lab: bool = True
    target: str = ""


SCENARIOS = {
    s.name: s
    for s in [
        Scenario(
            "tcp",
            "TCP connect + banner check, 5,000 targets at 2,000 checks/s",
            5000,
            [{"type": "tcp", "name": "ssh", "port": TCP_PORT, "expect": "SSH-2.0"}],
            2.5,
            8,
            20,
            target="<= 0.25 CPU-s per 1,000 checks",
        ),
        Scenario(
            "http",
            "HTTP GET check, 5,000 targets at 1,000 checks/s",
            5000,
            [
                {
                    "type": "http",
                    "name": "web",
                    "port": HTTP_PORT,
                    "path": "/",
                    "body_contains": "ok",
                }
            ],
            5.0,
            8,
            20,
            target="<= 0.4 CPU-s per 1,000 checks",
        ),
        Scenario(
            "icmp",
            "ICMP echo (count=1), 5,000 127.x targets at 1,000 checks/s",
            5000,
            [{"type": "icmp", "name": "ping", "count": 1}],
            5.0,
            8,
            20,
            needs_lab=False,
            target="<= 0.3 CPU-s per 1,000 checks",
        ),
        Scenario(
            "icmp3",
            "ICMP echo (count=3), 5,000 127.x targets at 1,000 checks/s",
            5000,
            [{"type": "icmp", "name": "ping", "count": 3}],
            5.0,
            8,
            20,
            needs_lab=False,
            target="<= 0.3 CPU-s per 1,000 checks",
        ),
        Scenario(
            "fleet",
            "1,200 devices x 5 checks every 60 s (icmp, tcp banner, tcp, http, http body)",
            1200,
            [
                {"type": "icmp", "name": "ping", "count": 3},
                {"type": "tcp", "name": "ssh", "port": TCP_PORT, "expect": "SSH-2.0"},
                {"type": "tcp", "name": "web-port", "port": HTTP_PORT},
                {"type": "http", "name": "web", "port": HTTP_PORT},
                {"type": "http", "name": "web-body", "port": HTTP_PORT, "body_contains": "ok"},
            ],
            60.0,
            70,
            120,
            target="< 5% of one core, < 150 MB RSS",
        ),
        Scenario(
            "scale",
            "10,000 TCP targets at 2,000 checks/s sustained",
            10000,
            [{"type": "tcp", "name": "ssh", "port": TCP_PORT}],
            5.0,
            10,
            60,
            target=">= 2,000 checks/s, p99 lag < 1 s",
        ),
    ]
}


def one_run(s: Scenario) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        loaded = build_config(
            s.devices,
            40,
            s.checks,
            s.interval,
            Path(tmp),
            initial_spread=min(s.interval, s.warmup),
        )
        if s.needs_lab:
            with lab_process(s.devices, 40):
                result: Run = run_loop(measure(loaded, s.warmup, s.window))
        else:
            result = run_loop(measure(loaded, s.warmup, s.window))
    return result


def run_in_child(s: Scenario) -> Run:
    """One run in a fresh interpreter, so RSS and caches start clean each time."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.core", "--child", json.dumps(asdict(s))],
        capture_output=True,
        text=True,
        check=True,
    )
    return Run(**json.loads(out.stdout.strip().splitlines()[-1]))


def run_scenario(s: Scenario, runs: int) -> dict[str, Any]:
    results: list[Run] = []
    for i in range(runs):
        results.append(run_in_child(s))
        print(f"  {s.name} run {i + 1}: {results[-1].summary()}", flush=True)
    best = median_run(results)
    return {
        "scenario": s.name,
        "what": s.what,
        "target": s.target,
        "runs": runs,
        "median": best.summary(),
        "cpu_s_per_1000_each_run": [round(r.cpu_per_1000, 4) for r in results],
        "all_runs": [r.summary() for r in results],
    }


async def _startup(loaded: LoadedConfig) -> dict[str, float]:
    t0 = time.monotonic()
    app = App(loaded)
    first: dict[str, float] = {}
    await app.start()
    assert app.pipeline is not None and app.scheduler is not None
    handle = app.pipeline.handle
    seen: set[str] = set()
    total = len(app.inventory.devices)

    def record(spec: Any, result: Any, duration: float, lag: float) -> float:
        now = time.monotonic() - t0
        first.setdefault("first_result_s", now)
        seen.add(spec.device_id)
        if len(seen) == total:
            first.setdefault("all_devices_s", now)
        return handle(spec, result, duration, lag)

    app.scheduler.on_result = record
    started = time.monotonic() - t0
    for _ in range(600):
        if "all_devices_s" in first:
            break
        await asyncio.sleep(0.05)
    await app.stop()
    return {"start_s": round(started, 3), **{k: round(v, 3) for k, v in first.items()}}


def run_startup(runs: int) -> dict[str, Any]:
    """Start to first check results for 1,200 devices (config loaded, DB migrated,
    inventory stored, first results in)."""
    results = []
    for spread in (2.5, 10.0):  # the default, and a gentler one
        per = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp, lab_process(1200, 40):
                t0 = time.monotonic()
                loaded = build_config(
                    1200,
                    40,
                    [{"type": "tcp", "name": "ssh", "port": TCP_PORT}],
                    60.0,
                    Path(tmp),
                    initial_spread=spread,
                )
                load_s = time.monotonic() - t0
                r = run_loop(_startup(loaded))
                r["config_load_s"] = round(load_s, 3)
                per.append(r)
                print(f"  startup spread={spread}: {r}", flush=True)
        med = sorted(per, key=lambda r: r.get("all_devices_s", 1e9))[len(per) // 2]
        results.append({"initial_spread_s": spread, "median": med, "all_runs": per})
    return {
        "scenario": "startup",
        "target": "start to first check results for 1,200 devices < 3 s",
        "runs": runs,
        "results": results,
    }


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu_model": platform.processor() or platform.machine(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "scenarios",
        nargs="*",
        default=[*SCENARIOS, "startup"],
        help=f"any of: {', '.join([*SCENARIOS, 'startup'])}",
    )
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--window", type=float, default=None, help="override measuring window (s)")
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: one run, JSON out
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(asdict(one_run(Scenario(**json.loads(args.child))))))
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in args.scenarios:
        print(f"{name}:", flush=True)
        if name == "startup":
            out = run_startup(args.runs)
        else:
            s = SCENARIOS[name]
            if args.window:
                s = Scenario(**{**asdict(s), "window": args.window})
            out = run_scenario(s, args.runs)
        out["machine"] = machine()
        (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out.get("median", out.get("results")), indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
