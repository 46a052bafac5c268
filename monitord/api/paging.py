"""Paging over HTTP: ack links, the Telegram webhook, on-call overrides, escalations.

- `GET /ack/<token>`: a small confirmation page; it never acknowledges (link
  previewers and mail scanners fetch GETs). `POST /ack/<token>` acknowledges (the
  page's button, or ntfy's "Acknowledge" action). A forged, malformed or expired
  token answers 403 and is logged.
- `POST /api/v1/paging/telegram/<channel>`: Telegram's webhook for that channel;
  the `X-Telegram-Bot-Api-Secret-Token` header must match its `webhook_secret`.
- `GET|POST /api/v1/oncall/overrides`, `DELETE /api/v1/oncall/overrides/<id>?by=`:
  overrides made at runtime (`?state=all` lists deleted ones too). POST answers
  201, or 422 with every problem located by field.
- `GET /api/v1/paging/escalations`: open escalations, step, next fire, ack holder.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy import select

from alerts.channels.telegram import TelegramChannel
from alerts.paging import overrides
from alerts.paging.escalation import open_escalations
from alerts.paging.links import AckToken, LinkRefused, verify
from alerts.paging.telegram_updates import webhook_update
from monitord.api.bodies import json_object
from monitord.api.views import iso
from monitord.storage.schema import incidents, page_channels

log = logging.getLogger(__name__)

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>monitord: {title}</title></head>
<body style="font-family: sans-serif; max-width: 30em; margin: 1em auto">
<h2>{title}</h2>{body}</body></html>"""


def _html(title: str, body: str, status: int = 200) -> web.Response:
    text = PAGE.format(title=html.escape(title), body=body)
    return web.Response(text=text, status=status, content_type="text/html")


def routes(get_app: Callable[[web.Request], Any]) -> list[web.RouteDef]:
    h = _Handlers(get_app)
    return [
        web.get("/ack/{token}", h.ack_form),
        web.post("/ack/{token}", h.ack),
        web.post("/api/v1/paging/telegram/{channel}", h.telegram),
        web.get("/api/v1/oncall/overrides", h.list_overrides),
        web.post("/api/v1/oncall/overrides", h.add_override),
        web.delete("/api/v1/oncall/overrides/{id}", h.delete_override),
        web.get("/api/v1/paging/escalations", h.escalations),
    ]


