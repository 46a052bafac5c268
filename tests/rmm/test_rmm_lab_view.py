"""The lab's RMM view: the account follows the lab's faults, RMM-only injections
disagree with it on purpose, and the control API drives both."""

from __future__ import annotations

from typing import Any

import aiohttp

from monitord.lab import Lab, generate_fleet
from monitord.sources.rmm.base import Category, FailureKind
from tests.conftest import free_port

FLEET = generate_fleet(devices=60, customers=3, seed=3)
SERVER = next(d.name for d in FLEET.devices if d.role == "server")
STATION = next(d.name for d in FLEET.devices if d.role == "workstation")
ROUTER = FLEET.sites[0].gateway.name


async def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, json=body) as resp,
    ):
        return resp.status, await resp.json()


async def test_account_follows_the_lab_and_the_injections() -> None:
    async with Lab(
        FLEET, control_port=0, tcp_port=free_port(), http_port=free_port(), rmm=True
    ) as lab:
        view = lab.rmm
        assert view is not None
        inv = view.inventory(1.0)
        assert len(inv.clients) == 3 and len(inv.sites) == len(FLEET.sites)
        agents = {d.name for d in inv.devices}
        assert SERVER.upper() in agents and ROUTER.upper() not in agents  # agents only
        ws = next(d for d in inv.devices if d.name == STATION.upper())
        assert ws.logged_on_user.startswith(FLEET.device_by_name[STATION].customer.upper() + "\\")
        assert ws.addresses == (FLEET.device_by_name[STATION].address,)
        assert view.failures(lab.faults(), 1.0) == ()
        # the lab's faults, as the RMM reports them
        await lab.inject("device", STATION, "down")
        await lab.inject("device", SERVER, "service_down")
        found = {
            (view.by_id[f.device_id], f.kind, f.category) for f in view.failures(lab.faults(), 1.0)
        }
        assert found == {
            (STATION, FailureKind.OFFLINE, Category.AVAILABILITY),
            (SERVER, FailureKind.CHECK, Category.SERVICE),
        }
        # RMM-only injections through the control API
        base = lab.control_url
        status, made = await call(
            "POST", f"{base}/api/rmm/injections", {"kind": "blind_spot", "device": SERVER}
        )
        assert status == 201
        status, _ = await call(
            "POST",
            f"{base}/api/rmm/injections",
            {"kind": "false_failure", "device": STATION, "category": "antivirus"},
        )
        assert status == 201
        status, body = await call("GET", f"{base}/api/rmm/failures")
        assert {(f["device_id"], f["category"]) for f in body["failures"]} == {
            (view.device_ids[STATION], "availability"),
            (view.device_ids[STATION], "antivirus"),
        }  # the server's real fault is the RMM's blind spot
        status, body = await call("DELETE", f"{base}/api/rmm/injections/{made['id']}")
        assert status == 200 and body["healed"]["kind"] == "blind_spot"
        # precise refusals
        status, body = await call(
            "POST", f"{base}/api/rmm/injections", {"kind": "agent_down", "device": ROUTER}
        )
        assert (status, body["error"]) == (404, f"{ROUTER!r} is not a lab device with an RMM agent")
        status, body = await call(
            "POST", f"{base}/api/rmm/injections", {"kind": "melt", "device": SERVER}
        )
        assert status == 400 and body["error"].startswith("invalid kind 'melt'")
        status, body = await call(
            "POST",
            f"{base}/api/rmm/injections",
            {"kind": "false_failure", "device": SERVER, "category": "weather"},
        )
        assert status == 400 and body["error"].startswith("invalid category 'weather'")
        status, body = await call("DELETE", f"{base}/api/rmm/injections/r-99")
        assert (status, body["error"]) == (404, "unknown RMM injection id 'r-99'")


async def test_a_lab_without_an_rmm_says_so() -> None:
    async with Lab(FLEET, control_port=0, tcp_port=free_port(), http_port=free_port()) as lab:
        status, body = await call("GET", f"{lab.control_url}/api/rmm/injections")
        assert (status, body["error"]) == (404, "this lab runs without an RMM view (Lab(rmm=True))")
