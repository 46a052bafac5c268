"""The RMM feed's API (monitord.rmm).

    GET  /api/v1/rmm/feeds                  health of each source's feed
    GET  /api/v1/rmm/observations           ?state=open|all &verdict= &customer= &device=
    GET  /api/v1/rmm/observations/{id}      one, with its verdict history
    GET  /api/v1/rmm/devices                the mapping ?source= &state=active|unmapped|…
    GET  /api/v1/rmm/conflicts              sync conflicts ?state=open|all
    GET  /api/v1/rmm/logons                 who is logged on where ?user= &device= &all=1
    POST /api/v1/rmm/{source}/sync          sync that source's inventory now
    POST /api/v1/rmm/{source}/poll          poll its failures now (not before the
                                            source's min_poll_interval since the last)
    POST /api/v1/rmm/{source}/webhook       Tactical's alert webhook (rmm_webhooks)
    POST /api/v1/rmm/webhook                the generic RMM webhook (rmm_webhooks)

Errors are JSON `{"error": …}` (the server's middleware): 400 for a bad
parameter, 404 for an unknown source or observation, 429 for a poll too soon.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from monitord.api import rmm_webhooks
from monitord.rmm import views
from monitord.rmm.verdicts import VERDICTS


def routes(get_app: Callable[[web.Request], Any]) -> list[web.RouteDef]:
    """The routes; `get_app` finds the daemon's `App` for a request."""

    def bind(
        handler: Callable[[Any, web.Request], Awaitable[web.Response]],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def run(request: web.Request) -> web.Response:
            return await handler(get_app(request), request)

        return run

    return [
        web.get("/api/v1/rmm/feeds", bind(feeds)),
        web.get("/api/v1/rmm/observations", bind(observations)),
        web.get("/api/v1/rmm/observations/{id}", bind(observation)),
        web.get("/api/v1/rmm/devices", bind(devices)),
        web.get("/api/v1/rmm/conflicts", bind(conflicts)),
        web.get("/api/v1/rmm/logons", bind(logons)),
        web.post("/api/v1/rmm/{source}/sync", bind(sync)),
        web.post("/api/v1/rmm/{source}/poll", bind(poll)),
        *rmm_webhooks.routes(get_app),
    ]


async def feeds(app: Any, request: web.Request) -> web.Response:
    data = await asyncio.to_thread(views.feeds, _engine(app), app.clock.time())
    return web.json_response({"feeds": data})


async def observations(app: Any, request: web.Request) -> web.Response:
    q = request.query
    state = q.get("state", "open")
    if state not in ("open", "all"):
        raise web.HTTPBadRequest(text=f"state must be open or all, got {state!r}")
    verdict = q.get("verdict")
    if verdict is not None and verdict not in (*VERDICTS, "pending"):
        raise web.HTTPBadRequest(
            text=f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}"
        )
    data = await asyncio.to_thread(
        views.observations,
        _engine(app),
        state=state,
        verdict=verdict,
        customer=q.get("customer"),
        device=q.get("device"),
    )
    return web.json_response({"observations": data})


async def observation(app: Any, request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise web.HTTPBadRequest(text=f"id must be a number, got {raw!r}")
    data = await asyncio.to_thread(views.observation, _engine(app), int(raw))
    if data is None:
        raise web.HTTPNotFound(text=f"no RMM observation #{raw}")
    return web.json_response(data)


async def devices(app: Any, request: web.Request) -> web.Response:
    q = request.query
    data = await asyncio.to_thread(
        views.devices, _engine(app), source=q.get("source"), state=q.get("state")
    )
    return web.json_response({"devices": data})


async def conflicts(app: Any, request: web.Request) -> web.Response:
    state = request.query.get("state", "open")
    if state not in ("open", "all"):
        raise web.HTTPBadRequest(text=f"state must be open or all, got {state!r}")
    data = await asyncio.to_thread(views.conflicts, _engine(app), state=state)
    return web.json_response({"conflicts": data})


async def logons(app: Any, request: web.Request) -> web.Response:
    q = request.query
    data = await asyncio.to_thread(
        views.logons,
        _engine(app),
        user=q.get("user"),
        device=q.get("device"),
        current=q.get("all") not in ("1", "true"),
    )
    return web.json_response({"logons": data})


async def sync(app: Any, request: web.Request) -> web.Response:
    name = _source(app, request)
    counts = await app.rmm.sync(name)
    if counts is None:
        raise web.HTTPBadGateway(text=f"the inventory of {name} could not be read (see feeds)")
    return web.json_response({"source": name, "counts": counts})


async def poll(app: Any, request: web.Request) -> web.Response:
    name = _source(app, request)
    wait = await app.rmm.poll_wait(name)
    if wait > 0:
        raise web.HTTPTooManyRequests(
            text=f"{name} was polled less than its minimum interval ago; poll again in {wait:.0f} s"
        )
    ok = await app.rmm.poll(name)
    if not ok:
        raise web.HTTPBadGateway(text=f"the failures of {name} could not be read (see feeds)")
    return web.json_response({"source": name, "polled": True})


def _engine(app: Any) -> Any:
    if app.engine is None:
        raise web.HTTPServiceUnavailable(text="the daemon is starting")
    return app.engine


def _source(app: Any, request: web.Request) -> str:
    name = request.match_info["source"]
    if name not in app.rmm.runners:
        known = ", ".join(sorted(app.rmm.runners)) or "none"
        raise web.HTTPNotFound(text=f"no running RMM source {name!r} (running: {known})")
    return name
