"""The ticket-system interface and the one outbox deliverer that drives every system.

A `TicketSystem` speaks one external helpdesk's API: open, comment, resolve, reopen,
find-by-dedup-key, "is this note there already" and a liveness probe.
`TicketDeliverer` turns outbox items into those calls, with an exactly-once effect:

- no ticket system has an idempotency key on create, so "open" first asks the local
  `TicketMap` (the source of truth), then the system itself (`find`: the dedup key is
  stamped on every ticket), and only then creates; a crash between "created" and
  "recorded" therefore adopts the orphan instead of opening a second ticket;
- every note ends with its operation's marker (`texts.marker`), and an operation is
  recorded in the map's intent log before its first request: a retry of one that may
  have reached the system asks `noted` first and does not write the note twice.

Texts are rendered per system by `alerts.tickets.texts`; values are never injected
as markup.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

import aiohttp

from alerts.outbox import OutboxItem
from alerts.tickets.texts import marker
from monitord.clock import Clock, SystemClock
from monitord.errors import DeliveryError, Reason, classify_http

log = logging.getLogger(__name__)

OPS = ("open", "comment", "resolve", "reopen")


@dataclass(frozen=True, slots=True)
class TicketOp:
    """One ticket operation, decoded from an outbox item's payload.

    `event` is the notification behind it (trigger, reopen, update, acknowledge,
    resolve, link); `facts`, `evidence` and `link` are the text's parts; `close`
    asks a resolve to close where the system tells the two apart; `note` False
    means "the note is on the ticket already: only set the status". `changes` names what
    an "update" changed ("priority", "members", "verdict"); a priority change is carried
    into the system's own priority field, not only into the note.
    """

    op: str
    dedup_key: str
    subject: str
    customer: str
    device_id: str
    priority: str
    message: str
    ts: float
    incident_id: int | None = None
    item_id: int = 0
    event: str = ""
    facts: tuple[tuple[str, str], ...] = ()
    evidence: tuple[str, ...] = ()
    link: str | None = None
    close: bool = False
    note: bool = True
    changes: tuple[str, ...] = ()

    @property
    def priority_changed(self) -> bool:
        return "priority" in self.changes

    @property
    def marker(self) -> str:
        return marker(self.item_id)

    @classmethod
    def from_item(cls, item: OutboxItem) -> TicketOp:
        """Decode; raises DeliveryError(permanent) for an unknown op or a malformed payload."""
        if item.op not in OPS:
            raise DeliveryError(
                f"unknown ticket operation {item.op!r}", permanent=True, reason=Reason.CLIENT_ERROR
            )
        p = item.payload
        try:
            return cls(
                op=item.op,
                dedup_key=str(p["dedup_key"]),
                subject=str(p["subject"]),
                customer=str(p["customer"] or ""),
                device_id=str(p["device_id"] or ""),
                priority=str(p["priority"]),
                message=str(p["message"]),
                ts=float(p["ts"]),
                incident_id=item.incident_id,
                item_id=item.id,
                event=str(p.get("event", "")),
                facts=tuple((str(k), str(v)) for k, v in p.get("facts", ())),
                evidence=tuple(str(line) for line in p.get("evidence", ())),
                link=str(p["link"]) if p.get("link") else None,
                close=bool(p.get("close", False)),
                changes=tuple(str(c) for c in p.get("changes", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DeliveryError(
                f"malformed ticket payload in outbox item {item.id}: {exc!r}",
                permanent=True,
                reason=Reason.CLIENT_ERROR,
            ) from exc


class TicketSystem(Protocol):
    """One external ticket system. Every method raises DeliveryError and nothing else.

    `open` returns the system's ticket id as a string; `find` returns the id of a ticket
    stamped with `dedup_key`, or None. `comment`, `resolve` and `reopen` write the
    op's note (unless `op.note` is False) and set the status in as few requests as
    the API allows. `noted` says whether a note carrying `marker` is on the ticket.
    `probe` returns when the system answers at all (any HTTP reply but 5xx), for
    noticing the end of an outage. Secrets never appear in the errors raised.
    Constructors are uniform so the registry can build any system:
    `Cls(Cls.Config.model_validate(raw), session=session_or_None, clock=clock)`; with
    no session given the system opens (and `aclose` closes) its own.
    """

    kind: str

    async def open(self, op: TicketOp) -> str: ...

    async def comment(self, external_id: str, op: TicketOp) -> None: ...

    async def resolve(self, external_id: str, op: TicketOp) -> None: ...

    async def reopen(self, external_id: str, op: TicketOp) -> None: ...

    async def find(self, dedup_key: str) -> str | None: ...

    async def noted(self, external_id: str, marker: str) -> bool: ...

    async def probe(self) -> None: ...

    async def aclose(self) -> None: ...


class TicketMap(Protocol):
    """The durable local map (system name, dedup key) → external ticket id, and the
    intent log of operations.

    The source of truth (remote search is eventually consistent). A persistent
    implementation must raise only DeliveryError (retryable) on storage failure,
    because the Dispatcher catches nothing else.
    """

    async def get(self, system: str, dedup_key: str) -> str | None: ...

    async def put(
        self, system: str, dedup_key: str, external_id: str, incident_id: int | None = None
    ) -> None: ...

    async def attempted(self, system: str, item_id: int) -> bool:
        """Record an attempt of outbox item `item_id`; True if one was recorded before."""
        ...


class MemoryTicketMap:
    """An in-memory `TicketMap` (tests; the daemon needs a persistent one)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], str] = {}
        self.attempts: set[tuple[str, int]] = set()

    async def get(self, system: str, dedup_key: str) -> str | None:
        return self.rows.get((system, dedup_key))

    async def put(
        self, system: str, dedup_key: str, external_id: str, incident_id: int | None = None
    ) -> None:
        self.rows[(system, dedup_key)] = external_id

    async def attempted(self, system: str, item_id: int) -> bool:
        seen = (system, item_id) in self.attempts
        self.attempts.add((system, item_id))
        return seen


