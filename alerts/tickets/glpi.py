"""GLPI legacy REST API (`apirest.php`, GLPI 9.5–11): Ticket, ITILFollowup, status.

GLPI has no external-id column and no idempotency key (integrations.md §1.2), so the
dedup key is the ticket name's prefix `[<key>] ` and `find` searches option 1 (name)
with `contains` anchored by `^`. The session is opened lazily with `initSession`
(`user_token` + `App-Token`), re-opened once when GLPI answers
`ERROR_SESSION_TOKEN_INVALID`, and closed with `killSession` in `aclose`.
Follow-up content is HTML: every value is escaped.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel, ConfigDict

from alerts.tickets.base import (
    OwnedSession,
    Reply,
    TicketOp,
    call,
    http_error,
    numeric_id,
)
from alerts.tickets.texts import has_marker, html_text
from monitord.clock import Clock
from monitord.config.types import Secret
from monitord.errors import DeliveryError, Reason

URGENCY = {"P1": 5, "P2": 4, "P3": 3, "P4": 2}
SOLVED = 5
CLOSED = 6
ASSIGNED = 2
INCIDENT = 1
SESSION_INVALID = "ERROR_SESSION_TOKEN_INVALID"
AUTH_CODES = frozenset(
    {
        "ERROR_APP_TOKEN_PARAMETERS_MISSING",
        "ERROR_WRONG_APP_TOKEN_PARAMETER",
        "ERROR_NOT_ALLOWED_IP",
        "ERROR_LOGIN_PARAMETERS_MISSING",
        "ERROR_GLPI_LOGIN_USER_TOKEN",
        "ERROR_GLPI_LOGIN",
        "ERROR_RIGHT_MISSING",
    }
)


class GlpiSettings(BaseModel):
    """`tickets.systems[]` entry of kind `glpi`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str  # https://glpi.example (apirest.php is appended)
    app_token: Secret
    user_token: Secret
    entities_id: int = 0
    entities: dict[str, int] = {}  # monitord customer name → GLPI entity id
    timeout: float = 10.0


