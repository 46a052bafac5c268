"""The desk's side of tickets through the running daemon: the CLI and the API list,
show, assign, comment, log work, resolve; an incident linked to an existing ticket
(built-in or external) continues there and opens no new one."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from monitord.cli import main
from monitord.storage.schema import ticket_worklog, tickets
from tests.test_app import running
from tests.tickets.daemon import (
    clear_problem,
    config,
    incident_of,
    notified,
    raise_problem,
    undelivered,
    wait_for,
)
from tests.tickets.emulators import ZammadEmulator


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, ["tickets", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def api(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, method=method, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_the_desk_works_a_ticket_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    async with running(config(tmp_path, database=db_url)) as (app, url):
        await raise_problem(app, "backup", "backup <b>failed</b>")
        await notified(app, "backup")
        await wait_for(lambda: not undelivered(app))
        code, out, _ = await cli(capsys, "list", "--url", url)
        assert code == 0 and out.splitlines()[0] == "1 tickets"
        assert "#1     P3 open     -            acme" in out
        ident = "1"
        steps = [
            ("assign", ident, "jan", "--by", "petr"),
            ("comment", ident, "called the customer", "--by", "jan"),
            ("log", ident, "--minutes", "25", "--note", "swapped the tape", "--by", "jan"),
            ("log", ident, "--minutes", "5", "--note", "checked the job", "--by", "eva"),
            ("status", ident, "closed", "--resolution", "new tape", "--by", "jan"),
        ]
        for step in steps:
            code, out, err = await cli(capsys, *step, "--url", url)
            assert code == 0, err
        code, out, _ = await cli(capsys, "show", ident, "--json", "--url", url)
        ticket = json.loads(out)
        assert ticket["assignee"] == "jan" and ticket["status"] == "closed"
        assert (ticket["resolution"], ticket["resolved_by"]) == ("new tape", "jan")
        assert ticket["minutes_spent"] == 30 and ticket["closed_at"] is not None
        assert [(h["by"], h["kind"]) for h in ticket["history"]] == [
            ("monitord", "trigger"),
            ("petr", "assign"),
            ("jan", "note"),
            ("jan", "work"),
            ("eva", "work"),
            ("jan", "status"),
        ]
        assert ticket["history"][0]["text"].startswith("Problem: ")
        assert "backup <b>failed</b>" in ticket["history"][0]["text"]  # text, never markup
        code, out, _ = await cli(capsys, "show", ident, "--url", url)
        assert "time spent: 30 min" in out and "resolution: new tape" in out
        # The recovery after a human closed it: noted, the human's resolution stays.
        await clear_problem(app, "backup")
        await wait_for(lambda: not undelivered(app))
        code, out, _ = await cli(capsys, "show", ident, "--json", "--url", url)
        after = json.loads(out)
        assert after["resolution"] == "new tape" and after["history"][-1]["kind"] == "resolve"
        assert app.engine is not None
        with app.engine.connect() as conn:
            assert conn.execute(select(func.sum(ticket_worklog.c.minutes))).scalar() == 30


async def test_refusals_name_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running(config(tmp_path)) as (app, url):
        await raise_problem(app, "disk")
        await notified(app, "disk")
        await wait_for(lambda: not undelivered(app))
        cases = [
            ("POST", "/tickets/9/assign", {"assignee": "x", "by": "jan"}, 404, "no ticket #9"),
            ("POST", "/tickets/1/assign", {"assignee": "x"}, 422, "'by' must name who"),
            (
                "POST",
                "/tickets/1/worklog",
                {"minutes": 0, "note": "x", "by": "jan"},
                422,
                "'minutes' must be a whole number from 1 to 10080",
            ),
            ("POST", "/tickets/1/status", {"status": "done", "by": "j"}, 422, "'status' must be"),
            ("GET", "/tickets?status=weird", None, 422, "status must be active"),
            (
                "POST",
                "/incidents/1/tickets",
                {"system": "jira", "ticket": "5", "by": "jan"},
                422,
                "unknown ticket system 'jira' (known: builtin)",
            ),
            ("POST", "/incidents/99/tickets", {"ticket": "1", "by": "jan"}, 404, "no incident"),
            ("POST", "/incidents/1/tickets", {"ticket": "77", "by": "jan"}, 404, "no ticket #77"),
        ]
        for method, path, body, status, message in cases:
            code, answer = await asyncio.to_thread(api, method, f"{url}/api/v1{path}", body)
            assert (code, message in answer["error"]) == (status, True), (path, answer)
        code, _, err = await cli(capsys, "assign", "9", "x", "--by", "jan", "--url", url)
        assert code == 1 and err.strip() == "refused (404): no ticket #9"


async def test_a_linked_incident_continues_on_that_ticket(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    zammad = ZammadEmulator()
    await zammad.start()
    helpdesk = {
        "name": "helpdesk",
        "kind": "zammad",
        "url": zammad.url,
        "token": zammad.token,
        "group": "NOC",
        "customer": "guess:alerts@acme.example",
    }
    try:
        async with running(
            config(tmp_path, (helpdesk,), correlation={"group_wait": "1s"}, database=db_url)
        ) as (
            app,
            url,
        ):
            await raise_problem(app, "ups")
            await notified(app, "ups")
            await wait_for(lambda: not undelivered(app) and len(zammad.tickets) == 1)
            # The same fault seen from a second angle: the desk links it to the first
            # ticket, in both systems, before it is notified on its own.
            await raise_problem(app, "power")
            second = incident_of(app, "power").id
            for system, ticket in (("builtin", "1"), ("helpdesk", "1")):
                code, out, err = await cli(
                    capsys,
                    "link",
                    str(second),
                    ticket,
                    "--system",
                    system,
                    "--by",
                    "jan",
                    "--url",
                    url,
                )
                assert code == 0, err
            assert "helpdesk     1          linked by jan" in out
            await notified(app, "power")
            await clear_problem(app, "power")
            await wait_for(lambda: not undelivered(app))
            assert (
                len(zammad.tickets) == 1 and zammad.calls().count(("POST", "/api/v1/tickets")) == 1
            )
            bodies = [a["body"] for a in zammad.tickets[1]["articles"]]
            assert "Linked:" in bodies[1] and f"incident #{second} linked" in bodies[1]
            assert "Problem:" in bodies[2] and "Recovered:" in bodies[3]
            assert app.engine is not None
            with app.engine.connect() as conn:
                assert conn.execute(select(func.count()).select_from(tickets)).scalar() == 1
            code, out, _ = await cli(capsys, "show", "1", "--json", "--url", url)
            shown = json.loads(out)
            assert shown["incidents"] == [1, second]
            assert [h["kind"] for h in shown["history"]] == [
                "trigger",
                "link",
                "trigger",
                "resolve",
            ]
            assert {(r["system"], r["ticket"], r["linked_by"]) for r in shown["elsewhere"]} == {
                ("helpdesk", "1", None),
                ("helpdesk", "1", "jan"),
            }
    finally:
        await zammad.stop()
