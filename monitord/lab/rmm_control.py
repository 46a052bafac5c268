"""The lab control API's RMM routes (`control.build_app` adds them):

    GET    /api/rmm/injections        {"injections": [...]}
    POST   /api/rmm/injections        {"kind": "agent_down"|"false_failure"|"blind_spot",
                                       "device": "<lab device>", "category": "disk-space"}
                                      -> 201 {"id": "r-1", "injection": {...}}
    DELETE /api/rmm/injections/{id}   -> 200 {"healed": {...}}
    GET    /api/rmm/failures          what the RMM reports now (RmmFailure fields)
    GET    /api/rmm/inventory         its clients, sites and devices (RmmInventory fields)

Errors are JSON `{"error": ...}`: 400 for a malformed or invalid request, 404 when
the lab runs without an RMM view or for an unknown device or injection.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from aiohttp import web

from monitord.lab.rmm_view import RmmView

FIELDS = ("kind", "device", "category")


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class RmmRoutes:
    def __init__(self, lab: Any) -> None:
        self.lab = lab  # a Lab; its `rmm` is the view (None: no RMM)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/rmm/injections", self._guard(self.listing)),
            web.post("/api/rmm/injections", self._guard(self.create)),
            web.delete("/api/rmm/injections/{id}", self._guard(self.heal)),
            web.get("/api/rmm/failures", self._guard(self.failures)),
            web.get("/api/rmm/inventory", self._guard(self.inventory)),
        ]

    def _guard(self, handler: Any) -> Any:
        async def run(request: web.Request) -> web.Response:
            try:
                response: web.Response = await handler(request)
                return response
            except _Refused as exc:
                return web.json_response({"error": exc.message}, status=exc.status)

        return run

    def view(self) -> RmmView:
        found = getattr(self.lab, "rmm", None)
        if not isinstance(found, RmmView):
            raise _Refused(404, "this lab runs without an RMM view (Lab(rmm=True))")
        return found

    async def listing(self, request: web.Request) -> web.Response:
        return web.json_response({"injections": [i.to_dict() for i in self.view().injections()]})

    async def create(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _Refused(400, f"malformed json: {exc}") from exc
        if not isinstance(body, dict) or not {"kind", "device"} <= body.keys():
            raise _Refused(400, "expected a json object with 'kind' and 'device'")
        unknown = sorted(set(body) - set(FIELDS))
        if unknown:
            raise _Refused(400, f"unknown field(s): {', '.join(map(repr, unknown))}")
        try:
            made = self.view().inject(
                str(body["kind"]), str(body["device"]), body.get("category"), self.lab.now()
            )
        except LookupError as exc:
            raise _Refused(404, str(exc.args[0])) from exc
        except ValueError as exc:
            raise _Refused(400, str(exc)) from exc
        return web.json_response({"id": made.id, "injection": made.to_dict()}, status=201)

    async def heal(self, request: web.Request) -> web.Response:
        try:
            healed = self.view().heal(request.match_info["id"])
        except LookupError as exc:
            raise _Refused(404, str(exc.args[0])) from exc
        return web.json_response({"healed": healed.to_dict()})

    async def failures(self, request: web.Request) -> web.Response:
        found = self.view().failures(self.lab.faults(), self.lab.now().timestamp())
        return web.json_response(
            {
                "failures": [
                    {**asdict(f), "kind": f.kind.value, "category": f.category.value} for f in found
                ]
            }
        )

    async def inventory(self, request: web.Request) -> web.Response:
        return web.json_response(asdict(self.view().inventory(self.lab.now().timestamp())))
