"""A generic JSON webhook as a ticket system, signed like monitord's own ingest API.

Every operation is one `POST <url>` with a JSON body (`op`, `dedup_key`, `external_id`,
`priority`, `changes`, the incident's texts) and these headers:

    X-Monitord-Timestamp: <Unix time, whole seconds>
    X-Monitord-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
    X-Monitord-Dedup-Key: <dedup key>
    Idempotency-Key: <dedup key>:<op>:<outbox item id>

The receiver must be idempotent by `X-Monitord-Dedup-Key` for "open" (a repeated open
answers with the same ticket) and by `Idempotency-Key` for the other operations. It
answers 2xx, optionally with `{"id": "<ticket id>"}`; without an id the dedup key is the
ticket's id. There is no search, so `find` returns None and the receiver's dedup is
what makes a replayed open safe.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from alerts.tickets.base import OwnedSession, Reply, TicketOp, call, http_error
from alerts.tickets.texts import plain_text
from monitord.config.types import Secret
from monitord.signing import signature_header


class WebhookSettings(BaseModel):
    """`tickets.systems[]` entry of kind `webhook`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    secret: Secret
    timeout: float = 10.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>` over `timestamp + "." + body`, as docs/ingest.md specifies."""
    return signature_header(secret, timestamp, body)


class WebhookTickets(OwnedSession):
    """`TicketSystem` that POSTs signed JSON to one URL."""

    kind = "webhook"
    Config: ClassVar[type[WebhookSettings]] = WebhookSettings
    settings: WebhookSettings

    async def open(self, op: TicketOp) -> str:
        reply = await self._post(op, None)
        if isinstance(reply.body, dict) and reply.body.get("id") not in (None, ""):
            return str(reply.body["id"])
        return op.dedup_key

    async def comment(self, external_id: str, op: TicketOp) -> None:
        await self._post(op, external_id)

    async def resolve(self, external_id: str, op: TicketOp) -> None:
        await self._post(op, external_id)

    async def reopen(self, external_id: str, op: TicketOp) -> None:
        await self._post(op, external_id)

    async def find(self, dedup_key: str) -> str | None:
        return None

    async def noted(self, external_id: str, marker: str) -> bool:
        return False  # the receiver is idempotent by Idempotency-Key: sending again is safe

    async def probe(self) -> None:
        """Any answer but 5xx to a GET of the URL: the receiver is up."""
        secret = self.settings.secret.get_secret_value()
        reply = await call(
            self._http(), "GET", self.settings.url, system="webhook", what="probe", secrets=[secret]
        )
        if reply.status >= 500:
            text = _error_text(reply.body)
            raise http_error(reply, system="webhook", what="probe", text=text, secrets=[secret])

    async def aclose(self) -> None:
        await self._close_session()

    async def _post(self, op: TicketOp, external_id: str | None) -> Reply:
        payload: dict[str, Any] = {
            "op": op.op,
            "dedup_key": op.dedup_key,
            "external_id": external_id,
            "subject": op.subject,
            "customer": op.customer,
            "device_id": op.device_id,
            "priority": op.priority,
            "message": op.message,
            "ts": op.ts,
            "event": op.event,
            "close": op.close,
            "changes": list(op.changes),  # what an "update" changed, e.g. ["priority"]
            "text": plain_text(op),
        }
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        secret = self.settings.secret.get_secret_value()
        timestamp = int(self.clock.time())
        headers = {
            "Content-Type": "application/json",
            "X-Monitord-Timestamp": str(timestamp),
            "X-Monitord-Signature": sign(secret, timestamp, body),
            "X-Monitord-Dedup-Key": op.dedup_key,
            "Idempotency-Key": f"{op.dedup_key}:{op.op}:{op.item_id}",
        }
        what = f"{op.op} {op.dedup_key}"
        reply = await call(
            self._http(),
            "POST",
            self.settings.url,
            system="webhook",
            what=what,
            secrets=[secret],
            headers=headers,
            data=body,
        )
        if not 200 <= reply.status < 300:
            text = _error_text(reply.body)
            raise http_error(reply, system="webhook", what=what, text=text, secrets=[secret])
        return reply


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)
    return str(body)[:300]