class UnstampedTicket(DeliveryError):
    """The system created ticket `external_id` but dropped its dedup key (a custom
    field it does not apply): recorded, so it is never created twice, and parked."""

    def __init__(self, message: str, external_id: str) -> None:
        super().__init__(message, permanent=True, reason=Reason.CLIENT_ERROR)
        self.external_id = external_id


class TicketDeliverer:
    """The outbox `Deliverer` for any `TicketSystem` (target name = `name`).

    "open" is idempotent: local map, then `system.find`, then create, then record.
    "reopen" of an incident without a ticket opens one (it was not ticketed before).
    comment/resolve/reopen need the ticket: local map, else `find`; when neither knows
    it the item is parked (permanent DeliveryError), because nothing to update exists.
    """

    def __init__(self, name: str, system: TicketSystem, tickets: TicketMap) -> None:
        self.name = name
        self.system = system
        self.tickets = tickets

    async def deliver(self, item: OutboxItem) -> None:
        op = TicketOp.from_item(item)
        retry = await self.tickets.attempted(self.name, item.id)
        recorded = await self.tickets.get(self.name, op.dedup_key)
        external_id = recorded or await self._adopt(op.dedup_key)
        if external_id is None:
            await self._create(op)
            return
        if recorded is None:
            await self.tickets.put(self.name, op.dedup_key, external_id, op.incident_id)
        if op.op == "open":
            return  # a replay, or an orphan adopted after a crash: the ticket is there
        if retry and await self.system.noted(external_id, op.marker):
            if op.op == "comment" and not op.priority_changed:
                return
            op = replace(op, note=False)  # the note went in before: only status/priority
        if op.op == "comment":
            await self.system.comment(external_id, op)
        elif op.op == "resolve":
            await self.system.resolve(external_id, op)
        elif op.op == "reopen":
            await self.system.reopen(external_id, op)

    async def _create(self, op: TicketOp) -> None:
        """A ticket for an incident that has none (open, or a reopen of one never ticketed)."""
        if op.op not in ("open", "reopen"):
            raise DeliveryError(
                f"{self.name}: no ticket for {op.dedup_key!r} to {op.op}",
                permanent=True,
                reason=Reason.CLIENT_ERROR,
            )
        try:
            external_id = await self.system.open(op)
        except UnstampedTicket as exc:
            await self.tickets.put(self.name, op.dedup_key, exc.external_id, op.incident_id)
            raise
        log.info(
            "ticket opened",
            extra={"system": self.name, "ticket": external_id, "key": op.dedup_key},
        )
        await self.tickets.put(self.name, op.dedup_key, external_id, op.incident_id)

    async def _adopt(self, dedup_key: str) -> str | None:
        """The ticket the system holds for `dedup_key` (a crash lost our record), or None."""
        found = await self.system.find(dedup_key)
        if found is not None:
            log.info(
                "ticket adopted by dedup key",
                extra={"system": self.name, "ticket": found, "key": dedup_key},
            )
        return found


