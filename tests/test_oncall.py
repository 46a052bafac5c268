"""On-call schedules: who is on call at explicit instants (no clock), the config's
located problems, and `GET /api/v1/oncall` / `monitord oncall` on a real daemon."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from alerts.oncall import next_handover, who_is_on_call
from monitord.api.http import serve
from monitord.app import App
from monitord.cli import main
from monitord.config import ConfigErrors
from monitord.config.load import config_from_dict
from monitord.config.oncall import OncallConfig, Rotation, Schedule
from tests.conftest import free_port

ENGINEERS: list[dict[str, Any]] = [
    {
        "name": "jan",
        "display_name": "Jan Novák",
        "phones": ["+420 777 123 456"],
        "email": "jan@example.cz",
        "telegram_chat_id": 1001,
        "channels": ["telegram", "sms", "call"],
    },
    {"name": "petr", "display_name": "Petr Svoboda", "phones": ["+420777222333"]},
    {"name": "eva", "display_name": "Eva Dvořáková", "phones": ["+420777444555"]},
]

WEEKLY = {
    "name": "primary",
    "every": "weekly",
    "handoff_day": "mon",
    "handoff_time": "08:00",
    "start": "2026-03-02",  # a Monday; week n is engineers[n % 3]
    "engineers": ["jan", "petr", "eva"],
}


def oncall_section(*layers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "engineers": ENGINEERS,
        "schedules": [{"name": "support", "timezone": "Europe/Prague", "layers": list(layers)}],
        "fallback": {"name": "desk", "display_name": "Service desk", "phones": ["+420222111000"]},
        **extra,
    }


def load(*layers: dict[str, Any]) -> OncallConfig:
    return config_from_dict({"oncall": oncall_section(*layers)}).config.oncall


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


NAMES = {str(e["name"]): str(e["display_name"]) for e in ENGINEERS}


def who(oncall: OncallConfig, t: str, layer: str = "primary") -> Any:
    schedule = oncall.schedules[0]
    found = schedule.layer(layer)
    assert found is not None
    return who_is_on_call(schedule, found, at(t), NAMES)


def parts(oncall: OncallConfig) -> tuple[Schedule, Rotation]:
    return oncall.schedules[0], oncall.schedules[0].layers[0]


# weekly rotation ---------------------------------------------------------------


def test_weekly_handoff_is_monday_0800_prague() -> None:
    oncall = load(WEEKLY)
    # 2026-11-23 is week 38 since 2026-03-02: 38 % 3 = 2 -> eva; 07:59 is still week 37 (petr).
    before = who(oncall, "2026-11-23T07:59+01:00")
    assert before.engineer == "petr"
    assert before.reason == (
        "weekly rotation 'primary': week of 2026-11-16 08:00 Europe/Prague, Petr Svoboda"
    )
    now = who(oncall, "2026-11-23T08:00+01:00")
    assert now.engineer == "eva"
    assert now.reason == (
        "weekly rotation 'primary': week of 2026-11-23 08:00 Europe/Prague, Eva Dvořáková"
    )
    assert now.shift_start == at("2026-11-23T07:00Z")
    assert now.shift_end == at("2026-11-30T07:00Z")
    assert who(oncall, "2026-11-30T06:59:59Z").engineer == "eva"
    assert who(oncall, "2026-11-30T07:00Z").engineer == "jan"


def test_weekly_rotation_across_spring_dst_change() -> None:
    # Clocks go 02:00 -> 03:00 on Sunday 2026-03-29: the week from Monday 23rd
    # 08:00 CET (07:00 UTC) ends Monday 30th 08:00 CEST (06:00 UTC), 167 hours.
    oncall = load(WEEKLY)
    shift = who(oncall, "2026-03-29T12:00+02:00")
    assert shift.engineer == "jan"  # week 3
    assert shift.shift_start == at("2026-03-23T07:00Z")
    assert shift.shift_end == at("2026-03-30T06:00Z")
    assert shift.shift_end - shift.shift_start == 167 * 3600
    assert who(oncall, "2026-03-30T05:59Z").engineer == "jan"
    after = who(oncall, "2026-03-30T06:00Z")
    assert after.engineer == "petr"
    assert after.reason.startswith("weekly rotation 'primary': week of 2026-03-30 08:00 ")


def test_weekly_rotation_across_autumn_dst_change() -> None:
    # Clocks go 03:00 -> 02:00 on Sunday 2026-10-25: that week is 169 hours.
    oncall = load(WEEKLY)
    shift = who(oncall, "2026-10-25T02:30+01:00")  # the second 02:30
    assert shift.shift_start == at("2026-10-19T06:00Z")
    assert shift.shift_end == at("2026-10-26T07:00Z")
    assert shift.shift_end - shift.shift_start == 169 * 3600
    assert who(oncall, "2026-10-26T06:30Z").engineer == shift.engineer  # 07:30 CET
    assert who(oncall, "2026-10-26T07:00Z").engineer != shift.engineer


def test_nobody_before_the_rotation_starts() -> None:
    oncall = load(WEEKLY)
    assert who(oncall, "2026-03-02T07:59+01:00") is None
    assert who(oncall, "2026-03-02T08:00+01:00").engineer == "jan"


# daily rotation ----------------------------------------------------------------


def test_daily_rotation_and_its_dst_day() -> None:
    daily = {
        "name": "primary",
        "every": "daily",
        "handoff_time": "09:00",
        "start": "2026-10-01",
        "engineers": ["jan", "petr"],
    }
    oncall = load(daily)
    # Day 23 since 2026-10-01 -> petr; the handoff 25th 09:00 is CET after the change.
    shift = who(oncall, "2026-10-25T08:00+01:00")
    assert shift.engineer == "petr"
    assert (
        shift.reason
        == "daily rotation 'primary': day of 2026-10-24 09:00 Europe/Prague, Petr Svoboda"
    )
    assert shift.shift_start == at("2026-10-24T07:00Z")
    assert shift.shift_end == at("2026-10-25T08:00Z")  # a 25-hour day
    assert who(oncall, "2026-10-25T09:00+01:00").engineer == "jan"
    handover = next_handover(*parts(oncall), at("2026-10-25T08:00+01:00"), NAMES)
    assert handover is not None
    assert handover.at == at("2026-10-25T08:00Z")
    assert (handover.outgoing.engineer, handover.incoming.engineer) == ("petr", "jan")


# overrides ---------------------------------------------------------------------


def with_overrides(*overrides: dict[str, Any]) -> OncallConfig:
    return load({**WEEKLY, "overrides": list(overrides)})


SICK = {"engineer": "petr", "start": "2026-11-24 00:00", "end": "2026-11-26 00:00",
        "reason": "sick day"}  # fmt: skip


def test_sick_day_override_beats_the_rotation() -> None:
    oncall = with_overrides(SICK)
    covered = who(oncall, "2026-11-25T12:00+01:00")
    assert covered.engineer == "petr"
    assert covered.reason == (
        "weekly rotation 'primary': week of 2026-11-23 08:00 Europe/Prague, Eva Dvořáková "
        "(override: sick day, Petr Svoboda covers until 2026-11-26 00:00)"
    )
    assert (covered.shift_start, covered.shift_end) == (
        at("2026-11-24T00:00+01:00"),
        at("2026-11-26T00:00+01:00"),
    )
    # Eva's week is cut by the override on both sides.
    first = who(oncall, "2026-11-23T12:00+01:00")
    assert first.engineer == "eva"
    assert (first.shift_start, first.shift_end) == (
        at("2026-11-23T08:00+01:00"),
        at("2026-11-24T00:00+01:00"),
    )
    rest = who(oncall, "2026-11-27T12:00+01:00")
    assert (rest.engineer, rest.shift_start, rest.shift_end) == (
        "eva",
        at("2026-11-26T00:00+01:00"),
        at("2026-11-30T08:00+01:00"),
    )
    handover = next_handover(*parts(oncall), at("2026-11-23T12:00+01:00"), NAMES)
    assert handover is not None
    assert (handover.at, handover.incoming.engineer) == (at("2026-11-24T00:00+01:00"), "petr")


def test_swap_spanning_a_handoff() -> None:
    # Jan takes Sunday evening to Monday evening, across eva -> jan's handoff.
    swap = {"engineer": "petr", "start": "2026-11-29 20:00", "end": "2026-11-30T20:00+01:00",
            "reason": "swap with Jan"}  # fmt: skip
    oncall = with_overrides(swap)
    before = who(oncall, "2026-11-29T21:00+01:00")
    after = who(oncall, "2026-11-30T10:00+01:00")
    assert before.engineer == after.engineer == "petr"
    assert before.reason.startswith("weekly rotation 'primary': week of 2026-11-23 08:00")
    assert after.reason == (
        "weekly rotation 'primary': week of 2026-11-30 08:00 Europe/Prague, Jan Novák "
        "(override: swap with Jan, Petr Svoboda covers until 2026-11-30 20:00)"
    )
    # From Eva's Sunday to Petr, then from Petr straight to Jan at the override's end.
    first = next_handover(*parts(oncall), at("2026-11-29T12:00+01:00"), NAMES)
    assert first is not None and first.at == at("2026-11-29T20:00+01:00")
    second = next_handover(*parts(oncall), first.at, NAMES)
    assert second is not None
    assert (second.at, second.incoming.engineer) == (at("2026-11-30T20:00+01:00"), "jan")
    assert second.incoming.shift_end == at("2026-12-07T08:00+01:00")


def test_override_before_the_rotation_starts() -> None:
    early = {"engineer": "eva", "start": "2026-03-01 08:00", "end": "2026-03-02 08:00"}
    oncall = with_overrides(early)
    shift = who(oncall, "2026-03-01T12:00+01:00")
    assert shift.engineer == "eva"
    assert shift.reason == (
        "no rotation shift (override: override, Eva Dvořáková covers until 2026-03-02 08:00)"
    )


# two layers ----------------------------------------------------------------------


def test_two_layers_are_two_lines_of_cover() -> None:
    secondary = {**WEEKLY, "name": "secondary", "engineers": ["petr", "eva", "jan"]}
    oncall = load({**WEEKLY, "overrides": [SICK]}, secondary)
    t = "2026-11-25T12:00+01:00"
    assert who(oncall, t, "primary").engineer == "petr"  # the sick-day override
    second = who(oncall, t, "secondary")
    assert second.engineer == "jan"  # week 38: 38 % 3 = 2
    assert second.reason.startswith("weekly rotation 'secondary': week of 2026-11-23 08:00")


def test_one_engineer_rotation_has_no_handover() -> None:
    oncall = load({**WEEKLY, "engineers": ["jan"]})
    assert next_handover(*parts(oncall), at("2026-11-25T12:00Z")) is None


# config problems, each located -------------------------------------------------------


def problems(*layers: dict[str, Any], timezone: str = "Europe/Prague") -> list[str]:
    section = oncall_section(*layers)
    section["schedules"][0]["timezone"] = timezone
    with pytest.raises(ConfigErrors) as err:
        config_from_dict({"oncall": section})
    return [str(e) for e in err.value.errors]


def test_unknown_engineer() -> None:
    assert problems({**WEEKLY, "engineers": ["jan", "karel"]}) == [
        "<dict>: oncall.schedules[0].layers[0].engineers[1]: unknown engineer 'karel'"
    ]
    override = {**SICK, "engineer": "karel"}
    assert problems({**WEEKLY, "overrides": [override]}) == [
        "<dict>: oncall.schedules[0].layers[0].overrides[0].engineer: unknown engineer 'karel'"
    ]


def test_overlapping_overrides_in_one_layer() -> None:
    swap = {"engineer": "jan", "start": "2026-11-25 12:00", "end": "2026-11-27 08:00"}
    assert problems({**WEEKLY, "overrides": [SICK, swap]}) == [
        "<dict>: oncall.schedules[0].layers[0].overrides[1]: overlaps overrides[0] "
        "(2026-11-24 00:00 to 2026-11-26 00:00) in layer 'primary'"
    ]
    # Touching is not overlapping, and other layers are independent.
    touching = {**swap, "start": "2026-11-26 00:00"}
    load({**WEEKLY, "overrides": [SICK, touching]})
    load({**WEEKLY, "overrides": [SICK]}, {**WEEKLY, "name": "secondary", "overrides": [swap]})


def test_invalid_time_zone() -> None:
    assert problems(WEEKLY, timezone="Europe/Prag") == [
        "<dict>: oncall.schedules[0].timezone: unknown time zone 'Europe/Prag'"
    ]


def test_rotation_with_no_engineers() -> None:
    assert problems({**WEEKLY, "engineers": []}) == [
        "<dict>: oncall.schedules[0].layers[0].engineers: rotation 'primary' has no engineers"
    ]


def test_schedule_with_no_layers() -> None:
    assert problems() == ["<dict>: oncall.schedules[0].layers: schedule 'support' has no layers"]


def test_weekly_start_must_be_a_handoff_day() -> None:
    assert problems({**WEEKLY, "start": "2026-03-03"}) == [
        "<dict>: oncall.schedules[0].layers[0].start: 2026-03-03 is a tue, not the handoff day mon"
    ]


def test_daily_rotation_with_a_handoff_day() -> None:
    assert problems({**WEEKLY, "every": "daily"}) == [
        "<dict>: oncall.schedules[0].layers[0]: handoff_day applies to weekly rotations only"
    ]


def test_override_that_ends_before_it_starts() -> None:
    backwards = {**SICK, "end": "2026-11-23 00:00"}
    assert problems({**WEEKLY, "overrides": [backwards]}) == [
        "<dict>: oncall.schedules[0].layers[0].overrides[0]: an override must end after it starts"
    ]


def test_phone_must_be_e164() -> None:
    section = oncall_section(WEEKLY)
    section["engineers"] = [{"name": "jan", "phones": ["777 123 456"]}]
    with pytest.raises(ConfigErrors) as err:
        config_from_dict({"oncall": section})
    assert [str(e) for e in err.value.errors] == [
        "<dict>: oncall.engineers[0].phones: "
        "phone number '777 123 456' is not in E.164 form (+420…)"
    ]


def test_gaps_cannot_be_expressed() -> None:
    # Consecutive shifts tile a layer from its start: every instant after the
    # first handoff has exactly one engineer, whatever the DST changes.
    oncall = load(WEEKLY)
    schedule, layer = parts(oncall)
    t = at("2026-03-02T08:00+01:00")
    for _ in range(60):
        shift = who_is_on_call(schedule, layer, t)
        assert shift is not None and shift.shift_start <= t < shift.shift_end
        t = shift.shift_end


# the API and the command -----------------------------------------------------------


YAML = """\
daemon: {listen: "127.0.0.1:PORT", state_dir: STATE}
oncall:
  engineers:
    - {name: jan, display_name: Jan Novák, phones: ["+420 777 123 456"],
       email: jan@example.cz, telegram_chat_id: 1001, channels: [telegram, sms, call]}
    - {name: petr, display_name: Petr Svoboda, phones: ["+420777222333"]}
    - {name: eva, display_name: Eva Dvořáková, phones: ["+420777444555"]}
  fallback: {name: desk, display_name: Service desk, phones: ["+420222111000"]}
  schedules:
    - name: support
      timezone: Europe/Prague
      layers:
        - name: primary
          every: weekly
          handoff_day: mon
          handoff_time: "08:00"
          start: 2026-03-02
          engineers: [jan, petr, eva]
          overrides:
            - {engineer: petr, start: "2026-11-24 00:00", end: "2026-11-26 00:00",
               reason: sick day}
        - {name: secondary, every: daily, handoff_time: "09:00", start: 2026-12-01,
           engineers: [petr, jan]}
