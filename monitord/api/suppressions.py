"""Silences and maintenance windows: `GET|POST /api/v1/silences`,
`DELETE /api/v1/silences/{id}`, and the same under `/api/v1/maintenance`.

GET lists the config's entries and the API-made ones in force or to come
(`?state=all`: also those that ended or ran out), each with its source and
who set it. POST takes the config's model as JSON (an author is required; a
silence also needs an expiry) and answers 201, or 422 with every located
problem. DELETE expires a silence / deletes a window now (`?by=NAME` records
who); a config entry answers 409: it lives in the file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from monitord.api.views import iso
from monitord.config.model import BusinessWindow, Silence
from monitord.errors import StorageError
from monitord.suppressions import Entry, Kind, Refused, SuppressionBook, parse_silence, parse_window

log = logging.getLogger(__name__)

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def routes(get_app: Callable[[web.Request], Any]) -> list[web.RouteDef]:
    """The routes of both kinds; `get_app` finds the daemon's `App` for a request."""

    def of(kind: Kind, path: str) -> list[web.RouteDef]:
        async def listing(request: web.Request) -> web.Response:
            return await list_entries(get_app(request), kind, request.query.get("state", ""))

        async def create(request: web.Request) -> web.Response:
            return await add_entry(get_app(request), kind, request)

        async def end(request: web.Request) -> web.Response:
            by = request.query.get("by") or None
            return await end_entry(get_app(request), kind, request.match_info["id"], by)

        return [web.get(path, listing), web.post(path, create), web.delete(path + "/{id}", end)]

    return [*of("silence", "/api/v1/silences"), *of("maintenance", "/api/v1/maintenance")]


def _key(kind: Kind) -> str:
    return "silences" if kind == "silence" else "maintenance"


async def list_entries(app: Any, kind: Kind, state: str) -> web.Response:
    if state not in ("", "active", "all"):
        raise web.HTTPBadRequest(text=f"state must be active or all, got {state!r}")
    book: SuppressionBook = app.suppressions
    try:
        entries = await book.history(kind) if state == "all" else book.entries(kind)
    except StorageError as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from exc
    now = app.clock.time()
    return web.json_response({_key(kind): [view(book, e, now) for e in entries]})


async def add_entry(app: Any, kind: Kind, request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"body must be a JSON object: {exc}") from exc
    book: SuppressionBook = app.suppressions
    now = app.clock.time()
    parse = parse_silence if kind == "silence" else parse_window
    try:
        spec = parse(body, now=now, config=app.loaded.config, devices=app.inventory.devices)
        entry = await book.add(spec)
    except Refused as exc:
        return _refusal(exc)
    except StorageError as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from exc
    return web.json_response(view(book, entry, now), status=201)


async def end_entry(app: Any, kind: Kind, ident: str, by: str | None) -> web.Response:
    if by is not None and len(by) > 100:
        raise web.HTTPUnprocessableEntity(text="'by' is at most 100 characters")
    book: SuppressionBook = app.suppressions
    try:
        entry = await book.end(kind, ident, by)
    except Refused as exc:
        return _refusal(exc)
    except StorageError as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from exc
    await app.suppressions_changed()  # what it held is notified now, if still open
    return web.json_response(view(book, entry, app.clock.time()))


def _refusal(exc: Refused) -> web.Response:
    body: dict[str, Any] = {"error": exc.message}
    if exc.errors is not None:
        body["errors"] = exc.errors
    return web.json_response(body, status=exc.status)


def view(book: SuppressionBook, entry: Entry, now: float) -> dict[str, Any]:
    """One entry as JSON: the model's fields plus id, source, who and whether it mutes now."""
    active, until = book.state(entry, now) if entry.ended_at is None else (False, None)
    out: dict[str, Any] = {
        "id": entry.id,
        "source": entry.source,
        "active": active,
        "active_until": iso(until) if active else None,
        "created_by": entry.created_by,
        "created_at": iso(entry.created_at),
        "expires_at": iso(entry.expires_at),
        "ended_at": iso(entry.ended_at),
        "ended_by": entry.ended_by,
    }
    spec = entry.spec
    data = spec.model_dump(mode="json", exclude={"id"} if isinstance(spec, Silence) else None)
    if isinstance(spec, Silence):
        data["matchers"] = [str(m) for m in spec.matchers]
        data["start"] = _time(spec.start)
        data["expiry"] = _time(spec.expiry)
    else:
        data["weekly"] = [weekly_text(w) for w in spec.weekly]
    return out | data


def weekly_text(window: BusinessWindow) -> str:
    """`tue 20:00-22:00`, `mon-fri 08:00-17:00` (the config's syntax where it can)."""
    days = window.days
    # One run of days, possibly across Sunday (`fri-mon`), has exactly one first day.
    firsts = [d for d in range(7) if d in days and (d - 1) % 7 not in days]
    if len(days) == 7:
        names = "mon-sun"
    elif len(firsts) == 1 and len(days) > 1:
        names = f"{_DAYS[firsts[0]]}-{_DAYS[(firsts[0] + len(days) - 1) % 7]}"
    else:
        names = ",".join(_DAYS[d] for d in sorted(days))
    return f"{names} {window.start:%H:%M}-{window.end:%H:%M}"


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="seconds")