class GlpiTickets(OwnedSession):
    """`TicketSystem` for GLPI's legacy REST API."""

    kind = "glpi"
    Config: ClassVar[type[GlpiSettings]] = GlpiSettings
    settings: GlpiSettings
    API_PATH = "/apirest.php"

    def __init__(
        self,
        settings: GlpiSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(settings, session=session, clock=clock)
        self._token: str | None = None

    # -- TicketSystem --------------------------------------------------------------------

    async def open(self, op: TicketOp) -> str:
        s = self.settings
        ticket = {
            "name": f"[{op.dedup_key}] {op.subject}",
            "content": html_text(op),
            "type": INCIDENT,
            "urgency": URGENCY.get(op.priority, 3),
            "entities_id": s.entities.get(op.customer, s.entities_id),
        }
        reply = await self._call("POST", "/Ticket/", "create ticket", {"input": ticket}, (201,))
        if isinstance(reply.body, dict) and isinstance(reply.body.get("id"), int):
            return str(reply.body["id"])
        raise self._error(reply, "create ticket")

    async def comment(self, external_id: str, op: TicketOp) -> None:
        if op.note:
            await self._followup(external_id, op)
        if op.priority_changed:  # GLPI derives its priority from urgency x impact
            await self._set(external_id, {"urgency": URGENCY.get(op.priority, 3)})

    async def resolve(self, external_id: str, op: TicketOp) -> None:
        # The follow-up goes first: one added to a solved ticket may re-open it.
        if op.note:
            await self._followup(external_id, op)
        await self._status(external_id, CLOSED if op.close else SOLVED)

    async def reopen(self, external_id: str, op: TicketOp) -> None:
        if op.note:
            await self._followup(external_id, op)
        await self._status(external_id, ASSIGNED)

    async def noted(self, external_id: str, marker: str) -> bool:
        ident = numeric_id("glpi", external_id)
        what = f"read follow-ups of ticket {ident}"
        reply = await self._call("GET", f"/Ticket/{ident}/ITILFollowup", what, None, (200, 206))
        rows = reply.body if isinstance(reply.body, list) else []
        item = int(marker.rsplit(" ", 1)[-1])
        return any(
            isinstance(r, dict) and has_marker(str(r.get("content", "")), item) for r in rows
        )

    async def probe(self) -> None:
        """Any answer but 5xx: GLPI is up (no session needed to ask)."""
        reply = await self._request("GET", "/", "probe", None, None)
        if reply.status >= 500:
            raise self._error(reply, "probe")

    async def find(self, dedup_key: str) -> str | None:
        marker = f"[{dedup_key}]"
        params = {
            "criteria[0][field]": "1",
            "criteria[0][searchtype]": "contains",
            "criteria[0][value]": f"^{marker}",
            "criteria[1][link]": "AND",
            "criteria[1][field]": "12",
            "criteria[1][searchtype]": "equals",
            "criteria[1][value]": "all",
            "forcedisplay[0]": "2",
            "range": "0-49",
        }
        reply = await self._call("GET", "/search/Ticket", "search", None, (200, 206), params)
        found = [i for i, name in _search_rows(reply.body) if name.startswith(marker)]
        return str(min(found)) if found else None

    async def aclose(self) -> None:
        if self._token is not None and self._session is not None:
            with contextlib.suppress(DeliveryError):  # closing must not fail the shutdown
                await self._request("GET", "/killSession", "kill session", None, None)
        self._token = None
        await self._close_session()

    # -- helpers -------------------------------------------------------------------------

    async def _followup(self, external_id: str, op: TicketOp) -> None:
        followup = {
            "itemtype": "Ticket",
            "items_id": numeric_id("glpi", external_id),
            "content": html_text(op),
            "is_private": 1,
        }
        what = f"add follow-up to ticket {followup['items_id']}"
        await self._call("POST", "/ITILFollowup/", what, {"input": followup}, (201,))

    async def _status(self, external_id: str, status: int) -> None:
        await self._set(external_id, {"status": status})

    async def _set(self, external_id: str, fields: dict[str, int]) -> None:
        ident = numeric_id("glpi", external_id)
        what = f"set ticket {ident} " + ", ".join(f"{k} {v}" for k, v in fields.items())
        body = {"input": fields}
        reply = await self._call("PUT", f"/Ticket/{ident}", what, body, (200,))
        rows = reply.body if isinstance(reply.body, list) else [reply.body]
        for row in rows:
            if isinstance(row, dict) and row.get(str(ident)) is False:
                raise self._error(reply, what)

    async def _call(
        self,
        method: str,
        path: str,
        what: str,
        json: Any,
        ok: tuple[int, ...],
        params: dict[str, str] | None = None,
    ) -> Reply:
        """A session call; an expired session is re-opened once, then the call retried."""
        if self._token is None:
            await self._init()
        reply = await self._request(method, path, what, json, params)
        if reply.status == 401 and _code(reply.body) == SESSION_INVALID:
            self._token = None
            await self._init()
            reply = await self._request(method, path, what, json, params)
        if reply.status not in ok:
            raise self._error(reply, what)
        return reply

    async def _init(self) -> None:
        s = self.settings
        headers = {
            "Authorization": f"user_token {s.user_token.get_secret_value()}",
            "App-Token": s.app_token.get_secret_value(),
        }
        reply = await call(
            self._http(),
            "GET",
            self._base + "/initSession",
            system="glpi",
            what="init session",
            secrets=self._secrets(),
            headers=headers,
        )
        token = reply.body.get("session_token") if isinstance(reply.body, dict) else None
        if reply.status != 200 or not isinstance(token, str):
            raise self._error(reply, "init session")
        self._token = token

    async def _request(
        self, method: str, path: str, what: str, json: Any, params: dict[str, str] | None
    ) -> Reply:
        headers = {
            "Session-Token": self._token or "",
            "App-Token": self.settings.app_token.get_secret_value(),
        }
        if json is not None:
            headers["Content-Type"] = "application/json"
        return await call(
            self._http(),
            method,
            self._base + path,
            system="glpi",
            what=what,
            secrets=self._secrets(),
            headers=headers,
            json=json,
            params=params,
        )

    def _secrets(self) -> list[str]:
        s = self.settings
        secrets = [s.app_token.get_secret_value(), s.user_token.get_secret_value()]
        return [*secrets, self._token] if self._token else secrets

    def _error(self, reply: Reply, what: str) -> DeliveryError:
        error = http_error(
            reply, system="glpi", what=what, text=_error_text(reply.body), secrets=self._secrets()
        )
        if _code(reply.body) in AUTH_CODES:  # GLPI answers 400 for a wrong App-Token
            error.reason = Reason.AUTH
        return error


def _code(body: Any) -> str | None:
    if isinstance(body, list) and body and isinstance(body[0], str):
        return body[0]
    return None


def _error_text(body: Any) -> str:
    """GLPI errors are `["ERROR_CODE", "human text"]`; other bodies are quoted as they are."""
    if isinstance(body, list) and len(body) >= 2 and all(isinstance(x, str) for x in body[:2]):
        return f"{body[0]}: {body[1]}"
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("message") or body)
    if isinstance(body, dict):
        return str(body.get("message") or body)
    return str(body)[:300]


def _search_rows(body: Any) -> list[tuple[int, str]]:
    """(id, name) per row; `data` is an array of rows or an object keyed by item id."""
    if not isinstance(body, dict):
        return []
    data = body.get("data", [])
    rows: list[tuple[int, str]] = []
    if isinstance(data, dict):
        items: list[tuple[Any, Any]] = list(data.items())
    else:
        items = [(None, row) for row in data]
    for key, row in items:
        if not isinstance(row, dict):
            continue
        ident = row.get("2", key)
        try:
            rows.append((int(ident), str(row.get("1", ""))))
        except (TypeError, ValueError):
            continue
    return rows
