"""`monitord demo` end to end (a real subprocess), and the API and `monitord status`
against a running daemon."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from monitord.api import views
from monitord.api.http import serve
from monitord.app import App
from monitord.cli import main
from tests.conftest import free_port
from tests.test_app import Listener, config, wait_for


def test_demo_shows_the_whole_path(tmp_path: Path) -> None:
    api, lab, tcp = free_port(), free_port(), free_port()
    http = free_port()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitord",
            "demo",
            "--devices",
            "240",
            "--customers",
            "12",
            "--dir",
            str(tmp_path),
            "--listen",
            f"127.0.0.1:{api}",
            "--lab-control",
            f"127.0.0.1:{lab}",
            "--lab-ports",
            f"{tcp},{http}",
            "--interval",
            "2",
            "--fault-after",
            "3",
            "--duration",
            "110",
        ],
        capture_output=True,
        text=True,
        timeout=170,
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:]
    for line in (
        "problems confirmed after retries (HARD)",
        "incidents open",
        "tickets opened in the built-in store",
        "pages sent to the console channel",
        "healed",
        "incidents resolved",
        "tickets resolved",
        "recovery complete: fault -> hard state -> incident -> ticket -> page -> resolved",
        "servers and workstations synced from it",
        "confirmed; their evidence joins incident(s)",
        "RMM verdicts: 1 agent-problem, 1 blind-spot, 1 confirmed, 1 disputed, 1 unverifiable",
        "RMM: open observations after the heal: 0",
        "every RMM error got a verdict backed by monitord's own evidence",
    ):
        assert line in out, f"{line!r} missing from demo output:\n{out}"
    assert "PAGE [P" in proc.stderr and "RESOLVED [P" in proc.stderr
    assert main(["check-config", str(tmp_path / "monitord.yaml")]) == 0


async def test_api_and_status_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    rtr = Listener("127.41.0.1", port)  # the router answers, the server (127.41.0.2) does not
    await rtr.up()
    cfg = config(tmp_path, port)
    app = App(cfg)
    await app.start()
    listen = cfg.config.daemon.listen
    runner = await serve(app, listen)
    url = f"http://{listen}"
    try:
        async with aiohttp.ClientSession() as http:

            async def get(path: str) -> tuple[int, object]:
                async with http.get(url + path) as resp:
                    return resp.status, await resp.json(content_type=None)

            engine = app.engine
            assert engine is not None
            await wait_for(lambda: views.list_incidents(engine))
            status, body = await get("/api/v1/status")
            assert status == 200 and body["devices"] == 2  # type: ignore[index]
            status, body = await get("/api/v1/problems")
            assert {p["device"] for p in body["problems"]} >= {"srv"}  # type: ignore[index]
            status, body = await get("/api/v1/incidents")
            incident = body["incidents"][0]  # type: ignore[index]
            status, detail = await get(f"/api/v1/incidents/{incident['id']}")
            assert detail["timeline"][0]["action"] == "opened"  # type: ignore[index]
            assert (await get("/api/v1/incidents/999999"))[0] == 404
            assert (await get("/api/v1/incidents/abc"))[0] == 400
            assert (await get("/api/v1/incidents?state=bogus"))[0] == 400
            status, _ = await get("/healthz")
            assert status == 200
            async with http.get(url + "/metrics") as resp:
                text = await resp.text()
            assert "monitord_checks_executed_total" in text
            assert "monitord_build_info" in text

            code = await asyncio.to_thread(main, ["status", "--url", url])
            assert code == 0
            printed = capsys.readouterr().out
            assert "2 devices, 2 checks" in printed and "acme/srv/ssh" in printed

            await wait_for(lambda: views.list_pages(engine))  # notified first
            ident = str(incident["id"])
            assert await asyncio.to_thread(main, ["ack", ident, "--by", "jan", "--url", url]) == 0
            assert f"#{ident} acknowledged by jan" in capsys.readouterr().out
            status, detail = await get(f"/api/v1/incidents/{ident}")
            assert detail["state"] == "acknowledged"  # type: ignore[index]
            assert await asyncio.to_thread(main, ["ack", "999", "--by", "x", "--url", url]) == 1
            assert "no open incident #999" in capsys.readouterr().err
            async with http.post(f"{url}/api/v1/incidents/{ident}/ack", json={}) as resp:
                assert resp.status == 422

            assert await asyncio.to_thread(main, ["explain", ident, "--url", url]) == 0
            out = capsys.readouterr().out.splitlines()
            actions = [line.split()[1] for line in out if line.startswith("  20")]
            assert actions == [  # the correlator's steps and paging's (route, page, ack)
                "opened",
                "priority",
                "notified",
                "route",
                "page",
                "acknowledged",
                "ack",
            ]
            assert "P2 because: server, category service-down" in "\n".join(out)
    finally:
        await runner.cleanup()
        await app.stop()
        await rtr.down()


def test_status_command_without_daemon(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--url", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "monitord is not answering" in capsys.readouterr().err
