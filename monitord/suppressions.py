"""The suppression book: the silences and maintenance windows in force, from the
config and from the HTTP API / CLI.

Config entries are read-only here (source "config", ids `config-1`, …: edit
the file and reload). Entries made at runtime (source "api", numeric ids) are
stored in the database first and applied in memory only then, as the heartbeat
book does, so what mutes is what a restart loads. Ending one early keeps its
row (`ended_at`, `ended_by`): the history stays.

The correlator's mute rule reads `windows()` and `silences()` on every
decision, so they are plain tuples rebuilt only when something changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from correlator.windows import customer_zones, occurrence, silence_active, window_zone

# The config's own cross-reference rules, so an API entry is held to the same
# standard as one in the file (unknown customer, site, device).
from monitord.config.correlation import _check_maintenance, _check_silences
from monitord.config.model import Config, MaintenanceWindow, Silence
from monitord.config.yamlsource import format_path
from monitord.errors import MonitordError, StorageError
from monitord.inventory import Device
from monitord.storage.suppressions import (
    StoredSuppression,
    end_suppression,
    load_suppressions,
    save_suppression,
)

log = logging.getLogger(__name__)

Kind = Literal["silence", "maintenance"]
Spec = Silence | MaintenanceWindow
MAX_AUTHOR = 100  # the database column's width
_MESSAGES = {"extra_forbidden": "unknown field", "missing": "missing required field"}


@dataclass(frozen=True, slots=True)
class Entry:
    """One silence or window with where it came from and who set it."""

    id: str  # "12" (api) or "config-3" (the 3rd of its kind in the config)
    kind: Kind
    source: Literal["config", "api"]
    spec: Spec
    created_by: str
    created_at: float | None = None  # None for config entries
    expires_at: float | None = None  # when it stops by itself; None: never
    ended_at: float | None = None
    ended_by: str | None = None


class Refused(MonitordError):
    """A request the book will not carry out; `status` is its HTTP answer
    (404 unknown, 409 a config entry, 422 invalid with located `errors`)."""

    def __init__(self, status: int, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


class SuppressionBook:
    def __init__(self, config: Config, now: Callable[[], float]) -> None:
        self._now = now
        self.engine: Engine | None = None
        self.config = config
        self._from_config: tuple[Entry, ...] = ()
        self._api: dict[int, Entry] = {}
        self._windows: tuple[MaintenanceWindow, ...] = ()
        self._silences: tuple[Silence, ...] = ()
        self.use_config(config)

    # what the correlator reads ------------------------------------------------
    def windows(self) -> tuple[MaintenanceWindow, ...]:
        return self._windows

    def silences(self) -> tuple[Silence, ...]:
        return self._silences

    # config and database --------------------------------------------------------
    def use_config(self, config: Config) -> None:
        """Take the config's entries (at start and on every reload)."""
        self.config = config
        silences = [
            Entry(f"config-{i}", "silence", "config", s, s.author, expires_at=_ts(s.expiry))
            for i, s in enumerate(config.silences, 1)
        ]
        windows = [
            Entry(f"config-{i}", "maintenance", "config", w, w.author or "config file")
            for i, w in enumerate(config.maintenance, 1)
        ]
        self._from_config = (*silences, *windows)
        self._rebuild()

    async def load(self, engine: Engine) -> None:
        """Load the API-made entries still in force. Raises StorageError."""
        self.engine = engine
        try:
            rows = await asyncio.to_thread(self._read, engine, self._now(), None, False)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot load silences and windows: {_first_line(exc)}") from exc
        self._api = {}
        for row in rows:
            try:
                self._api[row.id] = _entry(row)
            except ValidationError as exc:  # a model grew stricter since it was stored
                log.error("stored %s #%d ignored: %s", row.kind, row.id, exc)
        self._rebuild()

    # listing -----------------------------------------------------------------------
    def entries(self, kind: Kind) -> list[Entry]:
        """Config entries, then API entries in force or still to come."""
        now = self._now()
        self._prune(now)
        return [e for e in (*self._from_config, *self._api.values()) if e.kind == kind]

    async def history(self, kind: Kind) -> list[Entry]:
        """Config entries, then every API entry ever made (ended ones too)."""
        if self.engine is None:
            raise StorageError("the daemon is starting")
        try:
            rows = await asyncio.to_thread(self._read, self.engine, self._now(), kind, True)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read silences and windows: {_first_line(exc)}") from exc
        stored = []
        for row in rows:
            try:
                stored.append(_entry(row))
            except ValidationError:
                continue  # logged at load
        return [e for e in self._from_config if e.kind == kind] + stored

    def state(self, entry: Entry, now: float) -> tuple[bool, float | None]:
        """(whether it mutes at `now`, until when if so)."""
        spec = entry.spec
        if isinstance(spec, Silence):
            return silence_active(spec, now), _ts(spec.expiry)
        span = occurrence(spec, now, zone=window_zone(spec, self.zones))
        return span is not None, None if span is None else span[1]

    @property
    def zones(self) -> dict[str, str]:
        return customer_zones(self.config.customers)

    # changes -------------------------------------------------------------------------
    async def add(self, spec: Spec) -> Entry:
        """Store a validated silence or window, then apply it. Raises StorageError."""
        if self.engine is None:
            raise StorageError("the daemon is starting")
        kind: Kind = "silence" if isinstance(spec, Silence) else "maintenance"
        now = self._now()
        expires = _ts(spec.expiry) if isinstance(spec, Silence) else window_expiry(spec, self.zones)
        data = spec.model_dump(mode="json", exclude={"id"} if isinstance(spec, Silence) else None)
        try:
            ident = await asyncio.to_thread(
                _save, self.engine, kind, data, spec.author, now, expires
            )
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot store the {kind}: {_first_line(exc)}") from exc
        if isinstance(spec, Silence):
            spec = spec.model_copy(update={"id": ident})  # its reason then names it
        entry = Entry(str(ident), kind, "api", spec, spec.author, now, expires)
        self._api[ident] = entry
        self._rebuild()
        log.info("%s #%d added by %s", kind, ident, spec.author, extra={"reason": spec.reason})
        return entry

    async def end(self, kind: Kind, ident: str, by: str | None) -> Entry:
        """Expire a silence or delete a window now (its row stays, marked ended).
        Raises Refused (404, 409) or StorageError."""
        noun = "silence" if kind == "silence" else "maintenance window"
        for entry in self._from_config:
            if entry.kind == kind and entry.id == ident:
                raise Refused(409, f"{noun} {ident} is defined in the config; edit the file")
        live = self._api.get(int(ident)) if ident.isascii() and ident.isdigit() else None
        if live is None or live.kind != kind:
            raise Refused(404, f"no active {noun} #{ident}")
        if self.engine is None:
            raise StorageError("the daemon is starting")
        now = self._now()
        try:
            done = await asyncio.to_thread(_end, self.engine, int(ident), kind, now, by)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot end the {noun}: {_first_line(exc)}") from exc
        self._api.pop(int(ident), None)
        self._rebuild()
        if not done:  # ended by someone else in the meantime
            raise Refused(404, f"no active {noun} #{ident}")
        log.info("%s #%s ended by %s", kind, ident, by or "(unnamed)")
        return replace(live, ended_at=now, ended_by=by)

    # helpers ---------------------------------------------------------------------------
    def _rebuild(self) -> None:
        entries = (*self._from_config, *self._api.values())
        self._windows = tuple(e.spec for e in entries if isinstance(e.spec, MaintenanceWindow))
        self._silences = tuple(e.spec for e in entries if isinstance(e.spec, Silence))

    def _prune(self, now: float) -> None:
        """Forget API entries that ran out (the database keeps them)."""
        over = [i for i, e in self._api.items() if e.expires_at is not None and e.expires_at <= now]
        for ident in over:
            del self._api[ident]
        if over:
            self._rebuild()

    @staticmethod
    def _read(
        engine: Engine, now: float, kind: str | None, history: bool
    ) -> list[StoredSuppression]:
        with engine.connect() as conn:
            return load_suppressions(conn, now, kind=kind, history=history)