# -- HTTP -------------------------------------------------------------------------------


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every non-empty secret replaced by `<secret>`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<secret>")
    return text


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    system: str,
    what: str,
    secrets: Iterable[str],
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    data: bytes | None = None,
    params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
) -> Reply:
    """One HTTP request; returns the reply for any status (callers decide what is an error).

    Network failures and timeouts become retryable DeliveryError; the message names
    the system and `what` (never a URL with credentials, never a header).
    """
    try:
        async with session.request(
            method, url, headers=headers, json=json, data=data, params=params
        ) as resp:
            raw = await resp.read()
            body: Any = raw.decode("utf-8", "replace")
            if raw and "json" in resp.content_type:
                with contextlib.suppress(ValueError):
                    body = jsonlib.loads(raw)
            return Reply(resp.status, body, dict(resp.headers))
    except TimeoutError as exc:
        raise DeliveryError(
            f"{system}: {what}: timed out", permanent=False, reason=Reason.TIMEOUT
        ) from exc
    except aiohttp.ClientError as exc:
        text = redact(f"{type(exc).__name__}: {exc}", secrets)
        raise DeliveryError(
            f"{system}: {what}: {text}", permanent=False, reason=Reason.NETWORK
        ) from exc


def http_error(
    reply: Reply, *, system: str, what: str, text: str, secrets: Iterable[str]
) -> DeliveryError:
    """The DeliveryError for an HTTP error reply, carrying the system's own error text."""
    permanent, reason = classify_http(reply.status)
    message = redact(f"{system}: {what}: HTTP {reply.status}: {text}", secrets)[:1000]
    return DeliveryError(message, permanent=permanent, reason=reason)


def numeric_id(system: str, external_id: str) -> int:
    """A numeric ticket id; a corrupt stored id is a permanent DeliveryError, not a crash."""
    try:
        return int(external_id)
    except ValueError as exc:
        raise DeliveryError(
            f"{system}: ticket id {external_id!r} is not a number",
            permanent=True,
            reason=Reason.CLIENT_ERROR,
        ) from exc


class OwnedSession:
    """The base of an HTTP ticket system: the uniform constructor, and the HTTP
    session — the daemon's shared one when given, else its own, opened on first
    use with the adapter's `settings.timeout` and closed by it.

    `API_PATH` is appended to `settings.url` to give `self._base`.
    """

    API_PATH: ClassVar[str] = ""

    def __init__(
        self,
        settings: Any,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._session = session
        self._own_session = session is None
        url = getattr(settings, "url", "")
        self._base = str(url).rstrip("/") + self.API_PATH

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)
            self._own_session = True
        return self._session

    async def _close_session(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None
