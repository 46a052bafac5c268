"""HTTP ingest of external events: `POST /api/v1/events` (docs/ingest.md).

Backup jobs, NAS boxes, scripts and other tools report what they found as
JSON (`ingest_schema`), authenticated per source by a bearer token or an
HMAC signature (`ingest_auth`). Each report becomes a
`correlator.events.Event` handed to `App.submit`, so it is written, correlated
and notified like monitord's own results, with `source="ingest:<name>"` of
the authenticated source.

A request is all or nothing: it is refused as a whole, before anything is
submitted, if any event is invalid. Refusals are 4xx with a precise message
and are counted in `monitord_ingest_requests_total{result}`; accepted ones
answer 202 `{"accepted": N, "events": [...]}` (queued for the next write,
within `daemon.write_interval`).

Identity rule: an event's fingerprint is
`fingerprint(customer, device_id, category or check)`, the function every
source uses, so repeated reports of one problem are one incident. monitord's
own checks use the problem `check:<name>`: an ingest event merges with them
only where the correlator maps categories, never by a coincidence of names.

Device resolution, in order: `device` as "customer/name" or as a name within
`customer`, then `address` among that customer's devices (private addresses
repeat across customers, so the first device anywhere with that address is
not enough). An event for a device the inventory lacks is never dropped.
Convention for such an *unknown device* event:

- `device_id` is None (the correlator opens an "unknown device" incident);
- the fingerprint is `fingerprint(customer, "unknown:<claimed>", problem)`:
  one incident per claimed device and problem, resolved by its own `ok`;
- the message starts with the claimed name, quoted, and where it was claimed:
  `'acme-nas9' (acme, address 10.0.0.9): nightly-backup: …`
  (`claimed_device()` reads it back);
- the response lists it as `"unknown_device": "acme-nas9"`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from correlator.events import Event, EventKind, fingerprint
from monitord.clock import Clock
from monitord.config import LoadedConfig
from monitord.config.model import IngestConfig
from monitord.inventory import Device, Inventory
from monitord.model import Status
from monitord.sources import ingest_auth as auth
from monitord.sources.ingest_schema import IngestEvent, SchemaError, parse_body

log = logging.getLogger(__name__)

_STATUS = {s.label: s for s in Status}
_CLAIMED = re.compile(r"^'([^']+)' \(")
_READ_CHUNK = 64 * 1024
_T = TypeVar("_T")


class Result(StrEnum):
    """Outcome of one ingest request: the closed label set of the request metric."""

    ACCEPTED = "accepted"
    UNAUTHORIZED = "unauthorized"  # 401: no credentials
    FORBIDDEN = "forbidden"  # 403: wrong, expired or replayed credentials
    INVALID = "invalid"  # 400 malformed JSON, 422 schema
    TOO_LARGE = "too_large"  # 413
    UNSUPPORTED = "unsupported"  # 415 content type
    DISABLED = "disabled"  # 404: ingest.enabled is false
    UNAVAILABLE = "unavailable"  # 503: the daemon is not running (yet)


class Refused(Exception):
    """A refused request: HTTP status, metric result, message for the sender."""

    def __init__(
        self, status: int, result: Result, message: str, errors: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.result, self.message, self.errors = status, result, message, errors

    def response(self) -> web.Response:
        body: dict[str, Any] = {"error": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        headers = {"WWW-Authenticate": 'Bearer realm="monitord"'} if self.status == 401 else None
        return web.json_response(body, status=self.status, headers=headers)


@dataclass(frozen=True, slots=True)
class Converted:
    event: Event
    unknown_device: str | None  # the claimed device, when the inventory has no such device


def find_device(inventory: Inventory, item: IngestEvent) -> Device | None:
    """The inventory device `item` is about: by name (or "customer/name") within its
    customer, else by address within its customer; None when unknown."""
    if item.device is not None:
        found = inventory.devices.get(f"{item.customer}/{item.device.rpartition('/')[2]}")
        if found is not None:
            return found
    if item.address is None:
        return None
    first = inventory.device_for_address(item.address)
    if first is None or first.customer == item.customer:
        return first
    for device in inventory.devices.values():
        if device.customer == item.customer and device.address == item.address:
            return device
    return None


def to_event(item: IngestEvent, inventory: Inventory, source: str, now: float) -> Converted:
    """The correlator event for a validated `item` from the authenticated `source`."""
    status = _STATUS[item.status]
    problem = item.category or item.check
    text = f"{item.check}: {item.message or item.status}{_details(item)}"
    device = find_device(inventory, item)
    claimed: str | None = None
    if device is not None:
        device_id: str | None = device.id
        fp = fingerprint(item.customer, device.id, problem)
    else:
        claimed = item.device.rpartition("/")[2] if item.device else str(item.address)
        where = [item.customer]
        if item.customer not in inventory.customers:
            where.append("customer not configured")
        if item.address is not None and item.address != claimed:
            where.append(f"address {item.address}")
        text = f"{claimed!r} ({', '.join(where)}): {text}"
        device_id, fp = None, fingerprint(item.customer, f"unknown:{claimed}", problem)
    event = Event(
        ts=item.time.timestamp() if item.time is not None else now,
        source=f"ingest:{source}",
        kind=EventKind.RECOVERY if status == Status.OK else EventKind.PROBLEM,
        fingerprint=fp,
        customer=item.customer,
        device_id=device_id,
        check_id=None,  # not one of monitord's checks: nothing can re-run it to confirm
        status=status,
        message=text,
        category=item.category or "",
    )
    return Converted(event, claimed)


def _details(item: IngestEvent) -> str:
    """Labels (and the reporting tool) as ` [k=v …]`: the events table keeps the
    message only, so they are kept there rather than dropped."""
    pairs = ([("source", item.source)] if item.source else []) + sorted(item.labels.items())
    return " [" + " ".join(f"{k}={v}" for k, v in pairs) + "]" if pairs else ""


def claimed_device(event: Event) -> str | None:
    """The device name an ingest event claimed when the inventory did not know it
    (the unknown-device convention above); None for any other event."""
    if event.device_id is not None or not event.source.startswith("ingest:"):
        return None
    match = _CLAIMED.match(event.message)
    return match.group(1) if match else None


class IngestHost(Protocol):
    """What the endpoint needs from the daemon (`monitord.app.App` provides it)."""

    @property
    def loaded(self) -> LoadedConfig: ...
    @property
    def inventory(self) -> Inventory: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def registry(self) -> CollectorRegistry: ...
    @property
    def started(self) -> bool: ...
    def submit(self, event: Event) -> None: ...


class IngestEndpoint:
    """The `POST /api/v1/events` handler. Reads the ingest config at every request,
    so a reload's new tokens apply at once. Build one per App (it registers its
    metrics in the App's registry)."""

    def __init__(self, host: IngestHost) -> None:
        self.host = host
        self.replay = auth.ReplayGuard()
        self.requests = Counter(
            "monitord_ingest_requests_total",
            "Event ingest requests, by result",
            ["result"],
            registry=host.registry,
        )
        self.events = Counter(
            "monitord_ingest_events_total",
            "Ingested events, by whether the inventory knew their device",
            ["device"],
            registry=host.registry,
        )
        for result in Result:
            self.requests.labels(result.value)
        for known in ("known", "unknown"):
            self.events.labels(known)
        self._refusals: dict[str, Result] = {}  # peer → last refusal (edge-triggered logs)

    async def handle(self, request: web.Request) -> web.Response:
        """202 `{"accepted": N, "events": [...]}`, or the refusal as JSON `{"error": …}`."""
        peer = request.remote or "-"
        try:
            source, converted = await self._accept(request)
        except Refused as exc:
            self.requests.labels(exc.result.value).inc()
            self._log_refusal(peer, exc)
            return exc.response()
        self.requests.labels(Result.ACCEPTED.value).inc()
        if self._refusals.pop(peer, None) is not None:
            log.info("ingest from %s accepted again", peer, extra={"source": source})
        log.debug("ingested %d events", len(converted), extra={"source": source, "peer": peer})
        return web.json_response(
            {"accepted": len(converted), "events": [_summary(c) for c in converted]}, status=202
        )

    async def _accept(self, request: web.Request) -> tuple[str, list[Converted]]:
        config = self.host.loaded.config.ingest
        if not config.enabled:
            raise Refused(404, Result.DISABLED, "event ingest is disabled (ingest.enabled: false)")
        if not self.host.started:
            raise Refused(503, Result.UNAVAILABLE, "monitord is starting or stopping; retry")
        now = self.host.clock.time()
        credentials = _guard(lambda: auth.presented(request.headers, now))
        source = (
            _guard(lambda: auth.token_source(config, credentials))
            if isinstance(credentials, auth.Bearer)
            else None
        )
        _content_type(request)
        body = await _read_body(request, config.max_body_bytes)
        if isinstance(credentials, auth.Signed):
            source = self._verify_signed(config, credentials, body)
        assert source is not None
        try:
            items = parse_body(body, now)
        except SchemaError as exc:
            raise Refused(exc.status, Result.INVALID, exc.message, exc.errors) from None
        converted = [to_event(item, self.host.inventory, source, now) for item in items]
        for c in converted:  # no await in between: the whole batch lands in one write
            self.host.submit(c.event)
            self.events.labels("unknown" if c.unknown_device else "known").inc()
        if isinstance(credentials, auth.Signed):
            self.replay.remember(credentials, now)
        return source, converted

    def _verify_signed(self, config: IngestConfig, credentials: auth.Signed, body: bytes) -> str:
        source = _guard(lambda: auth.signature_source(config, credentials, body))
        _guard(lambda: self.replay.check(credentials))
        return source

    def _log_refusal(self, peer: str, exc: Refused) -> None:
        """One line when a peer's requests start failing, or fail differently."""
        if self._refusals.get(peer) == exc.result:
            return
        if len(self._refusals) >= 1024:  # bounded: a scan from many addresses
            self._refusals.clear()
        self._refusals[peer] = exc.result
        log.warning(
            "ingest request from %s refused (%d): %s",
            peer,
            exc.status,
            exc.message,
            extra={"peer": peer, "result": exc.result.value},
        )


