"""Request Tracker 5, REST2 (`/REST/2.0`): tickets, comments, statuses, TicketSQL.

The dedup key lives in a ticket custom field (`custom_field`, "ExternalKey"), which
must be applied to every queue used; that is checked once per queue before the first
create, because RT silently ignores an unknown custom field on create (201) and the
ticket would have no key to be found by after a crash. `find` asks TicketSQL for
the key (quoted: `\\` and `'` escaped) and keeps exact matches only, because RT
compares custom fields case-insensitively.

RT answers many errors with HTTP 200 and a message array (a status the lifecycle
does not know: `["Ticket 4: Status 'closed' isn't a valid status for this
ticket."]`), so every status change is confirmed: by RT's own "changed from …
to '<status>'" message, or else by reading the ticket back; a status RT did not
set is a permanent error quoting RT's messages. There is no "closed" in RT's
default lifecycle: a recovery resolves whether the policy says resolve or close.

Notes are comments (internal: no mail to requestors) in text/plain, whose subject
is the operation's marker, so `noted` reads it from the ticket's history.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ConfigDict

from alerts.tickets.base import OwnedSession, Reply, TicketOp, call, http_error, numeric_id
from alerts.tickets.texts import plain_text
from monitord.clock import Clock
from monitord.config.types import Secret
from monitord.errors import DeliveryError, Reason

HISTORY_PAGES = 20  # at 100 transactions a page; a monitored ticket has far fewer


class RtSettings(BaseModel):
    """`alerting.ticket_systems[]` entry of kind `rt`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str  # https://rt.example (REST2 is under /REST/2.0)
    token: Secret  # an auth token (RT::Authen::Token) of the user monitord acts as
    queue: str
    queues: dict[str, str] = {}  # monitord customer name → queue
    custom_field: str = "ExternalKey"  # a ticket custom field applied to those queues
    priorities: dict[str, int] = {"P1": 90, "P2": 70, "P3": 50, "P4": 30}
    notes: Literal["comment", "correspond"] = "comment"  # correspond mails requestors
    open_status: str = "open"
    resolved_status: str = "resolved"
    timeout: float = 10.0