"""


async def test_api_and_oncall_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listen = f"127.0.0.1:{free_port()}"
    path = tmp_path / "monitord.yaml"
    path.write_text(
        YAML.replace("127.0.0.1:PORT", listen).replace("STATE", json.dumps(str(tmp_path))),
        encoding="utf-8",
    )
    from monitord.config import load_config

    app = App(load_config(path))
    await app.start()
    runner = await serve(app, listen)
    url = f"http://{listen}"
    try:
        async with aiohttp.ClientSession() as http:

            async def get(query: str) -> tuple[int, Any]:
                async with http.get(f"{url}/api/v1/oncall{query}") as resp:
                    return resp.status, await resp.json(content_type=None)

            status, body = await get("?at=2026-11-25T12:00%2B01:00")
            assert status == 200
            assert body["at"] == "2026-11-25T11:00:00+00:00"
            primary, secondary = body["oncall"]
            assert primary == {
                "schedule": "support",
                "layer": "primary",
                "engineer": "petr",
                "name": "Petr Svoboda",
                "phones": ["+420777222333"],
                "email": None,
                "telegram_chat_id": None,
                "channels": [],
                "fallback": False,
                "reason": "weekly rotation 'primary': week of 2026-11-23 08:00 Europe/Prague, "
                "Eva Dvořáková (override: sick day, Petr Svoboda covers until 2026-11-26 00:00)",
                "shift_start": "2026-11-23T23:00:00+00:00",
                "shift_end": "2026-11-25T23:00:00+00:00",
                "next_handover": {
                    "at": "2026-11-25T23:00:00+00:00",
                    "engineer": "eva",
                    "name": "Eva Dvořáková",
                },
            }
            # The secondary rotation starts in December: the fallback answers.
            assert secondary["fallback"] is True and secondary["name"] == "Service desk"
            assert secondary["reason"] == (
                "nobody on call in daily rotation 'secondary' "
                "(it starts 2026-12-01 09:00 Europe/Prague); fallback contact"
            )
            # An unencoded '+' arrives as a space and is still understood.
            status, body = await get("?at=2026-11-25T12:00+01:00&schedule=support")
            assert status == 200 and body["at"] == "2026-11-25T11:00:00+00:00"
            status, body = await get("")  # now, from the daemon's clock
            assert status == 200 and len(body["oncall"]) == 2
            status, body = await get("?at=2026-11-25T12:00")
            assert status == 400
            assert body["error"] == (
                "at must be an ISO time with an offset, like 2026-11-23T08:00+01:00 "
                "or 2026-11-23T07:00Z, got '2026-11-25T12:00'"
            )
            status, body = await get("?schedule=nope")
            assert (status, body["error"]) == (404, "no schedule 'nope'")

            argv = ["oncall", "--url", url, "--at", "2026-11-25T12:00+01:00"]
            assert await asyncio.to_thread(main, argv) == 0
            online = capsys.readouterr().out
            assert online.splitlines()[:4] == [
                "on call at 2026-11-25T11:00:00+00:00",
                "  support/primary: Petr Svoboda (+420777222333) until 2026-11-25T23:00:00+00:00",
                "    weekly rotation 'primary': week of 2026-11-23 08:00 Europe/Prague, "
                "Eva Dvořáková (override: sick day, Petr Svoboda covers until 2026-11-26 00:00)",
                "    next handover 2026-11-25T23:00:00+00:00 to Eva Dvořáková",
            ]
            assert "  support/secondary: Service desk (+420222111000) [fallback]" in online
            # Offline from the file: the same answer.
            offline = ["oncall", "--config", str(path), "--at", "2026-11-25T12:00+01:00"]
            assert await asyncio.to_thread(main, offline) == 0
            assert capsys.readouterr().out == online
            json_argv = [*argv, "--schedule", "support", "--json"]
            assert await asyncio.to_thread(main, json_argv) == 0
            assert json.loads(capsys.readouterr().out)["oncall"][0]["engineer"] == "petr"
            assert await asyncio.to_thread(main, [*argv, "--schedule", "nope"]) == 1
            assert "404: no schedule 'nope'" in capsys.readouterr().err
    finally:
        await runner.cleanup()
        await app.stop()


def test_oncall_command_without_daemon(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["oncall", "--url", url]) == 1
    assert f"monitord is not answering at {url}" in capsys.readouterr().err
    assert main(["oncall", "--url", url, "--at", "tomorrow"]) == 2
    assert "at must be an ISO time with an offset" in capsys.readouterr().err


# overrides made at runtime (stored) ----------------------------------------------


def test_stored_override_across_the_autumn_dst_change(tmp_path: Path) -> None:
    from alerts.paging import overrides
    from monitord.storage.db import open_database

    oncall = load(WEEKLY)
    engine = open_database(f"sqlite:///{tmp_path}/o.db")
    try:
        with engine.begin() as conn:
            made = overrides.add(
                conn,
                oncall,
                {
                    "schedule": "support",
                    "layer": "primary",
                    "engineer": "eva",
                    "start": "2026-10-24T22:00",  # local: CEST
                    "end": "2026-10-25T08:00",  # local: CET, an 11-hour night
                    "reason": "swap",
                    "by": "petr",
                },
                at("2026-10-20T12:00+02:00"),
            )
            assert made.end - made.start == 11 * 3600
            current = overrides.effective(
                oncall, overrides.stored(conn, at("2026-10-24T12:00+02:00"))
            )
    finally:
        engine.dispose()
    # 02:30 happens twice that night; both are inside the override
    for t in ("2026-10-25T02:30+02:00", "2026-10-25T02:30+01:00"):
        now = who(current, t)
        assert now.engineer == "eva"
        assert "(override: swap, set by petr, Eva Dvořáková covers until 2026-10-25 08:00)" in (
            now.reason
        )
    schedule, layer = parts(current)
    handover = next_handover(schedule, layer, at("2026-10-25T02:30+01:00"), NAMES)
    assert handover is not None
    assert handover.at == at("2026-10-25T08:00+01:00")  # back to the rotation at 07:00 UTC
    assert handover.incoming.engineer == who(oncall, "2026-10-25T09:00+01:00").engineer
