"""A ticket system's health in the running daemon, against the Zammad emulator:

- outage (503s, then timeouts): operations queue up, "ticket system unreachable"
  opens after the threshold, and once the system answers again everything is
  delivered in order, nothing lost or duplicated, and the incident clears;
- refusal (wrong credentials): parked with the system's text on the incident's
  timeline, an internal incident, no retry storm; after the operator fixes the
  config and retries, everything is delivered.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitord.api import views
from monitord.cli import main
from tests.test_app import running
from tests.tickets.daemon import (
    clear_problem,
    config,
    incident_of,
    internal_incident,
    notified,
    raise_problem,
    undelivered,
    wait_for,
)
from tests.tickets.emulators import ZammadEmulator

CREATE = ("POST", "/api/v1/tickets")


@pytest.fixture
async def zammad() -> Any:
    emulator = ZammadEmulator()
    await emulator.start()
    yield emulator
    await emulator.stop()


def helpdesk(zammad: ZammadEmulator, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "helpdesk",
        "kind": "zammad",
        "url": zammad.url,
        "token": zammad.token,
        "group": "NOC",
        "customer": "guess:alerts@acme.example",
        "timeout": 0.5,
        **overrides,
    }


def markers(ticket: dict[str, Any]) -> list[int]:
    """The outbox ids of the notes on a ticket, in the order the ticket got them."""
    return [int(m) for a in ticket["articles"] for m in re.findall(r"monitord op (\d+)", a["body"])]


async def test_an_outage_queues_raises_and_recovers_in_order(
    tmp_path: Path, zammad: ZammadEmulator
) -> None:
    async with running(config(tmp_path, (helpdesk(zammad),))) as (app, _):
        zammad.outage = 10**6  # every request: 503
        for name in ("disk", "fan", "raid"):
            await raise_problem(app, name)
            await notified(app, name)
        await clear_problem(app, "disk")
        await wait_for(lambda: internal_incident(app, "ticket-system:helpdesk") is not None)
        internal = internal_incident(app, "ticket-system:helpdesk")
        assert internal.state == "open"
        assert internal.title.startswith("monitord: ticket system helpdesk unreachable for ")
        assert "HTTP 503" in internal.title
        up = {"system": "helpdesk"}
        assert app.registry.get_sample_value("monitord_ticket_system_up", up) == 0
        # Then it hangs instead: every request times out (the emulator still applies
        # what it gets late, so a create may land without its reply).
        zammad.outage, zammad.delay = 0, 1.0
        await clear_problem(app, "fan")
        await asyncio.sleep(1.5)
        assert len(undelivered(app, "helpdesk")) >= 4
        zammad.delay = 0.0
        await wait_for(lambda: not undelivered(app))
        await wait_for(lambda: internal_incident(app, "ticket-system:helpdesk").state == "resolved")
        assert app.registry.get_sample_value("monitord_ticket_system_up", up) == 1
        parked = {"system": "helpdesk", "result": "parked"}
        assert app.registry.get_sample_value("monitord_ticket_operations_total", parked) is None
    assert len(zammad.tickets) == 3  # an orphan of a timed-out create was adopted, not repeated
    states = sorted(t["state"] for t in zammad.tickets.values())
    assert states == ["closed", "closed", "new"]
    for ticket in zammad.tickets.values():
        ids = markers(ticket)
        assert ids == sorted(ids) and len(ids) == len(set(ids)), ticket["title"]  # order, once
        assert len(ids) == (2 if ticket["state"] == "closed" else 1)


async def test_refused_credentials_park_without_a_retry_storm_until_retried(
    tmp_path: Path, zammad: ZammadEmulator, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    wrong = helpdesk(zammad, token="wrong-token-0123456789abcdef")
    async with running(config(tmp_path, (wrong,), database=db_url)) as (app, url):
        await raise_problem(app, "disk")
        await notified(app, "disk")
        await raise_problem(app, "fan")
        await notified(app, "fan")
        await clear_problem(app, "disk")
        await wait_for(
            lambda: (
                len(undelivered(app, "helpdesk")) == 3
                and all(r.parked for r in undelivered(app, "helpdesk"))
            )
        )
        await asyncio.sleep(2.0)  # a retry storm would show here
        assert len(zammad.requests) == 1  # one request (refused); the rest wait without asking
        assert app.engine is not None
        disk = views.get_incident(app.engine, incident_of(app, "disk").id)
        assert disk is not None
        (parked,) = [e for e in disk["timeline"] if e["action"] == "ticket-parked"]
        assert "HTTP 401: authentication failed" in parked["detail"]
        assert "wrong-token" not in json.dumps(disk)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{url}/api/v1/incidents/{disk['id']}/tickets") as resp,
        ):
            shown = await resp.json()
        assert [(o["system"], o["op"], o["state"]) for o in shown["operations"]] == [
            ("builtin", "open", "delivered"),
            ("helpdesk", "open", "parked"),
            ("builtin", "resolve", "delivered"),
            ("helpdesk", "resolve", "parked"),
        ]
        assert "HTTP 401: authentication failed" in shown["operations"][1]["error"]
        await wait_for(lambda: internal_incident(app, "ticket-parked:helpdesk") is not None)
        assert internal_incident(app, "ticket-parked:helpdesk").state == "open"
        code = await asyncio.to_thread(main, ["tickets", "parked", "--url", url])
        listing = capsys.readouterr().out
        assert code == 0 and listing.startswith("3 parked operations")
        assert "HTTP 401: authentication failed" in listing
        assert listing.count("held: helpdesk refused an earlier operation") == 2
        assert not undelivered(app, "builtin")  # the built-in store went on meanwhile

    # The operator fixes the token and restarts: still held until they retry.
    async with running(config(tmp_path, (helpdesk(zammad),), database=db_url)) as (app, url):
        await asyncio.sleep(1.0)
        assert len(zammad.requests) == 1
        code = await asyncio.to_thread(
            main, ["tickets", "retry", "--system", "helpdesk", "--by", "jan", "--url", url]
        )
        assert code == 0
        assert "3 operations back in line for helpdesk" in capsys.readouterr().out
        await wait_for(lambda: not undelivered(app, "helpdesk"))
        await wait_for(lambda: internal_incident(app, "ticket-parked:helpdesk").state == "resolved")
        disk = views.get_incident(app.engine, incident_of(app, "disk").id)  # type: ignore[arg-type]
        assert disk is not None
        assert [e["actor"] for e in disk["timeline"] if e["action"] == "ticket-retry"] == ["jan"]
    assert sorted(t["state"] for t in zammad.tickets.values()) == ["closed", "new"]
    assert zammad.calls().count(CREATE) == 2  # one per incident