def _guard(check: Callable[[], _T]) -> _T:
    """Run an authentication step, turning AuthError into a 401/403 refusal."""
    try:
        return check()
    except auth.AuthError as exc:
        if exc.missing:
            raise Refused(401, Result.UNAUTHORIZED, exc.message) from None
        raise Refused(403, Result.FORBIDDEN, exc.message) from None


def _content_type(request: web.Request) -> None:
    if "Content-Type" not in request.headers:
        raise Refused(415, Result.UNSUPPORTED, "content type must be application/json, got none")
    if request.content_type != "application/json":
        raise Refused(
            415,
            Result.UNSUPPORTED,
            f"content type must be application/json, got {request.content_type[:60]!r}",
        )
    charset = request.charset
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        raise Refused(415, Result.UNSUPPORTED, f"charset must be utf-8, got {charset[:30]!r}")


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to exceed `limit` bytes."""
    length = request.content_length
    if length is not None and length > limit:
        raise Refused(
            413,
            Result.TOO_LARGE,
            f"body is {length} bytes; the limit is {limit} (ingest.max_body_bytes)",
        )
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise Refused(
                413,
                Result.TOO_LARGE,
                f"body exceeds the limit of {limit} bytes (ingest.max_body_bytes)",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _summary(c: Converted) -> dict[str, Any]:
    out: dict[str, Any] = {
        "fingerprint": c.event.fingerprint,
        "kind": c.event.kind.value,
        "device": c.event.device_id,
    }
    if c.unknown_device is not None:
        out["unknown_device"] = c.unknown_device
    return out
