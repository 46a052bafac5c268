"""kill -9 a real daemon process while it waits for the SMS gateway's answer: after a
restart nothing is lost and nothing is sent twice, counted at the emulators; an
escalation step that fell due while the daemon was dead fires once."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from tests.channels.emulators import HttpEmulators, SmtpEmulator
from tests.conftest import free_port
from tests.paging.harness import number, paging_config
from tests.test_app import Listener, wait_for


def config(tmp_path: Path, base: str, smtp: int, port: int) -> Path:
    listen = f"127.0.0.1:{free_port()}"
    doc = paging_config(tmp_path, base, smtp, listen)
    doc["daemon"] |= {"initial_spread": "0.2s", "write_interval": "0.2s"}
    doc["defaults"] = {"interval": "0.5s", "retry_interval": "0.2s", "max_attempts": 2}
    doc["devices"] = [
        {
            "name": "srv",
            "customer": "acme",
            "address": "127.44.0.1",
            "role": "server",
            "checks": [{"type": "tcp", "name": "ssh", "port": port}],
        }
    ]
    # no business hours at all: whenever this runs, acme's P1 goes to the night policy
    doc["customers"][0]["contract"]["business_hours"] = []
    doc["priority_rules"] = [{"name": "all", "priority": "P1"}]
    layers = doc["oncall"]["schedules"][0]["layers"]
    layers[0]["engineers"], layers[1]["engineers"] = ["jan"], ["petr"]
    doc["paging"] |= {"tick": "0.3s"}
    doc["paging"]["policies"][0]["steps"][0]["wait"] = "6s"
    doc["paging"]["policies"][0]["steps"][1]["wait"] = "1h"
    path = tmp_path / "monitord.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


async def daemon(path: Path, tmp_path: Path, n: int) -> asyncio.subprocess.Process:
    with (tmp_path / f"daemon{n}.log").open("w") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitord", "run", "--config", str(path), stderr=log
        )


def call(url: str, body: Any = None) -> Any:
    req = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(req, timeout=3) as resp:
        return json.loads(resp.read())


async def up(url: str) -> bool:
    try:
        return bool(await asyncio.to_thread(call, f"{url}/healthz"))
    except OSError:
        return False


async def test_kill_9_during_an_sms_neither_loses_nor_repeats(tmp_path: Path) -> None:
    emu = HttpEmulators(slow_seconds=30.0)
    base = await emu.start()
    smtp = SmtpEmulator()
    smtp.start(free_port())
    port = free_port()
    server = Listener("127.44.0.1", port)
    await server.up()
    path = config(tmp_path, base, smtp.port, port)
    url = "http://" + yaml.safe_load(path.read_text())["daemon"]["listen"]
    procs: list[asyncio.subprocess.Process] = []
    try:
        procs.append(await daemon(path, tmp_path, 1))
        await wait_for(partial(up, url), 20)
        emu.modes["odorik"] = "slow"  # the SMS goes out; the answer never comes in time
        await server.down()
        await wait_for(lambda: emu.sms_sent, 20)
        procs[0].send_signal(signal.SIGKILL)  # mid-request: the daemon cannot know
        await procs[0].wait()
        emu.modes["odorik"] = "ok"

        procs.append(await daemon(path, tmp_path, 2))
        await wait_for(partial(up, url), 20)
        # the secondary's step, 6 s after the first page, fires once after the restart
        await wait_for(lambda: texts(emu, "petr"), 20)
        await asyncio.sleep(2.0)
        assert len(texts(emu, "jan")) == 1  # found in Odorik's history: not sent again
        assert len(texts(emu, "petr")) == 1
        history = [r for r in emu.of("odorik") if r.path.endswith("/sms.json")]
        assert len(history) == 1

        await asyncio.to_thread(call, f"{url}/api/v1/incidents/1/ack", {"by": "jan"})
        await server.up()
        await wait_for(lambda: resolves(emu, "jan") and resolves(emu, "petr"), 20)
        await asyncio.sleep(1.0)
        assert len(resolves(emu, "jan")) == 1 and len(resolves(emu, "petr")) == 1
        pages = (await asyncio.to_thread(call, f"{url}/api/v1/pages"))["pages"]
        kinds = sorted((p["recipient"].split()[0], p["kind"]) for p in pages)
        assert kinds == [
            ("jan", "resolve"),
            ("jan", "trigger"),
            ("petr", "acknowledge"),
            ("petr", "resolve"),
            ("petr", "trigger"),
        ]
        procs[-1].send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(procs[-1].wait(), 20) == 0
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await server.down()
        smtp.stop()
        await emu.stop()


def texts(emu: HttpEmulators, name: str) -> list[str]:
    return [t for to, _, t in emu.sms_sent if to == number(name) and "Ack:" in t]


def resolves(emu: HttpEmulators, name: str) -> list[str]:
    return [t for to, _, t in emu.sms_sent if to == number(name) and t.startswith("RESOLVED")]
