"""Redmine REST API (`/issues.json`): issues, notes (journals), statuses.

The dedup key lives in an issue custom field (`custom_field_id`, a string field
marked "used as a filter"). Redmine ignores a custom field the project or tracker
does not use, and says so only by a null value in the created issue: such an issue
is recorded (never created twice) and the operation parked (`UnstampedTicket`).
`find` uses the explicit filter form `f[]=cf_N&op[cf_N]==&v[cf_N][]=<key>` with
`status_id=*` (the default lists open issues only, and the short form `cf_N=a|b`
means "a or b"), then keeps exact matches (the match is case-insensitive on MySQL).

Redmine answers a status change it does not allow (an unknown id, a workflow that
forbids it) with 204 and changes nothing, so every status change is read back, and
one that did not happen is a permanent error naming the status it stayed in.

Notes are private by default (`private_notes`) and written in the instance's text
formatting (`textile`, Redmine's default, or `common_mark`), values escaped so no
markup, Redmine link or macro can come from a device name or an RMM message.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from alerts.tickets.base import (
    OwnedSession,
    Reply,
    TicketOp,
    UnstampedTicket,
    call,
    http_error,
    numeric_id,
)
from alerts.tickets.texts import has_marker, markdown_text, textile_text
from monitord.config.types import Secret
from monitord.errors import DeliveryError, Reason

SEARCH_LIMIT = 100


class RedmineSettings(BaseModel):
    """`alerting.ticket_systems[]` entry of kind `redmine`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str  # https://redmine.example
    api_key: Secret
    project: str  # identifier or id
    projects: dict[str, str] = {}  # monitord customer name → project
    tracker_id: int | None = None  # None: the project's default tracker
    custom_field_id: int  # the string custom field holding the dedup key
    priority_ids: dict[str, int] = {}  # P1..P4 → IssuePriority id (None: the default)
    open_status_id: int = 1  # New
    resolved_status_id: int = 3  # Resolved
    closed_status_id: int = 5  # Closed
    private_notes: bool = True
    text_formatting: Literal["textile", "common_mark"] = "textile"
    timeout: float = 10.0


