"""RMM webhooks into the feed (docs/rmm-webhooks.md):

    POST /api/v1/rmm/<source>/webhook   Tactical RMM's alert URL Action, for a running
                                        source of kind tactical (its agents are synced)
    POST /api/v1/rmm/webhook            monitord's generic schema, for any RMM

Authenticated like the event ingest (`monitord.sources.ingest_auth`), with the
tokens and HMAC secrets of `rmm.webhook`. A request is parsed by the adapter's
parser (`monitord.sources.rmm.webhooks`) and fed to the same path as a poll: a
problem becomes (or updates) an observation and is judged, a clearance clears
it. Refusals are 4xx with a precise message and store nothing: 401/403 for
credentials, 404 when webhooks are off or the source is unknown, 413 for a body
over `rmm.webhook.max_body_bytes`, 415 for a body that is not JSON by its type,
400 for a body that is not a JSON object, 422 naming the field that is wrong.

A generic sender's observations are its own source, `wh-<sender>` (the token or
secret name). Its devices are found by the inventory's device id, else by name
within the customer its `client` maps to (rmm.clients), else by a name only one
customer has; an ambiguous or unknown device is kept as an observation without
a device, never guessed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from monitord.sources import ingest_auth as auth
from monitord.sources.ingest import Refused, Result, _content_type, _guard, _read_body
from monitord.sources.rmm.webhooks import Webhook, WebhookError, parse_generic, parse_tactical

log = logging.getLogger(__name__)

ANSWER_WITHIN = 5.0  # seconds; judging goes on after the answer (Tactical waits 8 s)


class RmmWebhooks:
    """The two webhook handlers of one daemon (`get_app` finds its App)."""

    def __init__(self, get_app: Callable[[web.Request], Any]) -> None:
        self.get_app = get_app
        self.replay = auth.ReplayGuard()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/rmm/webhook", self.generic),
            web.post("/api/v1/rmm/{source}/webhook", self.tactical),
        ]

    async def tactical(self, request: web.Request) -> web.Response:
        app = self.get_app(request)
        name = request.match_info["source"]
        runner = app.rmm.runners.get(name)
        if runner is None:
            known = ", ".join(sorted(app.rmm.runners)) or "none"
            return _refuse(404, f"no running RMM source {name!r} (running: {known})")
        if runner.defn.kind != "tactical":
            return _refuse(
                404, f"source {name!r} is of kind {runner.defn.kind}: only tactical posts alerts"
            )
        return await self._accept(request, app, parse_tactical, lambda sender: name)

    async def generic(self, request: web.Request) -> web.Response:
        app = self.get_app(request)
        return await self._accept(request, app, parse_generic, lambda sender: f"wh-{sender}")

    async def _accept(
        self,
        request: web.Request,
        app: Any,
        parse: Callable[[bytes], Webhook],
        source_of: Callable[[str], str],
    ) -> web.Response:
        try:
            sender, body = await self._authenticated(request, app)
            try:
                hook = parse(body)
            except WebhookError as exc:
                status = 400 if exc.field == "body" else 422
                raise Refused(status, Result.INVALID, str(exc)) from None
        except Refused as exc:
            log.info("RMM webhook refused (%d): %s", exc.status, exc.message)
            return exc.response()
        source = source_of(sender)
        known = app.rmm.resolve(source, hook)
        work = asyncio.ensure_future(
            app.rmm.push(
                source,
                [hook.failure] if hook.failure is not None else [],
                [hook.clearance] if hook.clearance is not None else [],
                known=known,
            )
        )
        app.rmm.keep(work)
        try:
            observed = await asyncio.wait_for(asyncio.shield(work), ANSWER_WITHIN)
        except TimeoutError:
            return web.json_response({"accepted": 1, "source": source, "judging": True}, status=202)
        return web.json_response(_answer(source, hook, observed, known), status=202)

    async def _authenticated(self, request: web.Request, app: Any) -> tuple[str, bytes]:
        config = app.loaded.config.rmm.webhook
        if not config.enabled:
            raise Refused(404, Result.DISABLED, "RMM webhooks are disabled (rmm.webhook.enabled)")
        if not app.started:
            raise Refused(503, Result.UNAVAILABLE, "monitord is starting or stopping; retry")
        now = app.clock.time()
        credentials = _guard(lambda: auth.presented(request.headers, now))
        sender = (
            _guard(lambda: auth.token_source(config, credentials))
            if isinstance(credentials, auth.Bearer)
            else None
        )
        _content_type(request)
        try:
            body = await _read_body(request, config.max_body_bytes)
        except Refused as exc:  # name this endpoint's own limit
            exc.message = exc.message.replace("ingest.", "rmm.webhook.")
            raise
        if isinstance(credentials, auth.Signed):
            signed = credentials
            sender = _guard(lambda: auth.signature_source(config, signed, body))
            _guard(lambda: self.replay.check(signed))
            self.replay.remember(signed, now)
        assert sender is not None
        return sender, body


def _answer(source: str, hook: Webhook, observed: Any, known: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "accepted": 1,
        "source": source,
        "event": "problem" if hook.problem else "clearance",
        "key": hook.failure.key if hook.failure is not None else hook.clearance,
    }
    if observed:
        obs = observed[0]
        out |= {"observation": obs.id, "device": obs.device_id, "verdict": obs.verdict}
    elif hook.failure is not None:
        out["device"] = None  # an unmapped client's device: counted, not observed
    return out


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def routes(get_app: Callable[[web.Request], Any]) -> list[web.RouteDef]:
    return RmmWebhooks(get_app).routes()
