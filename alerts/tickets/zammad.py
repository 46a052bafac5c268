"""Zammad (REST API v1): tickets, internal HTML note articles, tags, search.

The dedup key is stamped twice on every ticket (integrations.md §1.1): as a tag
(`tags:<key>` finds it when Zammad has Elasticsearch) and as a `[<key>]` title suffix
(the SQL full-text fallback of an ES-less instance finds that). Articles are internal
notes in `text/html` whose every value is escaped.
"""

from __future__ import annotations

from typing import Any, ClassVar

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
from monitord.config.types import Secret

PRIORITIES = {"P1": "3 high", "P2": "3 high", "P3": "2 normal", "P4": "1 low"}


class ZammadSettings(BaseModel):
    """`tickets.systems[]` entry of kind `zammad`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str  # https://zammad.example (without /api/v1)
    token: Secret
    group: str
    customer: str  # login, e-mail or "guess:<email>"
    customers: dict[str, str] = {}  # monitord customer name → Zammad customer
    timeout: float = 10.0
    closed_state: str = "closed"
    open_state: str = "open"


class ZammadTickets(OwnedSession):
    """`TicketSystem` for Zammad."""

    kind = "zammad"
    Config: ClassVar[type[ZammadSettings]] = ZammadSettings
    settings: ZammadSettings
    API_PATH = "/api/v1"

    # -- TicketSystem --------------------------------------------------------------------

    async def open(self, op: TicketOp) -> str:
        s = self.settings
        body = {
            "title": f"{op.subject} [{op.dedup_key}]",
            "group": s.group,
            "customer_id": s.customers.get(op.customer, s.customer),
            "priority": PRIORITIES.get(op.priority, "2 normal"),
            "tags": f"monitord,{_tag(op.dedup_key)}",
            "article": self._article(op),
        }
        reply = await self._call("POST", "/tickets", "create ticket", json=body, ok=(201,))
        return _ticket_id(reply)

    async def comment(self, external_id: str, op: TicketOp) -> None:
        if op.priority_changed:  # one ticket update sets the priority and adds the article
            ident = numeric_id("zammad", external_id)
            body: dict[str, Any] = {"priority": PRIORITIES.get(op.priority, "2 normal")}
            if op.note:
                body["article"] = self._article(op)
            what = f"set ticket {ident} priority {body['priority']}"
            await self._call("PUT", f"/tickets/{ident}", what, json=body, ok=(200,))
        elif op.note:
            body = {"ticket_id": numeric_id("zammad", external_id), **self._article(op)}
            await self._call("POST", "/ticket_articles", "add article", json=body, ok=(201,))

    async def resolve(self, external_id: str, op: TicketOp) -> None:
        # Zammad has no "resolved": a recovery closes (`closed_state`) either way.
        await self._set_state(external_id, self.settings.closed_state, op)

    async def reopen(self, external_id: str, op: TicketOp) -> None:
        await self._set_state(external_id, self.settings.open_state, op)

    async def find(self, dedup_key: str) -> str | None:
        """Tag search first (ES), then full-text for the title marker (no ES)."""
        tagged = await self._search(f'tags:"{_tag(dedup_key)}"')
        if tagged:
            return str(min(int(t["id"]) for t in tagged))
        marker = f"[{dedup_key}]"
        titled = [t for t in await self._search(dedup_key) if marker in str(t.get("title", ""))]
        if titled:
            return str(min(int(t["id"]) for t in titled))
        return None

    async def noted(self, external_id: str, marker: str) -> bool:
        ident = numeric_id("zammad", external_id)
        path = f"/ticket_articles/by_ticket/{ident}"
        reply = await self._call("GET", path, f"read articles of ticket {ident}", ok=(200,))
        rows = reply.body if isinstance(reply.body, list) else []
        item = int(marker.rsplit(" ", 1)[-1])
        return any(isinstance(r, dict) and has_marker(str(r.get("body", "")), item) for r in rows)

    async def probe(self) -> None:
        """Any answer but 5xx: Zammad is up (a 401 is an answer too)."""
        reply = await self._call("GET", "/users/me", "probe", ok=tuple(range(200, 500)))
        del reply

    async def aclose(self) -> None:
        await self._close_session()

    # -- helpers -------------------------------------------------------------------------

    def _article(self, op: TicketOp) -> dict[str, Any]:
        return {
            "subject": op.subject,
            "body": html_text(op),
            "content_type": "text/html",
            "type": "note",
            "internal": True,
        }

    async def _set_state(self, external_id: str, state: str, op: TicketOp) -> None:
        body: dict[str, Any] = {"state": state}
        if op.note:
            body["article"] = self._article(op)
        ident = numeric_id("zammad", external_id)
        what = f"set ticket {ident} {state}"
        await self._call("PUT", f"/tickets/{ident}", what, json=body, ok=(200,))

    async def _search(self, query: str) -> list[dict[str, Any]]:
        params = {"query": query, "expand": "true", "limit": "50"}
        reply = await self._call("GET", "/tickets/search", "search", params=params, ok=(200,))
        return _search_rows(reply.body)

    async def _call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        ok: tuple[int, ...],
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> Reply:
        token = self.settings.token.get_secret_value()
        reply = await call(
            self._http(),
            method,
            self._base + path,
            system="zammad",
            what=what,
            secrets=[token],
            headers={"Authorization": f"Token token={token}", "Content-Type": "application/json"},
            json=json,
            params=params,
        )
        if reply.status not in ok:
            text = _error_text(reply.body)
            raise http_error(reply, system="zammad", what=what, text=text, secrets=[token])
        return reply


def _tag(dedup_key: str) -> str:
    """Zammad splits `tags` on commas, so a tag value cannot contain one."""
    return dedup_key.replace(",", "_")


def _ticket_id(reply: Reply) -> str:
    if isinstance(reply.body, dict) and isinstance(reply.body.get("id"), int):
        return str(reply.body["id"])
    raise http_error(
        reply, system="zammad", what="create ticket", text="no id in reply", secrets=()
    )


def _search_rows(body: Any) -> list[dict[str, Any]]:
    """Both shapes: a ticket array (expand=true) or {"tickets": [ids], "assets": …}.

    Rows without an integer id are dropped, so a strange reply cannot crash `find`.
    """
    rows: list[dict[str, Any]] = []
    if isinstance(body, list):
        rows = [t for t in body if isinstance(t, dict)]
    elif isinstance(body, dict):
        assets = body.get("assets", {}).get("Ticket", {})
        for ticket_id in body.get("tickets", []):
            row = assets.get(str(ticket_id), {})
            rows.append({**row, "id": ticket_id} if isinstance(row, dict) else {"id": ticket_id})
    return [r for r in rows if isinstance(r.get("id"), int)]


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("error_human") or body.get("error") or body)
    return str(body)[:300]