class RedmineTickets(OwnedSession):
    """`TicketSystem` for Redmine."""

    kind = "redmine"
    Config: ClassVar[type[RedmineSettings]] = RedmineSettings
    settings: RedmineSettings

    # -- TicketSystem --------------------------------------------------------------------

    async def open(self, op: TicketOp) -> str:
        s = self.settings
        issue: dict[str, Any] = {
            "project_id": s.projects.get(op.customer, s.project),
            "subject": op.subject[:255],
            "description": self._text(op),
            "custom_fields": [{"id": s.custom_field_id, "value": op.dedup_key}],
        }
        if s.tracker_id is not None:
            issue["tracker_id"] = s.tracker_id
        if op.priority in s.priority_ids:
            issue["priority_id"] = s.priority_ids[op.priority]
        reply = await self._call("POST", "/issues.json", "create issue", {"issue": issue}, (201,))
        created = reply.body.get("issue") if isinstance(reply.body, dict) else None
        if not isinstance(created, dict) or not isinstance(created.get("id"), int):
            raise self._error(reply, "create issue", "no issue id in the reply")
        ident = str(created["id"])
        if op.dedup_key not in _cf_values(created, s.custom_field_id):
            raise UnstampedTicket(
                f"redmine: issue #{ident} was created without the dedup key: custom field "
                f"{s.custom_field_id} is not enabled for its project and tracker",
                ident,
            )
        return ident

    async def comment(self, external_id: str, op: TicketOp) -> None:
        if op.note or self._priority(op) is not None:
            await self._update(external_id, op, None)

    async def resolve(self, external_id: str, op: TicketOp) -> None:
        s = self.settings
        await self._update(
            external_id, op, s.closed_status_id if op.close else s.resolved_status_id
        )

    async def reopen(self, external_id: str, op: TicketOp) -> None:
        await self._update(external_id, op, self.settings.open_status_id)

    async def find(self, dedup_key: str) -> str | None:
        cf = f"cf_{self.settings.custom_field_id}"
        params = [
            ("set_filter", "1"),
            ("f[]", "status_id"),
            ("op[status_id]", "*"),
            ("f[]", cf),
            (f"op[{cf}]", "="),
            (f"v[{cf}][]", dedup_key),
            ("sort", "id"),
            ("limit", str(SEARCH_LIMIT)),
        ]
        reply = await self._call("GET", "/issues.json", "search", None, (200,), params)
        issues = reply.body.get("issues", []) if isinstance(reply.body, dict) else []
        exact = [
            int(i["id"])
            for i in issues
            if isinstance(i, dict)
            and isinstance(i.get("id"), int)
            and dedup_key in _cf_values(i, self.settings.custom_field_id)
        ]
        return str(min(exact)) if exact else None

    async def noted(self, external_id: str, marker: str) -> bool:
        issue = await self._issue(external_id, journals=True)
        item = int(marker.rsplit(" ", 1)[-1])
        return any(
            isinstance(j, dict) and has_marker(str(j.get("notes") or ""), item)
            for j in issue.get("journals", [])
        )

    async def probe(self) -> None:
        """Any answer but 5xx: Redmine is up (a 401 is an answer too)."""
        await self._call("GET", "/users/current.json", "probe", None, tuple(range(200, 500)))

    async def aclose(self) -> None:
        await self._close_session()

    # -- helpers -------------------------------------------------------------------------

    def _text(self, op: TicketOp) -> str:
        if self.settings.text_formatting == "common_mark":
            return markdown_text(op)
        return textile_text(op)

    async def _update(self, external_id: str, op: TicketOp, status_id: int | None) -> None:
        ident = numeric_id("redmine", external_id)
        issue: dict[str, Any] = {}
        if op.note:
            issue["notes"] = self._text(op)
            issue["private_notes"] = self.settings.private_notes
        if status_id is not None:
            issue["status_id"] = status_id
        priority_id = self._priority(op)
        if priority_id is not None:
            issue["priority_id"] = priority_id
        what = f"update issue #{ident}" + (f" to status {status_id}" if status_id else "")
        await self._call("PUT", f"/issues/{ident}.json", what, {"issue": issue}, (200, 204))
        if status_id is None:
            return
        current = (await self._issue(external_id)).get("status", {})
        if current.get("id") != status_id:
            raise DeliveryError(
                f"redmine: {what}: Redmine ignored the status change and left it "
                f"{current.get('name')!r} (status {current.get('id')}); is the status "
                "allowed by the workflow of this tracker and role?",
                permanent=True,
                reason=Reason.CLIENT_ERROR,
            )

    def _priority(self, op: TicketOp) -> int | None:
        """The IssuePriority id to set: only when the incident's priority changed, so a
        priority the desk set by hand is not overwritten by every note."""
        return self.settings.priority_ids.get(op.priority) if op.priority_changed else None

    async def _issue(self, external_id: str, *, journals: bool = False) -> dict[str, Any]:
        ident = numeric_id("redmine", external_id)
        params = {"include": "journals"} if journals else None
        path = f"/issues/{ident}.json"
        reply = await self._call("GET", path, f"read issue #{ident}", None, (200,), params)
        issue = reply.body.get("issue") if isinstance(reply.body, dict) else None
        if not isinstance(issue, dict):
            raise self._error(reply, f"read issue #{ident}", "no issue in the reply")
        return issue

    async def _call(
        self,
        method: str,
        path: str,
        what: str,
        json: Any,
        ok: tuple[int, ...],
        params: Any = None,
    ) -> Reply:
        key = self.settings.api_key.get_secret_value()
        headers = {"X-Redmine-API-Key": key}
        if json is not None:
            headers["Content-Type"] = "application/json"
        reply = await call(
            self._http(),
            method,
            self._base + path,
            system="redmine",
            what=what,
            secrets=[key],
            headers=headers,
            json=json,
            params=params,
        )
        if reply.status not in ok:
            raise self._error(reply, what, _error_text(reply))
        return reply

    def _error(self, reply: Reply, what: str, text: str) -> DeliveryError:
        key = self.settings.api_key.get_secret_value()
        return http_error(reply, system="redmine", what=what, text=text, secrets=[key])


def _cf_values(issue: dict[str, Any], field_id: int) -> list[str]:
    for cf in issue.get("custom_fields", []):
        if isinstance(cf, dict) and cf.get("id") == field_id:
            value = cf.get("value")
            return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return []


def _error_text(reply: Reply) -> str:
    """Redmine's `{"errors": [...]}`, else a word for its empty 401/403/404 bodies."""
    body = reply.body
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(str(e) for e in body["errors"])[:500]
    if not body:
        return {
            401: "unauthorized (check api_key, and that the REST API is enabled)",
            403: "forbidden (the api_key's user lacks the permission)",
            404: "not found",
        }.get(reply.status, "no error text")
    return str(body)[:300]
