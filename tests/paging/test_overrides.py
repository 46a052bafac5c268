"""On-call overrides made at runtime: the API and `monitord override`, stored with who
set them, refused with precise problems, seen by `monitord oncall` and by paging."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitord.cli import main
from tests.paging.harness import harness


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_override_from_the_cli_is_who_gets_paged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with harness(tmp_path, "2026-11-25T21:00+01:00", serve_http=True) as h:
        add = [
            "override", "add", "--schedule", "support", "--layer", "primary",
            "--engineer", "eva", "--start", "2026-11-25T22:00", "--end", "2026-11-26T08:00",
            "--reason", "jan at the dentist", "--by", "petr", "--url", h.url,
        ]  # fmt: skip
        assert await cli(*add) == 0
        out = capsys.readouterr().out
        assert out.startswith(
            "added #1 support/primary: eva from 2026-11-25T21:00:00+00:00 to "
            "2026-11-26T07:00:00+00:00: jan at the dentist, set by petr"
        )
        assert await cli("override", "list", "--url", h.url) == 0
        assert "#1 support/primary: eva" in capsys.readouterr().out

        # who is on call at 23:00, and why
        assert await cli("oncall", "--url", h.url, "--at", "2026-11-25T23:00+01:00") == 0
        oncall = capsys.readouterr().out
        assert "support/primary: eva (+420777100003) until 2026-11-26T07:00:00+00:00" in oncall
        assert "(override: jan at the dentist, set by petr, eva covers until 2026-11-26 08:00)" in (
            oncall
        )

        # the overlap, an unknown engineer and a reversed span: every problem, located
        bad = [
            "override", "add", "--schedule", "support", "--layer", "primary",
            "--engineer", "nobody", "--start", "2026-11-26T07:00", "--end", "2026-11-26T06:00",
            "--by", "petr", "--url", h.url,
        ]  # fmt: skip
        assert await cli(*bad) == 1
        err = capsys.readouterr().err
        assert "engineer: unknown engineer 'nobody'" in err
        assert "end: must be after start" in err
        overlap = [*add[:-4], "--by", "jan", "--url", h.url]  # add's span, moved
        overlap[overlap.index("2026-11-25T22:00")] = "2026-11-26T07:30"
        overlap[overlap.index("2026-11-26T08:00")] = "2026-11-26T09:00"
        assert await cli(*overlap) == 1
        assert capsys.readouterr().err.strip() == (
            "start: overlaps the override 2026-11-25 22:00 to 2026-11-26 08:00 "
            "(eva, set by petr) in support/primary"
        )

        # paging follows the override: at 23:00 eva, not jan, gets the page
        await h.at("2026-11-25T23:00+01:00")
        h.problem("srv")
        await h.settle()
        assert len(h.sms_to("eva")) == 1 and h.sms_to("jan") == []

        assert await cli("override", "delete", "1", "--by", "jan", "--url", h.url) == 0
        assert "deleted #1" in capsys.readouterr().out
        assert await cli("override", "list", "--url", h.url, "--json") == 0
        assert json.loads(capsys.readouterr().out) == {"overrides": []}
        assert await cli("override", "list", "--all", "--url", h.url) == 0
        assert "(deleted by jan)" in capsys.readouterr().out


async def test_override_api_errors(tmp_path: Path) -> None:
    async with (
        harness(tmp_path, "2026-11-25T21:00+01:00", serve_http=True) as h,
        aiohttp.ClientSession() as http,
    ):

        async def post(body: Any) -> tuple[int, Any]:
            async with http.post(f"{h.url}/api/v1/oncall/overrides", json=body) as resp:
                return resp.status, await resp.json()

        status, body = await post(
            {"schedule": "nope", "layer": "x", "engineer": "jan", "start": "x", "by": "eva"}
        )
        assert status == 422
        assert body["problems"] == [
            {"field": "schedule", "message": "unknown schedule 'nope'"},
            {"field": "start", "message": "not an ISO time: 'x'"},
            {
                "field": "end",
                "message": "required: an ISO time (2026-11-23T08:00, offset optional)",
            },
        ]
        status, body = await post(
            {
                "schedule": "support",
                "layer": "tertiary",
                "engineer": "jan",
                "start": "2026-11-25T22:00+01:00",
                "end": "2026-11-25T20:00+01:00",
                "by": "eva",
            }
        )
        assert status == 422 and body["problems"][0] == {
            "field": "layer",
            "message": "unknown layer 'tertiary' in 'support'",
        }
        async with http.delete(f"{h.url}/api/v1/oncall/overrides/9?by=x") as resp:
            assert resp.status == 404