class _Handlers:
    def __init__(self, get_app: Callable[[web.Request], Any]) -> None:
        self.get_app = get_app

    async def ack_form(self, request: web.Request) -> web.Response:
        app = self.get_app(request)
        token = await _token(app, request)
        if isinstance(token, web.Response):
            return token
        rows = await asyncio.to_thread(_incidents, app, await _named(app, token))
        items = "".join(
            f"<li>#{r.id} {html.escape(r.priority)} {html.escape(r.title)} ({r.state})</li>"
            for r in rows
        )
        body = (
            f"<p>For {html.escape(token.engineer)}:</p><ul>{items}</ul>"
            '<form method="post"><button type="submit" style="font-size: 1.5em">'
            "Acknowledge</button></form>"
        )
        return _html("acknowledge", body)

    async def ack(self, request: web.Request) -> web.Response:
        app = self.get_app(request)
        token = await _token(app, request)
        if isinstance(token, web.Response):
            return token
        done = await app.paging.acknowledge(await _named(app, token), token.engineer, "link")
        if not done:
            return _html("nothing to acknowledge", "<p>Already acknowledged or resolved.</p>")
        names = ", ".join(f"#{i.id}" for i in done)
        return _html(
            "acknowledged", f"<p>{names} acknowledged by {html.escape(token.engineer)}.</p>"
        )

    async def telegram(self, request: web.Request) -> web.Response:
        app = self.get_app(request)
        name = request.match_info["channel"]
        channel = app.paging.channels.get(name)
        if not isinstance(channel, TelegramChannel) or channel.config.updates != "webhook":
            raise web.HTTPNotFound(text=f"no telegram channel {name!r} taking webhooks")
        secret = channel.config.webhook_secret
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if secret is None or not hmac.compare_digest(given, secret.get_secret_value()):
            log.warning("telegram webhook %s: wrong secret token from %s", name, request.remote)
            raise web.HTTPForbidden(text="wrong secret token")
        update = await json_object(request, "a Telegram Update")
        result = await webhook_update(app.paging, name, update)
        return web.json_response({"result": result})

    async def list_overrides(self, request: web.Request) -> web.Response:
        app = self.get_app(request)
        state = request.query.get("state", "")
        if state not in ("", "all"):
            raise web.HTTPBadRequest(text=f"state must be all or absent, got {state!r}")
        now = app.clock.time()

        def read() -> list[Any]:
            with app.engine.connect() as conn:
                return overrides.stored(conn, now, all_=state == "all")

        found = await asyncio.to_thread(read)
        return web.json_response({"overrides": [overrides.view(o) for o in found]})

    async def add_override(self, request: web.Request) -> web.Response:
        app = self.get_app(request)
        body = await json_object(request)
        now = app.clock.time()

        def write() -> Any:
            with app.engine.begin() as conn:
                return overrides.add(conn, app.loaded.config.oncall, body, now)

        try:
            made = await asyncio.to_thread(write)
        except overrides.OverrideRefused as exc:
            problems = [{"field": f, "message": m} for f, m in exc.problems]
            return web.json_response({"error": str(exc), "problems": problems}, status=422)
        log.info("on-call override #%s added by %s", made.id, made.created_by)
        app.paging.wake.set()  # a handover it causes is looked at now
        return web.json_response(overrides.view(made), status=201)

    async def delete_override(self, request: web.Request) -> web.Response:
        app = self.get_app(request)
        raw = request.match_info["id"]
        if not raw.isdigit():
            raise web.HTTPBadRequest(text=f"id must be a number, got {raw!r}")
        by = request.query.get("by", "")
        if not 0 < len(by) <= 100:
            raise web.HTTPUnprocessableEntity(text="?by= must name who deletes it")
        now = app.clock.time()

        def write() -> Any:
            with app.engine.begin() as conn:
                return overrides.delete(conn, int(raw), by, now)

        gone = await asyncio.to_thread(write)
        if gone is None:
            raise web.HTTPNotFound(text=f"no override #{raw} in force")
        app.paging.wake.set()
        return web.json_response(overrides.view(gone))

    async def escalations(self, request: web.Request) -> web.Response:
        app = self.get_app(request)
        body = await asyncio.to_thread(_escalations, app)
        return web.json_response(body)


async def _token(app: Any, request: web.Request) -> Any:
    secret = app.loaded.config.paging.ack_secret
    raw = request.match_info["token"]
    if secret is None:
        return _html("links are off", "<p>This daemon signs no ack links.</p>", 404)
    try:
        return verify(secret.get_secret_value(), raw, app.clock.time())
    except LinkRefused as exc:
        app.paging.metrics.link_refusals.labels(exc.reason).inc()
        log.warning(
            "ack link refused (%s) from %s", exc.reason, request.remote, extra={"token": raw[:80]}
        )
        return _html("refused", f"<p>{html.escape(str(exc))}.</p>", 403)


async def _named(app: Any, token: AckToken) -> tuple[int, ...]:
    """The incidents a link stands for: its own list, or its summary page's."""
    if token.summary is None:
        return token.incidents

    def lookup() -> tuple[int, ...]:
        with app.engine.connect() as conn:
            found: tuple[int, ...] = app.paging.incidents_of_key(conn, token.summary)
            return found

    return await asyncio.to_thread(lookup)


def _incidents(app: Any, ids: tuple[int, ...]) -> list[Any]:
    with app.engine.connect() as conn:
        return list(
            conn.execute(select(incidents).where(incidents.c.id.in_(ids)).order_by(incidents.c.id))
        )


def _escalations(app: Any) -> dict[str, Any]:
    with app.engine.connect() as conn:
        rows = open_escalations(conn)
        channels = conn.execute(select(page_channels)).all()
    return {
        "escalations": [
            {
                "id": r.id,
                "incident": r.incident_id,
                "policy": r.policy,
                "state": r.state,
                "step": r.step + 1,
                "round": r.loop + 1,
                "next_at": iso(r.next_at),
                "reason": r.reason,
                "acked_by": r.acked_by,
                "acked_via": r.acked_via,
                "ack_expires_at": iso(r.ack_expires_at),
            }
            for r in rows
        ],
        "channels": [
            {
                "name": c.name,
                "failing_since": iso(c.failing_since),
                "last_error": c.last_error,
                "raised": bool(c.raised),
                "last_ok_at": iso(c.last_ok_at),
            }
            for c in channels
            if not c.name.startswith("gap:")
        ],
    }
