"""Emulators of the paging APIs, written from docs/integrations.md §2 and §4.

One aiohttp application on 127.0.0.1 serves every HTTP API under its own prefix
(`/odorik/api/v1/`, `/telegram/bot<token>/`, `/pagerduty/v2/enqueue`, `/ntfy/`,
`/webhook/hook`); an aiosmtpd server plays the SMTP relay. Each records the
requests it got and answers by its `mode`:

    ok            success, exactly as the service answers it
    permanent     a documented permanent error (Odorik: `error low_balance` with 200)
    retryable     a documented retryable error (Odorik: `error gateway_failed` with 200;
                  HTTP APIs: 5xx)
    rate_limited  429 in the service's shape (Telegram: `parameters.retry_after`)
    hang          no answer until the emulator stops (client timeouts)
    slow          (Odorik) the SMS goes out at once, the answer only after `slow_seconds`:
                  a client that dies meanwhile cannot know it was sent

Odorik keeps the history `GET sms.json` lists (who was sent an SMS when); Telegram
numbers its messages, queues updates for `getUpdates` (offset semantics: an offset
confirms every update before it) and accepts `editMessageReplyMarkup`.

Validation (credentials, required fields, limits) runs in every mode, so a wrong
request shape fails the test with the service's own error.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

ODORIK_USER = "1234567"
ODORIK_PASSWORD = "odorik-secret-pw-5f2a"
ODORIK_SENDERS = ("Odorik.cz", "5517", "00420789123456")
TELEGRAM_TOKEN = "123456:ABC-secret-token-DEF987"
TELEGRAM_CHATS = ("987654321",)
PAGERDUTY_KEY = "R0ABCDEF0123456789SECRETKEY01234"  # 32 characters
NTFY_TOKEN = "tk_secretAgQdq7mVBoFD37zQVN29Rhu"
WEBHOOK_SECRET = "webhook-secret-0123456789abcdef"
SMTP_USER = "monitord@msp.example"
SMTP_PASSWORD = "smtp-secret-pw-77aa"
APPRISE_USER = "monitord"
APPRISE_PASSWORD = "apprise-secret-pw-31c9"

SECRETS = (
    ODORIK_PASSWORD,
    TELEGRAM_TOKEN,
    PAGERDUTY_KEY,
    NTFY_TOKEN,
    WEBHOOK_SECRET,
    SMTP_PASSWORD,
    APPRISE_PASSWORD,
)


@dataclass
class Recorded:
    service: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, str] | None = None
    json: Any = None


@dataclass
class HttpEmulators:
    modes: dict[str, str] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    pd_alerts: dict[str, str] = field(default_factory=dict)  # dedup_key → triggered|acknowledged
    sms_sent: list[tuple[str, float, str]] = field(default_factory=list)  # recipient, time, text
    slow_seconds: float = 3.0
    clock: Callable[[], float] = time.time  # when an SMS counts as sent (a test's fake clock)
    tg_updates: list[dict[str, Any]] = field(default_factory=list)  # not yet confirmed
    tg_next_message: int = 42
    tg_next_update: int = 500123
    base_url: str = ""
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    def mode(self, service: str) -> str:
        return self.modes.get(service, "ok")

    def of(self, service: str) -> list[Recorded]:
        return [r for r in self.requests if r.service == service]

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/odorik/api/v1/sms", self.odorik_sms)
        app.router.add_get("/odorik/api/v1/sms/allowed_sender", self.odorik_senders)
        app.router.add_get("/odorik/api/v1/sms.json", self.odorik_history)
        app.router.add_post("/telegram/bot{token}/{method}", self.telegram)
        app.router.add_post("/pagerduty/v2/enqueue", self.pagerduty)
        app.router.add_post("/ntfy/", self.ntfy)
        app.router.add_post("/webhook/hook", self.webhook)
        app.router.add_post("/apprise/notify", self.apprise_json)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _record(self, service: str, request: web.Request) -> Recorded:
        body = await request.read()
        rec = Recorded(service, request.method, request.path, dict(request.headers), body)
        ctype = request.content_type
        if ctype == "application/x-www-form-urlencoded":
            rec.form = {k: str(v) for k, v in (await request.post()).items()}
        elif ctype == "application/json":
            try:
                rec.json = json.loads(body)
            except ValueError:
                rec.json = None
        self.requests.append(rec)
        if self.mode(service) == "hang":
            await self._release.wait()
        return rec

    # --- Odorik: form-encoded, HTTP 200 with a plain-text verdict -------------------------

    async def odorik_senders(self, request: web.Request) -> web.Response:
        return web.Response(text=",".join(ODORIK_SENDERS))

    async def odorik_sms(self, request: web.Request) -> web.Response:
        rec = await self._record("odorik", request)
        form = rec.form or {}
        text = self._odorik_verdict(form)
        mode = self.mode("odorik")
        if text is None and mode == "permanent":
            text = "error low_balance"
        elif text is None and mode == "retryable":
            text = "error gateway_failed"
        elif text is None and mode == "rate_limited":  # Odorik documents no 429; a proxy might
            return web.Response(status=429, text="Too Many Requests")
        if text is None:
            self.sms_sent.append((form["recipient"], self.clock(), form["message"]))
            if mode == "slow":  # until the answer is due, or the emulator stops
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._release.wait(), self.slow_seconds)
        return web.Response(text=text or "successfully_sent 193.32", content_type="text/plain")

    async def odorik_history(self, request: web.Request) -> web.Response:
        """`GET sms.json?from&to[&direction]`: who was sent what when (no texts)."""
        await self._record("odorik", request)
        q = request.query
        verdict = self._odorik_auth(dict(q))
        if verdict is not None:
            return web.Response(text=verdict, content_type="text/plain")
        missing = [k for k in ("from", "to") if k not in q]
        if missing:
            return web.Response(text="error missing_argument " + ",".join(missing))
        try:
            start = datetime.fromisoformat(q["from"]).timestamp()
            end = datetime.fromisoformat(q["to"]).timestamp()
        except ValueError:
            return web.Response(text="error invalid_date_format")
        items = [
            {
                "date": datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds"),
                "direction": "out",
                "source_number": "5517",
                "destination_number": recipient,
            }
            for recipient, ts, _ in self.sms_sent
            if start <= ts <= end and q.get("direction", "out") == "out"
        ]
        return web.json_response(items)

    @staticmethod
    def _odorik_auth(form: dict[str, str]) -> str | None:
        if "user" not in form or "password" not in form:
            return "error authentication_required"
        if form["user"] != ODORIK_USER or form["password"] != ODORIK_PASSWORD:
            return "error authentication_failed"
        return None

    @staticmethod
    def _odorik_verdict(form: dict[str, str]) -> str | None:
        auth = HttpEmulators._odorik_auth(form)
        if auth is not None:
            return auth
        missing = [k for k in ("recipient", "message") if k not in form]
        if missing:
            return "error missing_argument " + ",".join(missing)
        if not form["message"]:
            return "error empty_message"
        if not form["recipient"].startswith("00") or not form["recipient"][2:].isdigit():
            return "error unsupported_recipient"
        if "sender" in form and form["sender"] not in ODORIK_SENDERS:
            return "error forbidden_sender"
        return None

    # --- Telegram: JSON {ok, result} / {ok: false, error_code, description, parameters} ---

    @staticmethod
    def _tg_error(code: int, description: str, **params: Any) -> web.Response:
        doc: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if params:
            doc["parameters"] = params
        return web.json_response(doc, status=code)

    async def telegram(self, request: web.Request) -> web.Response:
        rec = await self._record("telegram", request)
        if request.match_info["token"] != TELEGRAM_TOKEN:
            return self._tg_error(401, "Unauthorized")
        mode = self.mode("telegram")
        if mode == "rate_limited":
            return self._tg_error(429, "Too Many Requests: retry after 7", retry_after=7)
        if mode == "retryable":
            return web.Response(status=502, text="<html>502 Bad Gateway</html>")
        method = request.match_info["method"]
        body = rec.json if isinstance(rec.json, dict) else {}
        if method in ("answerCallbackQuery", "getUpdates", "editMessageReplyMarkup"):
            return await self._tg_other(method, body)
        if method != "sendMessage":
            return self._tg_error(404, "Not Found")
        error = self._tg_check(body)
        if error is None and mode == "permanent":
            error = "Bad Request: chat not found"
        if error is not None:
            return self._tg_error(400, error)
        chat = {"id": int(body["chat_id"]), "type": "private", "first_name": "Jan"}
        message_id, self.tg_next_message = self.tg_next_message, self.tg_next_message + 1
        message = {"message_id": message_id, "date": 1777860900, "chat": chat, "text": body["text"]}
        return web.json_response({"ok": True, "result": message})

    async def _tg_other(self, method: str, body: dict[str, Any]) -> web.Response:
        if method == "getUpdates":
            return await self._tg_updates(body)
        if method == "editMessageReplyMarkup" and (
            not isinstance(body.get("message_id"), int) or "chat_id" not in body
        ):
            return self._tg_error(400, "Bad Request: message to edit not found")
        return web.json_response({"ok": True, "result": True})

    def tg_push(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update (a button press, a message) for the next getUpdates."""
        update = {"update_id": self.tg_next_update, **update}
        self.tg_next_update += 1
        self.tg_updates.append(update)
        return update

    async def _tg_updates(self, body: dict[str, Any]) -> web.Response:
        offset = body.get("offset")
        if isinstance(offset, int):  # confirms every update before it
            self.tg_updates = [u for u in self.tg_updates if u["update_id"] >= offset]
        timeout = float(body.get("timeout") or 0)
        deadline = asyncio.get_running_loop().time() + min(timeout, 5.0)
        while not self.tg_updates and asyncio.get_running_loop().time() < deadline:
            if self._release.is_set():
                break
            await asyncio.sleep(0.05)
        return web.json_response({"ok": True, "result": list(self.tg_updates[:100])})

    @staticmethod
    def _tg_check(body: dict[str, Any]) -> str | None:
        if str(body.get("chat_id")) not in TELEGRAM_CHATS:
            return "Bad Request: chat not found"
        text = body.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= 4096:
            return "Bad Request: message text is empty"
        if body.get("parse_mode") not in (None, "HTML", "MarkdownV2"):
            return "Bad Request: unsupported parse_mode"
        markup = body.get("reply_markup")
        if markup is not None:
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    data = button.get("callback_data", "")
                    if not 1 <= len(data.encode()) <= 64 or not button.get("text"):
                        return "Bad Request: BUTTON_DATA_INVALID"
        return None

    # --- PagerDuty Events v2 --------------------------------------------------------------

    async def pagerduty(self, request: web.Request) -> web.Response:
        rec = await self._record("pagerduty", request)
        mode = self.mode("pagerduty")
        if mode == "rate_limited":
            return web.Response(status=429)
        if mode == "retryable":
            doc = {"status": "error", "message": "Internal error", "errors": ["try again"]}
            return web.json_response(doc, status=500)
        errors = self._pd_check(rec.json)
        if not errors and mode == "permanent":
            errors = ["'payload.severity' is invalid (must be one of critical, error, ...)"]
        if errors:
            doc = {"status": "invalid event", "message": "Event object is invalid"}
            return web.json_response({**doc, "errors": errors}, status=400)
        event = rec.json
        key = event.get("dedup_key") or "generated-0000"
        action = event["event_action"]
        if action == "trigger":
            self.pd_alerts.setdefault(key, "triggered")
        elif key in self.pd_alerts and action == "acknowledge":
            self.pd_alerts[key] = "acknowledged"
        elif action == "resolve":
            self.pd_alerts.pop(key, None)  # unknown keys are dropped silently
        doc = {"status": "success", "message": "Event processed", "dedup_key": key}
        return web.json_response(doc, status=202)

    @staticmethod
    def _pd_check(event: Any) -> list[str]:
        if not isinstance(event, dict):
            return ["Event object is not JSON"]
        errors = []
        if len(str(event.get("routing_key", ""))) != 32:
            errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
        action = event.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        if len(str(event.get("dedup_key", ""))) > 255:
            errors.append("'dedup_key' is too long")
        if action != "trigger" and not event.get("dedup_key"):
            errors.append("'dedup_key' is missing")
        if action == "trigger":
            errors.extend(HttpEmulators._pd_payload_check(event.get("payload") or {}))
        return errors

    @staticmethod
    def _pd_payload_check(payload: dict[str, Any]) -> list[str]:
        errors = [
            f"'payload.{name}' is missing or blank"
            for name in ("summary", "source", "severity")
            if not payload.get(name)
        ]
        if len(str(payload.get("summary", ""))) > 1024:
            errors.append("'payload.summary' is too long")
        if payload.get("severity") not in ("critical", "error", "warning", "info"):
            errors.append("'payload.severity' is invalid")
        return errors

    # --- ntfy: JSON publish to the root URL ------------------------------------------------

    @staticmethod
    def _ntfy_error(code: int, error: str) -> web.Response:
        doc = {"code": code, "http": code // 100, "error": error, "link": "https://ntfy.sh/docs/"}
        return web.json_response(doc, status=code // 100)

    async def ntfy(self, request: web.Request) -> web.Response:
        rec = await self._record("ntfy", request)
        if rec.headers.get("Authorization") != f"Bearer {NTFY_TOKEN}":
            return self._ntfy_error(40101, "unauthorized")
        mode = self.mode("ntfy")
        if mode == "rate_limited":
            return self._ntfy_error(42901, "limit reached: too many requests")
        if mode == "retryable":
            return self._ntfy_error(50001, "internal server error")
        doc = rec.json if isinstance(rec.json, dict) else {}
        if not doc.get("topic"):
            return self._ntfy_error(40009, "invalid request: topic invalid")
        if doc.get("priority", 3) not in range(1, 6) or mode == "permanent":
            return self._ntfy_error(40007, "invalid priority")
        if len(doc.get("actions", [])) > 3:
            return self._ntfy_error(40018, "invalid request: actions invalid")
        out = {"id": "hwQ2YpKdmg", "time": 1777860900, "expires": 1777904100, "event": "message"}
        return web.json_response({**out, **doc})

    # --- generic webhook, verified like docs/ingest.md -------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        rec = await self._record("webhook", request)
        ts = rec.headers.get("X-Monitord-Timestamp", "")
        mac = hmac.new(WEBHOOK_SECRET.encode(), ts.encode() + b"." + rec.body, hashlib.sha256)
        if not hmac.compare_digest(
            rec.headers.get("X-Monitord-Signature", ""), "sha256=" + mac.hexdigest()
        ):
            return web.json_response({"error": "invalid signature"}, status=403)
        mode = self.mode("webhook")
        if mode == "rate_limited":
            return web.json_response(
                {"error": "slow down"}, status=429, headers={"Retry-After": "3"}
            )
        if mode == "retryable":
            return web.json_response({"error": "unavailable"}, status=503)
        if mode == "permanent":
            return web.json_response({"error": "unknown recipient"}, status=422)
        return web.json_response({"accepted": True}, status=202)

    # --- a JSON receiver as apprise's json:// plugin posts to it (Basic auth) ----------------

    async def apprise_json(self, request: web.Request) -> web.Response:
        rec = await self._record("apprise", request)
        token = base64.b64encode(f"{APPRISE_USER}:{APPRISE_PASSWORD}".encode()).decode()
        if rec.headers.get("Authorization") != f"Basic {token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        doc = rec.json
        if not isinstance(doc, dict) or not {"title", "message", "type"} <= doc.keys():
            return web.json_response({"error": "not an apprise JSON notification"}, status=400)
        mode = self.mode("apprise")
        if mode == "rate_limited":
            return web.json_response({"error": "slow down"}, status=429)
        if mode == "retryable":
            return web.json_response({"error": "unavailable"}, status=503)
        if mode == "permanent":
            return web.json_response({"error": "no such channel"}, status=404)
        return web.json_response({"ok": True})


# --- SMTP: a real server on loopback (aiosmtpd) -------------------------------------------


@dataclass
class SmtpEmulator:
    """aiosmtpd relay; AUTH LOGIN/PLAIN with SMTP_USER/SMTP_PASSWORD (no TLS on loopback)."""

    mode: str = "ok"
    messages: list[Envelope] = field(default_factory=list)
    port: int = 0
    _controller: Controller | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.mode == "permanent":
            return "550 5.1.1 mailbox unavailable"
        if self.mode == "retryable":
            return "451 4.3.0 temporary failure, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.mode == "hang":
            await asyncio.sleep(3)
        self.messages.append(envelope)
        return "250 Message accepted for delivery"

    @staticmethod
    def _auth(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (
            data.login == SMTP_USER.encode() and data.password == SMTP_PASSWORD.encode()
        )
        return AuthResult(success=ok, handled=False)

    def start(
        self,
        port: int,
        *,
        starttls: ssl.SSLContext | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """Plain SMTP; or STARTTLS required (`starttls`); or implicit TLS (`tls`)."""
        self.port = port
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=port,
            authenticator=self._auth,
            auth_require_tls=False,
            tls_context=starttls,
            require_starttls=starttls is not None,
            ssl_context=tls,
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
