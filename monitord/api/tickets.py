"""Tickets over HTTP (`alerts.tickets.desk` does the work; blocking calls run in threads).

| method | path | what |
| --- | --- | --- |
| GET  | /api/v1/tickets?status=&customer=&incident= | built-in tickets, newest first |
| GET  | /api/v1/tickets/{id} | one, with history, work log, its incidents' other tickets |
| POST | /api/v1/tickets/{id}/assign | `{"assignee": "jan" or null, "by": "petr"}` |
| POST | /api/v1/tickets/{id}/comments | `{"text": "...", "by": "jan"}` |
| POST | /api/v1/tickets/{id}/worklog | `{"minutes": 30, "note": "...", "by": "jan"}` |
| POST | /api/v1/tickets/{id}/status | `{"status": "resolved", "resolution": "...", "by": "jan"}` |
| GET  | /api/v1/incidents/{id}/tickets | an incident's tickets everywhere and their operations |
| POST | /api/v1/incidents/{id}/tickets | link to a ticket `{"system", "ticket", "by"}` |
| GET  | /api/v1/ticket-operations?state=parked&system= | operations not delivered |
| POST | /api/v1/ticket-operations/retry | `{"by", "system"?, "incident"?, "id"?}` |
| GET  | /api/v1/ticket-systems | each external system: ok, failing or blocked, and why |

Refusals are JSON `{"error": ...}` with 400 (not JSON), 404 (no such thing) or
422 (a field is wrong, named in the message).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from alerts.tickets import desk
from alerts.tickets.builtin import SYSTEM
from monitord.api.bodies import json_object

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def routes(get_app: Callable[[web.Request], Any]) -> list[web.RouteDef]:
    def handler(fn: Callable[[Any, web.Request], Awaitable[Any]], status: int = 200) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            app = get_app(request)
            if app.engine is None:
                raise web.HTTPServiceUnavailable(text="the daemon is starting")
            try:
                data = await fn(app, request)
            except desk.Refused as exc:
                return web.json_response({"error": str(exc)}, status=exc.status)
            return web.json_response(data, status=status)

        return handle

    return [
        web.get("/api/v1/tickets", handler(list_tickets)),
        web.get("/api/v1/tickets/{id}", handler(show_ticket)),
        web.post("/api/v1/tickets/{id}/assign", handler(assign)),
        web.post("/api/v1/tickets/{id}/comments", handler(comment)),
        web.post("/api/v1/tickets/{id}/worklog", handler(log_work)),
        web.post("/api/v1/tickets/{id}/status", handler(set_status)),
        web.get("/api/v1/incidents/{id}/tickets", handler(incident_tickets)),
        web.post("/api/v1/incidents/{id}/tickets", handler(link, 201)),
        web.get("/api/v1/ticket-operations", handler(operations)),
        web.post("/api/v1/ticket-operations/retry", handler(retry)),
        web.get("/api/v1/ticket-systems", handler(systems)),
    ]


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise web.HTTPBadRequest(text=f"id must be a number, got {raw!r}")
    return int(raw)


def _optional_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise desk.Refused(422, f"{name!r} must be a number")


async def list_tickets(app: Any, request: web.Request) -> Any:
    q = request.query
    status = q.get("status") or None
    if status not in (None, "active", *desk.STATUSES):
        raise desk.Refused(422, f"status must be active, {', '.join(desk.STATUSES)}")
    incident = _optional_int(q.get("incident"), "incident")
    rows = await asyncio.to_thread(
        desk.list_tickets,
        app.engine,
        status=status,
        customer=q.get("customer") or None,
        incident=incident,
    )
    return {"tickets": rows}


async def show_ticket(app: Any, request: web.Request) -> Any:
    ticket = await asyncio.to_thread(desk.get_ticket, app.engine, _id(request))
    if ticket is None:
        raise desk.Refused(404, f"no ticket #{request.match_info['id']}")
    return ticket


async def assign(app: Any, request: web.Request) -> Any:
    body = await json_object(request)
    return await asyncio.to_thread(
        desk.assign,
        app.engine,
        _id(request),
        body.get("assignee"),
        body.get("by"),
        app.clock.time(),
    )


async def comment(app: Any, request: web.Request) -> Any:
    body = await json_object(request)
    return await asyncio.to_thread(
        desk.comment, app.engine, _id(request), body.get("text"), body.get("by"), app.clock.time()
    )


async def log_work(app: Any, request: web.Request) -> Any:
    body = await json_object(request)
    return await asyncio.to_thread(
        desk.log_work,
        app.engine,
        _id(request),
        body.get("minutes"),
        body.get("note"),
        body.get("by"),
        app.clock.time(),
    )


async def set_status(app: Any, request: web.Request) -> Any:
    body = await json_object(request)
    return await asyncio.to_thread(
        desk.set_status,
        app.engine,
        _id(request),
        body.get("status"),
        body.get("resolution"),
        body.get("by"),
        app.clock.time(),
    )


async def incident_tickets(app: Any, request: web.Request) -> Any:
    data = await asyncio.to_thread(desk.incident_tickets, app.engine, _id(request))
    if data is None:
        raise desk.Refused(404, f"no incident #{request.match_info['id']}")
    return data


async def link(app: Any, request: web.Request) -> Any:
    body = await json_object(request)
    config = app.loaded.config
    known = {SYSTEM, *app.ticket_systems}
    data = await asyncio.to_thread(
        lambda: desk.link(
            app.engine,
            _id(request),
            body.get("system", SYSTEM),
            body.get("ticket"),
            body.get("by"),
            app.clock.time(),
            policy=config.alerting.ticket_policy,
            known=known,
            public_url=config.daemon.public_url,
        )
    )
    _wake(app)
    return data


async def operations(app: Any, request: web.Request) -> Any:
    state = request.query.get("state", "parked")
    if state not in ("parked", "pending", "waiting"):
        raise desk.Refused(422, "state must be parked, pending or waiting")
    system = request.query.get("system") or None
    return {"operations": await asyncio.to_thread(desk.operations, app.engine, state, system)}


async def retry(app: Any, request: web.Request) -> Any:
    body = await json_object(request)
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        raise desk.Refused(422, "'system' must be a ticket system's name")
    data = await asyncio.to_thread(
        lambda: desk.retry(
            app.engine,
            app.clock.time(),
            body.get("by"),
            system=system or None,
            incident=_optional_int(body.get("incident"), "incident"),
            ident=_optional_int(body.get("id"), "id"),
        )
    )
    _wake(app)
    return data


async def systems(app: Any, request: web.Request) -> Any:
    names = [s.name for s in app.loaded.config.alerting.ticket_systems]
    return {"systems": await asyncio.to_thread(desk.systems, app.engine, names)}


def _wake(app: Any) -> None:
    if app.dispatcher is not None:
        app.dispatcher.wake.set()
