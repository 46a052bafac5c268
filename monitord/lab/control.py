"""The lab's control API (aiohttp), by default on http://127.0.0.1:9788.

    GET    /api/fleet          the fleet document (Fleet.to_json())
    GET    /api/faults         {"faults": [fault, ...]}, active, oldest first
    POST   /api/faults         {"scope": "device"|"site"|"customer", "name": "...",
                                "fault": "down"|"service_down"|"http_error"|"slow",
                                "delay_ms": 2000}   -> 201 {"id": "f-1", "fault": fault}
    DELETE /api/faults/{id}    heal one fault -> 200 {"healed": fault}
    POST   /api/heal           heal everything -> 200 {"healed": ["f-1", ...]}
    GET    /api/events?since=N {"events": [event, ...]}: inject/heal records with seq > N
    GET    /api/status         device, listener and request counters

`delay_ms` applies to `slow` only (default 2000) and is ignored for the other
kinds. Every error is JSON `{"error": "<message>"}`: 400 for a malformed or
invalid request, 404 for an unknown device, site, customer or fault id.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from monitord.lab.faults import Fault, FaultEvent
from monitord.lab.rmm_control import RmmRoutes
from monitord.lab.servers import LabError

REQUIRED = ("scope", "name", "fault")
OPTIONAL = ("delay_ms",)


class LabControlPlane(Protocol):
    """What the control API needs from the lab (implemented by `Lab`)."""

    def fleet_json(self) -> bytes: ...
    def faults(self) -> tuple[Fault, ...]: ...
    def events(self, since: int = 0) -> tuple[FaultEvent, ...]: ...
    async def inject(
        self, scope: str, name: str, fault: str, *, delay_ms: int | None = None
    ) -> Fault: ...
    async def heal(self, fault_id: str) -> Fault: ...
    async def heal_all(self) -> tuple[Fault, ...]: ...
    async def stats(self) -> dict[str, int]: ...


class RequestError(Exception):
    """A request the API refuses: `status` and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}


def _json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), "number")


def parse_fault_request(body: bytes) -> tuple[str, str, str, Any]:
    """(scope, name, fault, delay_ms) from a POST /api/faults body. Checks the
    JSON shape only (the lab checks the values); raises RequestError(400)."""
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"malformed json: {exc}") from exc
    if not isinstance(raw, dict):
        raise RequestError(400, f"request body must be a json object, got {_json_type(raw)}")
    unknown = [k for k in raw if k not in REQUIRED + OPTIONAL]
    if unknown:
        raise RequestError(400, f"unknown field(s): {', '.join(map(repr, unknown))}")
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise RequestError(400, f"missing field(s): {', '.join(map(repr, missing))}")
    for key in REQUIRED:
        if not isinstance(raw[key], str):
            raise RequestError(400, f"field {key!r} must be a string, got {_json_type(raw[key])}")
    return raw["scope"], raw["name"], raw["fault"], raw.get("delay_ms")


LAB: web.AppKey[LabControlPlane] = web.AppKey("lab")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RequestError as exc:
        return web.json_response({"error": exc.message}, status=exc.status)


async def _fleet(request: web.Request) -> web.Response:
    return web.Response(body=request.app[LAB].fleet_json(), content_type="application/json")


async def _faults(request: web.Request) -> web.Response:
    return web.json_response({"faults": [f.to_dict() for f in request.app[LAB].faults()]})


async def _inject(request: web.Request) -> web.Response:
    scope, name, kind, delay_ms = parse_fault_request(await request.read())
    try:
        fault = await request.app[LAB].inject(scope, name, kind, delay_ms=delay_ms)
    except LookupError as exc:
        raise RequestError(404, str(exc)) from exc
    except ValueError as exc:
        raise RequestError(400, str(exc)) from exc
    return web.json_response(
        {"id": fault.id, "fault": fault.to_dict()},
        status=201,
        headers={"Location": f"/api/faults/{fault.id}"},
    )


async def _heal(request: web.Request) -> web.Response:
    try:
        fault = await request.app[LAB].heal(request.match_info["id"])
    except LookupError as exc:
        raise RequestError(404, str(exc)) from exc
    return web.json_response({"healed": fault.to_dict()})


async def _heal_all(request: web.Request) -> web.Response:
    healed = await request.app[LAB].heal_all()
    return web.json_response({"healed": [f.id for f in healed]})


async def _events(request: web.Request) -> web.Response:
    since = request.query.get("since", "0")
    if not since.isdigit():
        raise RequestError(400, f"since must be a non-negative integer, got {since!r}")
    events = request.app[LAB].events(int(since))
    return web.json_response({"events": [e.to_dict() for e in events]})


async def _status(request: web.Request) -> web.Response:
    lab = request.app[LAB]
    return web.json_response({"stats": await lab.stats(), "faults": len(lab.faults())})


def build_app(lab: LabControlPlane) -> web.Application:
    """The aiohttp application serving the control API for `lab`."""
    app = web.Application(middlewares=[_errors])
    app[LAB] = lab
    app.router.add_get("/api/fleet", _fleet)
    app.router.add_get("/api/faults", _faults)
    app.router.add_post("/api/faults", _inject)
    app.router.add_delete("/api/faults/{id}", _heal)
    app.router.add_post("/api/heal", _heal_all)
    app.router.add_get("/api/events", _events)
    app.router.add_get("/api/status", _status)
    app.add_routes(RmmRoutes(lab).routes())  # /api/rmm/…: the lab's RMM view, if any
    return app


class ControlServer:
    """Runs `build_app(lab)` on host:port (port 0: any free port, see `url`)."""

    def __init__(self, lab: LabControlPlane) -> None:
        self._lab = lab
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, host: str, port: int) -> None:
        """Raises LabError if host:port cannot be bound."""
        runner = web.AppRunner(build_app(self._lab), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise LabError(f"cannot listen on {host}:{port} for the control API: {exc}") from exc
        self._runner = runner
        bound = runner.addresses[0]
        self.url = f"http://{bound[0]}:{bound[1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