# -- validation of what the API receives --------------------------------------------------


def parse_silence(
    data: Any, *, now: float, config: Config, devices: Mapping[str, Device]
) -> Silence:
    """A silence from an API body, held to the model's and the config's rules,
    plus: an author, an expiry in the future. Without `start` it starts now.
    Raises Refused(422) listing every located problem."""
    body = _object(data)
    errors = ["id: assigned by the daemon; leave it out"] if "id" in body else []
    body.pop("id", None)
    if body.get("start") is None:
        # Whole seconds: a start rounded up past `now` would not be in force yet.
        body["start"] = datetime.fromtimestamp(int(now), UTC).isoformat()
    try:
        silence = Silence.model_validate(body)
    except ValidationError as exc:
        raise _invalid(errors + [_located(e) for e in exc.errors()]) from None
    errors += _author(silence.author)
    if silence.expiry is None:
        errors.append("expiry: required here (a permanent silence belongs in the config)")
    elif silence.expiry.timestamp() <= now:
        errors.append(f"expiry: {silence.expiry.isoformat()} is in the past")
    customers = {c.name: c for c in config.customers}
    errors += [
        f"{format_path(path[2:])}: {msg}"
        for path, msg in _check_silences((silence,), customers, devices)
    ]
    if errors:
        raise _invalid(errors)
    return silence


