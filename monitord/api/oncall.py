"""`GET /api/v1/oncall[?at=ISO][&schedule=NAME]`: who is on call, per schedule and layer.

Answers from the running daemon's loaded config, plus the overrides stored
through the API or the CLI, at `at` (default: now, from
the daemon's clock). `at` needs an offset (`2026-11-23T08:00+01:00` or `…Z`);
400 when it is missing or bad, 404 for an unknown schedule. `oncall_view` is
also what `monitord oncall --config FILE` prints offline.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from alerts.oncall import next_handover, who_is_on_call
from monitord.config.oncall import Engineer, OncallConfig

# A '+' of an offset arrives as a space when the caller did not URL-encode it.
_SPACED_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def parse_at(text: str) -> float:
    """An ISO 8601 instant with an offset → UTC epoch seconds (ValueError otherwise)."""
    try:
        value = datetime.fromisoformat(_SPACED_OFFSET.sub(r"\1+\2", text.strip()))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ValueError(
            f"at must be an ISO time with an offset, like 2026-11-23T08:00+01:00 "
            f"or 2026-11-23T07:00Z, got {text!r}"
        )
    return value.timestamp()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _person(engineer: Engineer | None, name: str | None) -> dict[str, Any]:
    return {
        "engineer": name,
        "name": engineer.label if engineer else name,
        "phones": list(engineer.phones) if engineer else [],
        "email": engineer.email if engineer else None,
        "telegram_chat_id": engineer.telegram_chat_id if engineer else None,
        "channels": list(engineer.channels) if engineer else [],
    }


def oncall_view(oncall: OncallConfig, t: float, schedule: str | None = None) -> dict[str, Any]:
    """Who is on call at `t` in every layer (of `schedule`, or of all schedules).

    Raises LookupError for an unknown `schedule`. A layer with nobody on call
    (before its rotation starts) answers with the fallback contact.
    """
    schedules = oncall.schedules
    if schedule is not None:
        found = oncall.schedule(schedule)
        if found is None:
            raise LookupError(f"no schedule {schedule!r}")
        schedules = (found,)
    names = {e.name: e.label for e in oncall.engineers}
    entries: list[dict[str, Any]] = []
    for sched in schedules:
        for layer in sched.layers:
            entry: dict[str, Any] = {"schedule": sched.name, "layer": layer.name}
            now = who_is_on_call(sched, layer, t, names)
            if now is None:
                fallback = oncall.fallback
                entry |= _person(fallback, fallback.name if fallback else None)
                entry |= {
                    "fallback": True,
                    "reason": f"nobody on call in {layer.every} rotation {layer.name!r} "
                    f"(it starts {layer.start} {layer.handoff_time:%H:%M} {sched.timezone}); "
                    + ("fallback contact" if fallback else "no fallback contact configured"),
                    "shift_start": None,
                    "shift_end": None,
                    "next_handover": None,
                }
                entries.append(entry)
                continue
            handover = next_handover(sched, layer, t, names)
            entry |= _person(oncall.engineer(now.engineer), now.engineer)
            entry |= {
                "fallback": False,
                "reason": now.reason,
                "shift_start": iso(now.shift_start),
                "shift_end": iso(now.shift_end),
                "next_handover": None
                if handover is None
                else {
                    "at": iso(handover.at),
                    "engineer": handover.incoming.engineer,
                    "name": names.get(handover.incoming.engineer, handover.incoming.engineer),
                },
            }
            entries.append(entry)
    return {"at": iso(t), "oncall": entries}


def routes(get_app: Callable[[web.Request], Any]) -> list[web.RouteDef]:
    async def oncall(request: web.Request) -> web.Response:
        app = get_app(request)
        raw = request.query.get("at")
        try:
            t = parse_at(raw) if raw else app.clock.time()
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        # the config's schedules with the overrides made through the API or the CLI
        current = await asyncio.to_thread(app.paging.current_oncall)
        try:
            body = oncall_view(current, t, request.query.get("schedule") or None)
        except LookupError as exc:
            raise web.HTTPNotFound(text=str(exc.args[0])) from exc
        return web.json_response(body)

    return [web.get("/api/v1/oncall", oncall)]