class RtTickets(OwnedSession):
    """`TicketSystem` for Request Tracker 5 (REST2)."""

    kind = "rt"
    Config: ClassVar[type[RtSettings]] = RtSettings
    settings: RtSettings
    API_PATH = "/REST/2.0"

    def __init__(
        self,
        settings: RtSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(settings, session=session, clock=clock)
        self._queues_ok: set[str] = set()

    # -- TicketSystem --------------------------------------------------------------------

    async def open(self, op: TicketOp) -> str:
        s = self.settings
        queue = s.queues.get(op.customer, s.queue)
        await self._check_queue(queue)
        body: dict[str, Any] = {
            "Queue": queue,
            "Subject": op.subject[:200],
            "Content": plain_text(op),
            "ContentType": "text/plain",
            "CustomFields": {s.custom_field: op.dedup_key},
        }
        if op.priority in s.priorities:
            body["Priority"] = s.priorities[op.priority]
        reply = await self._call("POST", "/ticket", "create ticket", json=body, ok=(201,))
        ident = reply.body.get("id") if isinstance(reply.body, dict) else None
        if ident is None or not str(ident).isdigit():
            raise self._error(reply, "create ticket", "no ticket id in the reply")
        return str(ident)

    async def comment(self, external_id: str, op: TicketOp) -> None:
        if op.note:
            await self._note(external_id, op, None)
        if op.priority_changed and op.priority in self.settings.priorities:
            await self._set_priority(external_id, self.settings.priorities[op.priority])

    async def resolve(self, external_id: str, op: TicketOp) -> None:
        await self._set_status(external_id, op, self.settings.resolved_status)

    async def reopen(self, external_id: str, op: TicketOp) -> None:
        await self._set_status(external_id, op, self.settings.open_status)

    async def find(self, dedup_key: str) -> str | None:
        s = self.settings
        query = f"CF.{{{s.custom_field}}} = '{ticketsql_quote(dedup_key)}' AND Status != 'deleted'"
        params = {"query": query, "fields": "CustomFields", "per_page": "100"}
        reply = await self._call("GET", "/tickets", "search", params=params, ok=(200,))
        items = reply.body.get("items", []) if isinstance(reply.body, dict) else []
        exact = [
            int(item["id"])
            for item in items
            if isinstance(item, dict)
            and str(item.get("id", "")).isdigit()
            and dedup_key in _cf_values(item, s.custom_field)
        ]
        return str(min(exact)) if exact else None

    async def noted(self, external_id: str, marker: str) -> bool:
        ident = numeric_id("rt", external_id)
        what = f"read history of ticket {ident}"
        for page in range(1, HISTORY_PAGES + 1):
            params = {"fields": "Type,Data", "per_page": "100", "page": str(page)}
            path = f"/ticket/{ident}/history"
            reply = await self._call("GET", path, what, params=params, ok=(200,))
            body = reply.body if isinstance(reply.body, dict) else {}
            for item in body.get("items", []):
                if isinstance(item, dict) and str(item.get("Data", "")).strip() == marker:
                    return True
            if page >= int(body.get("pages") or 1):
                return False
        return False

    async def probe(self) -> None:
        """Any answer but 5xx: RT is up."""
        await self._call("GET", "/rt", "probe", ok=tuple(range(200, 500)))

    async def aclose(self) -> None:
        await self._close_session()

    # -- helpers -------------------------------------------------------------------------

    async def _check_queue(self, queue: str) -> None:
        """The queue exists and carries the dedup-key custom field (once per process)."""
        if queue in self._queues_ok:
            return
        what = f"read queue {queue!r}"
        reply = await self._call("GET", f"/queue/{_path(queue)}", what, ok=(200, 404))
        if reply.status == 404:
            raise DeliveryError(
                f"rt: unknown queue {queue!r} (or no right to see it)",
                permanent=True,
                reason=Reason.CLIENT_ERROR,
            )
        fields = reply.body.get("TicketCustomFields", []) if isinstance(reply.body, dict) else []
        names = {str(f.get("name")) for f in fields if isinstance(f, dict)}
        if self.settings.custom_field not in names:
            raise DeliveryError(
                f"rt: custom field {self.settings.custom_field!r} is not applied to queue "
                f"{queue!r} (RT would drop the dedup key); apply it in Admin > Custom Fields",
                permanent=True,
                reason=Reason.CLIENT_ERROR,
            )
        self._queues_ok.add(queue)

    async def _note(self, external_id: str, op: TicketOp, status: str | None) -> list[str]:
        ident = numeric_id("rt", external_id)
        body: dict[str, Any] = {
            "Subject": op.marker,
            "Content": plain_text(op),
            "ContentType": "text/plain",
        }
        if status is not None:
            body["Status"] = status
        path = f"/ticket/{ident}/{self.settings.notes}"
        reply = await self._call("POST", path, f"comment on ticket {ident}", json=body, ok=(201,))
        return _messages(reply.body)

    async def _set_priority(self, external_id: str, priority: int) -> None:
        """RT answers a refused field change with 200 and a message: read it back."""
        ident = numeric_id("rt", external_id)
        what = f"set ticket {ident} priority {priority}"
        body = {"Priority": priority}
        await self._call("PUT", f"/ticket/{ident}", what, json=body, ok=(200,))
        await self._confirm(ident, what, "Priority", str(priority), None)

    async def _set_status(self, external_id: str, op: TicketOp, status: str) -> None:
        ident = numeric_id("rt", external_id)
        what = f"set ticket {ident} {status}"
        if op.note:
            messages = await self._note(external_id, op, status)
        else:
            reply = await self._call(
                "PUT", f"/ticket/{ident}", what, json={"Status": status}, ok=(200,)
            )
            messages = _messages(reply.body)
        if any(m.endswith(f"to '{status}'") and "changed from" in m for m in messages):
            return
        await self._confirm(ident, what, "Status", status, "; ".join(messages) or "no message")

    async def _confirm(
        self, ident: int, what: str, field: str, want: str, said: str | None
    ) -> None:
        """RT answers a refused change with HTTP 200 and a message: read `field` back."""
        reply = await self._call("GET", f"/ticket/{ident}", f"read ticket {ident}", ok=(200,))
        current = reply.body.get(field) if isinstance(reply.body, dict) else None
        if current is None or str(current) != want:
            detail = f" ({said})" if said is not None else ""
            raise DeliveryError(
                f"rt: {what}: RT left it {current!r}{detail}"[:1000],
                permanent=True,
                reason=Reason.CLIENT_ERROR,
            )

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
        headers = {"Authorization": f"token {token}"}
        if json is not None:
            headers["Content-Type"] = "application/json"
        reply = await call(
            self._http(),
            method,
            self._base + path,
            system="rt",
            what=what,
            secrets=[token],
            headers=headers,
            json=json,
            params=params,
        )
        if reply.status not in ok:
            raise self._error(reply, what, _error_text(reply.body))
        return reply

    def _error(self, reply: Reply, what: str, text: str) -> DeliveryError:
        token = self.settings.token.get_secret_value()
        return http_error(reply, system="rt", what=what, text=text, secrets=[token])


def ticketsql_quote(value: str) -> str:
    """`value` for a single-quoted TicketSQL string: backslash and quote escaped."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _path(segment: str) -> str:
    return quote(segment, safe="")


def _cf_values(item: dict[str, Any], name: str) -> list[str]:
    for cf in item.get("CustomFields", []):
        if isinstance(cf, dict) and cf.get("name") == name:
            return [str(v) for v in cf.get("values", [])]
    return []


def _messages(body: Any) -> list[str]:
    return [str(m) for m in body] if isinstance(body, list) else []


def _error_text(body: Any) -> str:
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    if isinstance(body, list):
        return "; ".join(str(m) for m in body)[:500]
    return str(body)[:300]
