"""Benchmark of the SNMP trap receiver: loss and CPU per trap on loopback.

The receiver (`monitord.sources.traps.TrapReceiver`, uvloop, pysnmp) runs in
this process with a sink as cheap as `App.submit` (an append); a separate
process blasts pre-encoded SNMPv2c traps from a known device's address at a
fixed rate, paced in 5 ms slices: linkDown/linkUp over 50 ifIndexes, so both
problem and recovery mapping run. Received = traps the receiver mapped to an
event; CPU = user+sys of this process from the first packet until the last
one is in (or 2 s after the sender stopped). Median of the runs by CPU per
trap. Result: bench/results/traps.json.

    python -m bench.traps --rate 1000 --seconds 10 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from bench.core import RESULTS, cpu_seconds, machine
from correlator.events import Event
from monitord.clock import SystemClock
from monitord.config.load import config_from_dict
from monitord.sources.traps import TrapReceiver

SENDER = "127.42.0.1"
COMMUNITY = "bench-community"
LINK_DOWN, LINK_UP = (1, 3, 6, 1, 6, 3, 1, 1, 5, 3), (1, 3, 6, 1, 6, 3, 1, 1, 5, 4)


def packets(count: int = 100) -> list[bytes]:
    """Distinct v2c TRAP messages: linkDown/linkUp alternating over ifIndex 1..50."""
    from pyasn1.codec.ber import encoder  # type: ignore[import-untyped, unused-ignore]
    from pysnmp.proto.api import v2c  # type: ignore[import-untyped, unused-ignore]

    out = []
    for n in range(count):
        if_index = n // 2 % 50 + 1
        pdu = v2c.TrapPDU()
        v2c.apiTrapPDU.set_defaults(pdu)
        v2c.apiTrapPDU.set_request_id(pdu, 1000 + n)
        v2c.apiTrapPDU.set_varbinds(
            pdu,
            [
                (v2c.apiTrapPDU.sysUpTime, v2c.TimeTicks(12345)),
                (v2c.apiTrapPDU.snmpTrapOID, v2c.ObjectIdentifier(LINK_UP if n % 2 else LINK_DOWN)),
                ((1, 3, 6, 1, 2, 1, 2, 2, 1, 1, if_index), v2c.Integer(if_index)),
                ((1, 3, 6, 1, 2, 1, 2, 2, 1, 7, if_index), v2c.Integer(1)),
                ((1, 3, 6, 1, 2, 1, 2, 2, 1, 8, if_index), v2c.Integer(2 - n % 2)),
            ],
        )
        msg = v2c.Message()
        v2c.apiMessage.set_defaults(msg)
        v2c.apiMessage.set_community(msg, COMMUNITY)
        v2c.apiMessage.set_pdu(msg, pdu)
        out.append(encoder.encode(msg))
    return out


def blast(target: str, rate: float, seconds: float) -> None:
    """The sender process: `rate` traps/s for `seconds`, then prints how many it sent."""
    host, port = target.rsplit(":", 1)
    msgs = packets()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((SENDER, 0))
    address = (host, int(port))
    slice_s = 0.005
    sent = 0
    start = time.monotonic()
    end = start + seconds
    while (now := time.monotonic()) < end:
        due = int((now - start) * rate)
        while sent < due:
            sock.sendto(msgs[sent % len(msgs)], address)
            sent += 1
        time.sleep(slice_s)
    sock.close()
    print(json.dumps({"sent": sent, "seconds": round(time.monotonic() - start, 3)}))


async def one_run(rate: float, seconds: float) -> dict[str, Any]:
    loaded = config_from_dict(
        {
            "customers": [{"name": "acme"}],
            "devices": [{"name": "sw", "customer": "acme", "address": SENDER, "role": "network"}],
            "traps": {"enabled": True, "listen": "127.0.0.1:0", "communities": [COMMUNITY]},
        }
    )
    events: list[Event] = []
    first: list[float] = []  # CPU and time at the first trap: sender start-up is not ours
    expected: list[int] = []
    all_in = asyncio.Event()

    def sink(event: Event) -> None:
        if not events:
            first.extend((cpu_seconds(), time.monotonic()))
        events.append(event)
        if expected and len(events) >= expected[0]:
            all_in.set()

    registry = CollectorRegistry()
    receiver = TrapReceiver(
        loaded.config.traps, lambda: loaded.inventory, sink, registry, SystemClock()
    )
    await receiver.start()
    assert receiver.address is not None
    target = f"{receiver.address[0]}:{receiver.address[1]}"
    await asyncio.sleep(0.5)  # settle: engine set-up is not what we measure
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.traps",
        "--blast",
        target,
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        stdout=subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    report = json.loads(out)
    expected.append(report["sent"])
    if len(events) < report["sent"]:
        with contextlib.suppress(TimeoutError):  # what is not in after 2 s is lost
            async with asyncio.timeout(2.0):
                await all_in.wait()
    cpu, wall = cpu_seconds() - first[0], time.monotonic() - first[1]
    counts = {
        r: registry.get_sample_value("monitord_traps_received_total", {"result": r})
        for r in ("mapped", "unmapped", "malformed", "auth_failed", "error")
    }
    await receiver.stop()
    received = len(events)
    return {
        "sent": report["sent"],
        "received": received,
        "lost": report["sent"] - received,
        "send_seconds": report["seconds"],
        "traps_per_s_sent": round(report["sent"] / report["seconds"], 1),
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_trap": round(1000 * cpu / max(received, 1), 4),
        "cpu_percent_of_one_core": round(100 * cpu / wall, 1),
        "results": {k: int(v or 0) for k, v in counts.items()},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rate", type=float, default=1000.0, help="traps per second")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--blast", metavar="HOST:PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.blast:
        blast(args.blast, args.rate, args.seconds)
        return 0
    import uvloop

    runs = []
    for i in range(args.runs):
        run = uvloop.run(one_run(args.rate, args.seconds))
        print(f"  run {i + 1}: {run}", flush=True)
        runs.append(run)
    median = sorted(runs, key=lambda r: r["cpu_ms_per_trap"])[len(runs) // 2]
    out = {
        "scenario": "traps",
        "what": f"SNMPv2c linkDown/linkUp traps at {args.rate:g}/s for {args.seconds:g} s "
        "from a known device, received and mapped to events (sink = an append)",
        "target": "1,000 traps/s without loss",
        "runs": args.runs,
        "median": median,
        "lost_each_run": [r["lost"] for r in runs],
        "cpu_ms_per_trap_each_run": [r["cpu_ms_per_trap"] for r in runs],
        "all_runs": runs,
        "machine": machine(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(RESULTS / "traps.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(median, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