def parse_window(
    data: Any, *, now: float, config: Config, devices: Mapping[str, Device]
) -> MaintenanceWindow:
    """A maintenance window from an API body, held to the model's and the
    config's rules, plus: an author, and not already over. Raises Refused(422)."""
    body = _object(data)
    try:
        window = MaintenanceWindow.model_validate(body)
    except ValidationError as exc:
        raise _invalid([_located(e) for e in exc.errors()]) from None
    errors = _author(window.author)
    customers = {c.name: c for c in config.customers}
    errors += [
        f"{format_path(path[2:])}: {msg}"
        for path, msg in _check_maintenance((window,), customers, devices)
    ]
    if not errors:  # the zone needs a known customer
        expires = window_expiry(window, customer_zones(config.customers))
        if expires is not None and expires <= now:
            field = "end" if window.end is not None else "duration"
            errors.append(f"{field}: the window is over already")
    if errors:
        raise _invalid(errors)
    return window


def window_expiry(window: MaintenanceWindow, zones: Mapping[str, str]) -> float | None:
    """When `window` stops for good: a one-off's end, a recurring one's `end`
    bound; None when it recurs forever."""
    zone = window_zone(window, zones)

    def instant(value: datetime) -> float:  # naive: wall-clock time in the window's zone
        return (value if value.tzinfo else value.replace(tzinfo=zone)).timestamp()

    if window.weekly or window.cron:
        return instant(window.end) if window.end else None
    assert window.start is not None  # the model guarantees a one-off's start
    if window.end is not None:
        return instant(window.end)
    return instant(window.start) + (window.duration or 0.0)


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _invalid([f"body: expected a JSON object, got {type(data).__name__}"])
    return dict(data)


def _author(author: str) -> list[str]:
    if not author.strip():
        return ["author: say who sets it"]
    if len(author) > MAX_AUTHOR:
        return [f"author: at most {MAX_AUTHOR} characters"]
    return []


def _located(err: Any) -> str:
    """`matchers[0]: unknown label …` from one pydantic error."""
    path = format_path(tuple(err["loc"])) or "body"
    msg = _MESSAGES.get(err["type"]) or str(err["msg"]).removeprefix("Value error, ")
    return f"{path}: {msg[:1].lower() + msg[1:]}"


def _invalid(errors: list[str]) -> Refused:
    return Refused(422, "; ".join(errors), errors)


def _entry(row: StoredSuppression) -> Entry:
    spec: Spec
    if row.kind == "silence":
        spec = Silence.model_validate({**row.spec, "id": row.id})
    else:
        spec = MaintenanceWindow.model_validate(row.spec)
    kind: Kind = "silence" if row.kind == "silence" else "maintenance"
    return Entry(
        str(row.id),
        kind,
        "api",
        spec,
        row.created_by,
        row.created_at,
        row.expires_at,
        row.ended_at,
        row.ended_by,
    )


def _save(
    engine: Engine,
    kind: str,
    data: dict[str, Any],
    author: str,
    now: float,
    expires: float | None,
) -> int:
    with engine.begin() as conn:
        return save_suppression(conn, kind, data, author, now, expires)


def _end(engine: Engine, ident: int, kind: str, now: float, by: str | None) -> bool:
    with engine.begin() as conn:
        return end_suppression(conn, ident, kind, now, by)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _first_line(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip().splitlines()[0]
