"""aiohttp routes. Handlers are thin: parse the request, call a view, render JSON.

Blocking store reads run in worker threads so a slow query never stalls the
check loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitord.api import heartbeat, oncall, paging, rmm, suppressions, tickets, views
from monitord.config import ConfigErrors
from monitord.sources.ingest import IngestEndpoint

log = logging.getLogger(__name__)

APP_KEY: web.AppKey[Any] = web.AppKey("monitord_app")


def _app(request: web.Request) -> Any:
    return request.app[APP_KEY]


async def metrics(request: web.Request) -> web.Response:
    body = await asyncio.to_thread(generate_latest, _app(request).registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    ok = _app(request).healthy()
    return web.json_response({"status": "ok" if ok else "unhealthy"}, status=200 if ok else 503)


async def status(request: web.Request) -> web.Response:
    app = _app(request)
    states = app.pipeline.states if app.pipeline else {}
    counts = {"ok": 0, "warning": 0, "critical": 0, "unknown": 0, "pending": 0}
    for spec in app.inventory.checks:
        st = states.get(spec.id)
        counts[st.status.label if st else "pending"] += 1
    open_incidents = await asyncio.to_thread(views.list_incidents, app.engine, "open")
    return web.json_response(
        {
            "devices": len(app.inventory.devices),
            "checks": len(app.inventory.checks),
            "by_status": counts,
            "open_incidents": len(open_incidents),
            "config_hash": app.loaded.digest,
        }
    )


async def problems(request: web.Request) -> web.Response:
    app = _app(request)
    pipeline = app.pipeline
    data = views.problems(app.inventory, pipeline.states, pipeline.outputs) if pipeline else []
    return web.json_response({"problems": data})


async def incidents(request: web.Request) -> web.Response:
    state = request.query.get("state", "open")
    if state not in ("open", "acknowledged", "resolved", "all"):
        raise web.HTTPBadRequest(
            text=f"state must be open, acknowledged, resolved or all, got {state!r}"
        )
    data = await asyncio.to_thread(views.list_incidents, _app(request).engine, state)
    return web.json_response({"incidents": data})


def _int_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise web.HTTPBadRequest(text=f"id must be a number, got {raw!r}")
    return int(raw)


async def incident(request: web.Request) -> web.Response:
    data = await asyncio.to_thread(views.get_incident, _app(request).engine, _int_id(request))
    if data is None:
        raise web.HTTPNotFound(text="no such incident")
    return web.json_response(data)


async def acknowledge(request: web.Request) -> web.Response:
    """`POST /api/v1/incidents/{id}/ack` with `{"by": "jan"}`: stops escalation later."""
    incident_id = _int_id(request)
    try:
        body = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f'body must be JSON like {{"by": "jan"}}: {exc}') from exc
    who = body.get("by") if isinstance(body, dict) else None
    if not isinstance(who, str) or not 0 < len(who) <= 100:
        raise web.HTTPUnprocessableEntity(text="'by' must name who acknowledges (1-100 chars)")
    via = body.get("via", "api")
    if via not in ("api", "cli"):
        raise web.HTTPUnprocessableEntity(text="'via' must be api or cli")
    app = _app(request)
    if app.correlator is None:
        raise web.HTTPServiceUnavailable(text="the daemon is starting")
    done = await app.paging.acknowledge((incident_id,), who, via)  # stops its escalation
    if not done:
        raise web.HTTPNotFound(text=f"no open incident #{incident_id}")
    inc = done[0]
    return web.json_response({"id": inc.id, "state": inc.state, "acked_by": inc.acked_by})


async def pages(request: web.Request) -> web.Response:
    data = await asyncio.to_thread(views.list_pages, _app(request).engine)
    return web.json_response({"pages": data})


async def reload(request: web.Request) -> web.Response:
    try:
        await _app(request).reload()
    except ConfigErrors as exc:
        return web.json_response(
            {"status": "rejected", "errors": [str(e) for e in exc.errors]}, status=400
        )
    return web.json_response({"status": "reloaded"})


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Errors as JSON `{"error": "..."}` with the same status, for API clients."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": exc.text or exc.reason}, status=exc.status)


def build(app: Any) -> web.Application:
    web_app = web.Application(client_max_size=1 << 20, middlewares=[json_errors])
    web_app[APP_KEY] = app
    web_app.add_routes(
        [
            web.get("/metrics", metrics),
            web.get("/healthz", healthz),
            web.get("/api/v1/status", status),
            web.get("/api/v1/problems", problems),
            web.get("/api/v1/incidents", incidents),
            web.get("/api/v1/incidents/{id}", incident),
            web.post("/api/v1/incidents/{id}/ack", acknowledge),
            web.get("/api/v1/pages", pages),
            web.post("/-/reload", reload),
            web.post("/api/v1/events", IngestEndpoint(app).handle),  # registers its metrics
            *heartbeat.routes(_app),
            *suppressions.routes(_app),
            *oncall.routes(_app),
            *paging.routes(_app),
            *rmm.routes(_app),
            *tickets.routes(_app),
        ]
    )
    return web_app


async def serve(app: Any, listen: str) -> web.AppRunner:
    """Start the server on `host:port`; returns the runner to clean up with."""
    host, _, port = listen.rpartition(":")
    runner = web.AppRunner(build(app), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host.strip("[]"), int(port))
    await site.start()
    return runner
