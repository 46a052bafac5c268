"""Zammad, GLPI and webhook-receiver emulators on 127.0.0.1, written from integrations.md.

In-memory state; every request is recorded (method, path, query, headers, JSON body) so
tests can assert exactly what an adapter sent. Failure knobs:

- `outage`: answer the next N requests with 503 (nothing is applied);
- `lose_reply`: apply the next create, then answer 500 as if the reply were lost;
- `delay`: answer every request this many seconds late.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

JSON = web.RequestKey("json", object)
RAW = web.RequestKey("raw", bytes)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


def _json(request: web.Request) -> Any:
    """The request's parsed JSON body (recorded by the middleware)."""
    return request[JSON]


@dataclass
class Emulator:
    """Shared server plumbing: start/stop, request log, outage knob."""

    requests: list[Seen] = field(default_factory=list)
    outage: int = 0
    lose_reply: bool = False
    delay: float = 0.0  # seconds before answering (timeouts)
    url: str = ""
    _runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def outage_body(self) -> Any:
        return {"error": "service unavailable"}

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode()
        self.requests.append(
            Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        request[JSON] = body
        request[RAW] = raw
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.outage > 0:
            self.outage -= 1
            return web.json_response(self.outage_body(), status=503)
        return await handler(request)

    def calls(self) -> list[tuple[str, str]]:
        """(method, path) of every request, in order."""
        return [(s.method, s.path) for s in self.requests]


# -- Zammad ----------------------------------------------------------------------------

ZAMMAD_STATES = {"new": 1, "open": 2, "pending reminder": 3, "closed": 4}
ZAMMAD_PRIORITIES = ("1 low", "2 normal", "3 high")


@dataclass
class ZammadEmulator(Emulator):
    token: str = "zammad-token-0123456789abcdef"
    groups: tuple[str, ...] = ("NOC",)
    elasticsearch: bool = True
    ids_shape: bool = False  # answer search as {"tickets": [ids], "assets": …} always
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/tickets", self._auth(self.create))
        app.router.add_get("/api/v1/tickets/search", self._auth(self.search))
        app.router.add_put("/api/v1/tickets/{id}", self._auth(self.update))
        app.router.add_post("/api/v1/ticket_articles", self._auth(self.article))
        app.router.add_get("/api/v1/ticket_articles/by_ticket/{id}", self._auth(self.articles_of))
        app.router.add_get("/api/v1/users/me", self._auth(self.me))

    def _auth(self, handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Authorization") != f"Token token={self.token}":
                return _zerr(401, "authentication failed")
            return await handler(request)

        return checked

    async def create(self, request: web.Request) -> web.StreamResponse:
        body = _json(request)
        if not isinstance(body, dict) or not body.get("title"):
            return _zerr(422, "Attribute 'title' required!")
        if body.get("group") not in self.groups:
            return _zerr(422, f"No lookup value found for 'group': {body.get('group')!r}")
        ident = len(self.tickets) + 1
        tags = [t for t in str(body.get("tags", "")).split(",") if t]
        ticket = {
            "id": ident,
            "number": str(22000 + ident),
            "title": body["title"],
            "group": body["group"],
            "customer_id": body.get("customer_id"),
            "priority": body.get("priority"),
            "state": "new",
            "tags": tags,
            "articles": [body["article"]] if "article" in body else [],
        }
        self.tickets[ident] = ticket
        if self.lose_reply:
            self.lose_reply = False
            return _zerr(500, "Error ID x: Please contact your administrator.")
        return web.json_response(_public(ticket), status=201)

    async def update(self, request: web.Request) -> web.StreamResponse:
        ticket = self.tickets.get(int(request.match_info["id"]))
        if ticket is None:
            return _zerr(404, f"Couldn't find Ticket with 'id'={request.match_info['id']}")
        body = _json(request)
        if "state" in body:
            if body["state"] not in ZAMMAD_STATES:
                return _zerr(422, f"No lookup value found for 'state': {body['state']!r}")
            ticket["state"] = body["state"]
        if "priority" in body:
            if body["priority"] not in ZAMMAD_PRIORITIES:
                return _zerr(422, f"No lookup value found for 'priority': {body['priority']!r}")
            ticket["priority"] = body["priority"]
        if "article" in body:
            ticket["articles"].append(body["article"])
        return web.json_response(_public(ticket))

    async def article(self, request: web.Request) -> web.StreamResponse:
        body = _json(request)
        ticket = self.tickets.get(int(body.get("ticket_id", 0)))
        if ticket is None:
            return _zerr(404, f"Couldn't find Ticket with 'id'={body.get('ticket_id')}")
        ticket["articles"].append({k: v for k, v in body.items() if k != "ticket_id"})
        return web.json_response({"id": 100 + len(ticket["articles"])}, status=201)

    async def articles_of(self, request: web.Request) -> web.StreamResponse:
        ticket = self.tickets.get(int(request.match_info["id"]))
        if ticket is None:
            return _zerr(404, f"Couldn't find Ticket with 'id'={request.match_info['id']}")
        return web.json_response(
            [{"id": n, "ticket_id": ticket["id"], **a} for n, a in enumerate(ticket["articles"])]
        )

    async def me(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"id": 3, "login": "monitord"})

    async def search(self, request: web.Request) -> web.StreamResponse:
        query = request.query.get("query", "")
        if query.startswith("tags:"):
            tag = query.removeprefix("tags:").strip('"')
            hits = [t for t in self.tickets.values() if self.elasticsearch and tag in t["tags"]]
        else:  # full text: a LIKE over the title without ES
            hits = [t for t in self.tickets.values() if query in t["title"]]
        if request.query.get("expand") == "true" and not self.ids_shape:
            return web.json_response([_public(t) for t in hits])
        return web.json_response(
            {
                "tickets": [t["id"] for t in hits],
                "tickets_count": len(hits),
                "assets": {"Ticket": {str(t["id"]): _public(t) for t in hits}},
            }
        )


def _public(ticket: dict[str, Any]) -> dict[str, Any]:
    state_id = ZAMMAD_STATES[ticket["state"]]
    return {
        "id": ticket["id"],
        "number": ticket["number"],
        "title": ticket["title"],
        "state_id": state_id,
    }


def _zerr(status: int, error: str) -> web.Response:
    return web.json_response({"error": error, "error_human": error}, status=status)


# -- GLPI ------------------------------------------------------------------------------


@dataclass
class GlpiEmulator(Emulator):
    app_token: str = "glpi-app-token-0123456789"
    user_token: str = "glpi-user-token-0123456789"
    entities: tuple[int, ...] = (0, 3)
    indexed: bool = False  # search `data` as an object keyed by item id
    sessions: set[str] = field(default_factory=set)
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    followups: list[dict[str, Any]] = field(default_factory=list)
    _next_session: int = 0

    def outage_body(self) -> Any:
        return ["ERROR", "service unavailable"]

    def routes(self, app: web.Application) -> None:
        p = "/apirest.php"
        app.router.add_get(p + "/initSession", self.init_session)
        app.router.add_get(p + "/killSession", self._auth(self.kill_session))
        app.router.add_post(p + "/Ticket/", self._auth(self.create))
        app.router.add_put(p + "/Ticket/{id}", self._auth(self.update))
        app.router.add_post(p + "/ITILFollowup/", self._auth(self.followup))
        app.router.add_get(p + "/search/Ticket", self._auth(self.search))
        app.router.add_get(p + "/Ticket/{id}/ITILFollowup", self._auth(self.followups_of))
        app.router.add_get(p + "/", self.root)

    def expire_sessions(self) -> None:
        self.sessions.clear()

    async def init_session(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("App-Token") != self.app_token:
            return _gerr(400, "ERROR_WRONG_APP_TOKEN_PARAMETER", "parameter app_token seems wrong")
        if request.headers.get("Authorization") != f"user_token {self.user_token}":
            return _gerr(401, "ERROR_GLPI_LOGIN_USER_TOKEN", "parameter user_token seems invalid")
        self._next_session += 1
        token = f"session{self._next_session:04d}"
        self.sessions.add(token)
        return web.json_response({"session_token": token})

    def _auth(self, handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.StreamResponse:
            if request.headers.get("App-Token") != self.app_token:
                return _gerr(
                    400, "ERROR_WRONG_APP_TOKEN_PARAMETER", "parameter app_token seems wrong"
                )
            if request.headers.get("Session-Token") not in self.sessions:
                return _gerr(401, "ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid")
            if request.method == "GET" and request[RAW]:
                return _gerr(400, "ERROR_BAD_ARRAY", "GET requests must have an empty body")
            return await handler(request)

        return checked

    async def kill_session(self, request: web.Request) -> web.StreamResponse:
        self.sessions.discard(request.headers["Session-Token"])
        return web.json_response(True)

    async def create(self, request: web.Request) -> web.StreamResponse:
        body = _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return _gerr(400, "ERROR_BAD_ARRAY", "input parameter must be an array of objects")
        item = body["input"]
        if item.get("entities_id", 0) not in self.entities:
            return _gerr(400, "ERROR_GLPI_ADD", "You don't have permission to perform this action.")
        ident = 1233 + len(self.tickets) + 1
        self.tickets[ident] = {**item, "id": ident, "status": 1}
        if self.lose_reply:
            self.lose_reply = False
            return _gerr(500, "ERROR_SQL", "lost reply")
        headers = {"Location": f"{self.url}/apirest.php/Ticket/{ident}"}
        return web.json_response({"id": ident, "message": ""}, status=201, headers=headers)

    async def update(self, request: web.Request) -> web.StreamResponse:
        ident = int(request.match_info["id"])
        if ident not in self.tickets:
            return _gerr(404, "ERROR_ITEM_NOT_FOUND", "Item not found")
        item = _json(request)["input"]
        for name, valid in (("status", range(1, 7)), ("urgency", range(1, 6))):
            if name in item and item[name] not in valid:
                refused = [{str(ident): False, "message": f"Invalid {name}"}]
                return web.json_response(refused, status=400)
        self.tickets[ident].update(item)
        return web.json_response([{str(ident): True, "message": ""}])

    async def followup(self, request: web.Request) -> web.StreamResponse:
        item = _json(request)["input"]
        if item.get("itemtype") != "Ticket" or item.get("items_id") not in self.tickets:
            return _gerr(400, "ERROR_GLPI_ADD", "You don't have permission to perform this action.")
        self.followups.append(item)
        return web.json_response({"id": len(self.followups), "message": ""}, status=201)

    async def followups_of(self, request: web.Request) -> web.StreamResponse:
        ident = int(request.match_info["id"])
        if ident not in self.tickets:
            return _gerr(404, "ERROR_ITEM_NOT_FOUND", "Item not found")
        return web.json_response([f for f in self.followups if f["items_id"] == ident])

    async def root(self, request: web.Request) -> web.StreamResponse:
        return _gerr(400, "ERROR_BAD_ARRAY", "no endpoint given")

    async def search(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        value = q.get("criteria[0][value]", "")
        if q.get("criteria[0][field]") != "1" or q.get("criteria[0][searchtype]") != "contains":
            return _gerr(400, "ERROR_BAD_ARRAY", "unsupported criteria")
        if value.startswith("^"):
            hits = [t for t in self.tickets.values() if t["name"].startswith(value[1:])]
        else:
            hits = [t for t in self.tickets.values() if value in t["name"]]
        rows = {str(t["id"]): {"1": t["name"], "2": t["id"], "12": t["status"]} for t in hits}
        data: Any = rows if self.indexed else list(rows.values())
        headers = {"Content-Range": f"0-{max(len(hits) - 1, 0)}/{len(hits)}", "Accept-Range": "990"}
        body = {"totalcount": len(hits), "count": len(hits), "data": data}
        return web.json_response(body, headers=headers)


def _gerr(status: int, code: str, text: str) -> web.Response:
    return web.json_response([code, text], status=status)


# -- webhook receiver ------------------------------------------------------------------


@dataclass
class WebhookReceiver(Emulator):
    """A receiver that checks the signature and dedups opens by X-Monitord-Dedup-Key."""

    secret: str = "webhook-secret-0123456789"
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen_keys: set[str] = field(default_factory=set)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/hook", self.hook)

    async def hook(self, request: web.Request) -> web.StreamResponse:
        ts = request.headers.get("X-Monitord-Timestamp", "")
        mac = hmac.new(self.secret.encode(), f"{ts}.".encode() + request[RAW], hashlib.sha256)
        if request.headers.get("X-Monitord-Signature") != "sha256=" + mac.hexdigest():
            return web.json_response({"error": "bad signature"}, status=403)
        body = _json(request)
        key = request.headers["X-Monitord-Dedup-Key"]
        if body["op"] == "open":
            if key not in self.tickets:
                self.tickets[key] = {"id": f"T{len(self.tickets) + 1}", "state": "open", "log": []}
            ticket = self.tickets[key]
        else:
            found = [t for t in self.tickets.values() if t["id"] == body["external_id"]]
            if not found:
                return web.json_response({"error": "unknown ticket"}, status=404)
            ticket = found[0]
        idem = request.headers["Idempotency-Key"]
        if idem not in self.seen_keys:
            self.seen_keys.add(idem)
            ticket["log"].append(body["op"])
            if body["op"] == "open" or "priority" in body["changes"]:
                ticket["priority"] = body["priority"]
            ticket["state"] = {"resolve": "resolved", "reopen": "open"}.get(
                body["op"], ticket["state"]
            )
        return web.json_response({"id": ticket["id"]})


# -- a real server behind a fault-injecting proxy --------------------------------------


@dataclass
class FaultProxy(Emulator):
    """A real ticket system (RT, Redmine) behind a loopback proxy that has the
    emulators' knobs: `outage`, `delay`, `lose_reply` (the create is applied, the
    reply becomes a 500), `stop()`, and the request log. `env` is the server's."""

    upstream: str = ""
    kind: str = ""
    env: dict[str, str] = field(default_factory=dict)
    _client: aiohttp.ClientSession | None = None

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self.forward)

    async def start(self) -> None:
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def forward(self, request: web.Request) -> web.StreamResponse:
        assert self._client is not None
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "content-length", "transfer-encoding", "connection")
        }
        url = URL(self.upstream.rstrip("/") + request.raw_path, encoded=True)
        async with self._client.request(
            request.method, url, headers=headers, data=request[RAW] or None, allow_redirects=False
        ) as resp:
            body = await resp.read()
            status = resp.status
            out = {k: resp.headers[k] for k in ("Content-Type", "Location") if k in resp.headers}
        if self.lose_reply and request.method == "POST" and status == 201:
            self.lose_reply = False
            return web.json_response({"error": "reply lost"}, status=500)
        return web.Response(status=status, body=body, headers=out)
