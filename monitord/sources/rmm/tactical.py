"""Tactical RMM (amidaware/tacticalrmm, REST, `X-API-KEY`; shared/docs/rmm.md §2).

    rmm:
      sources:
        - name: trmm
          kind: tactical
          url: https://api.rmm.example        # the API host, no /api prefix
          api_key: env:TRMM_API_KEY

- `inventory()`: `GET /agents/?detail=true` (names, status, users, addresses) and
  `GET /agents/?detail=false` (the client and site ids the detailed rows lack);
- `failures()`: `GET /agents/?detail=true`, the unresolved alerts
  (`PATCH /alerts/ {"resolvedFilter": false}`), then `GET /agents/<agent_id>/checks/`
  for each agent whose check summary says it has failing checks (the per-agent
  list carries policy checks with that agent's results; `GET /checks/` would not).

An agent whose `status` is offline or overdue is one availability failure keyed
`<agent_id>:availability`: Tactical turns an agent offline after 4 minutes of
silence and overdue after 30, and that is one outage, not a clearance and a new
failure. A failing check is keyed `<agent_id>:check:<id>` (a policy check's id
is shared by its agents); it started when its unresolved alert fired, if it has
one (a check result keeps no start). A failed automated task is known only by
its alert, keyed `<agent_id>:task:<task id>`. These are the keys the alert
webhook's parser gives (`webhooks.parse_tactical`), so a pushed failure and the
next poll are one failure, not a failure and its clearance. A snoozed alert's
failure is still reported, with status "snoozed". Agents in maintenance mode
report nothing (Tactical itself alerts on none of them). Datetimes are UTC
ISO-8601.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, field_validator
from yarl import URL

from monitord import __version__
from monitord.clock import Clock
from monitord.config.types import Secret
from monitord.sources.rmm.base import (
    Category,
    FailureKind,
    RmmClient,
    RmmDevice,
    RmmError,
    RmmFailure,
    RmmInventory,
    RmmSite,
)
from monitord.sources.rmm.transport import fetch, gather_limited

CATEGORIES = {
    "diskspace": Category.DISK_SPACE,
    "ping": Category.PING,
    "cpuload": Category.PERFORMANCE,
    "memory": Category.PERFORMANCE,
    "winsvc": Category.SERVICE,
    "script": Category.SCRIPT,
    "eventlog": Category.EVENT_LOG,
}
UNAVAILABLE = {"offline": FailureKind.OFFLINE, "overdue": FailureKind.OVERDUE}


def check_key(agent_id: str, check_id: object) -> str:
    return f"{agent_id}:check:{check_id}"


def availability_key(agent_id: str) -> str:
    return f"{agent_id}:availability"


def task_key(agent_id: str, task_id: object) -> str:
    return f"{agent_id}:task:{task_id}"


class TacticalConfig(BaseModel):
    """The keys of an `rmm.sources[]` entry of kind `tactical`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "url": "https://api.rmm.example",
        "api_key": "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
    }

    url: str  # the API host (https://api.example.com); no /api prefix
    api_key: Secret
    user_agent: str = Field(default=f"monitord/{__version__} (RMM feed)", min_length=1)
    timeout: float = Field(default=30.0, gt=0)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)  # the whole agent table
    concurrency: int = Field(default=4, ge=1, le=16)
    clients: tuple[str, ...] = ()  # only these clients, by name; empty: all

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        url = URL(value.strip())
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return str(url).rstrip("/")


class TacticalSource:
    """`RmmSource` for one Tactical RMM server."""

    kind: ClassVar[str] = "tactical"
    # No documented rate limit; an agent turns offline only after 4 minutes of
    # silence, so polling more often than once a minute learns nothing new while
    # each poll costs the server its whole agent table.
    min_poll_interval: ClassVar[float] = 60.0
    Config: ClassVar[type[TacticalConfig]] = TacticalConfig

    def __init__(
        self,
        config: TacticalConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Clock | None = None,  # unused; every source takes the same arguments
    ) -> None:
        self.config = config
        self._session = session
        self._own_session = session is None

    def __repr__(self) -> str:
        return f"TacticalSource(url={self.config.url!r})"

    async def inventory(self) -> RmmInventory:
        agents = await self._agents()
        ids = {row.get("agent_id"): row for row in await self._list("/agents/?detail=false")}
        clients: dict[str, RmmClient] = {}
        sites: dict[str, RmmSite] = {}
        devices = []
        for agent in agents:
            brief = ids.get(agent["agent_id"], {})
            client_name, site_name = _str(agent.get("client_name")), _str(agent.get("site_name"))
            client_id = _str(brief.get("client")) or client_name  # ids when given
            site_id = _str(brief.get("site")) or f"{client_id}/{site_name}"
            clients.setdefault(client_id, RmmClient(client_id, client_name))
            sites.setdefault(site_id, RmmSite(site_id, client_id, site_name))
            devices.append(_device(agent, client_id, site_id))
        wanted = set(self.config.clients)
        if wanted:
            keep = {c.id for c in clients.values() if c.name in wanted}
            clients = {k: v for k, v in clients.items() if k in keep}
            sites = {k: v for k, v in sites.items() if v.client_id in keep}
            devices = [d for d in devices if d.client_id in keep]
        return RmmInventory(tuple(clients.values()), tuple(sites.values()), tuple(devices))

    async def failures(self) -> tuple[RmmFailure, ...]:
        agents = [a for a in await self._agents() if not a.get("maintenance_mode")]
        wanted = set(self.config.clients)
        if wanted:
            agents = [a for a in agents if _str(a.get("client_name")) in wanted]
        out: list[RmmFailure] = []
        for agent in agents:
            kind = UNAVAILABLE.get(_str(agent.get("status")))
            if kind is not None:
                out.append(_availability(agent, kind))
        alerts = _Alerts(await self._alerts(), {_str(a["agent_id"]) for a in agents})
        failing = [a for a in agents if _has_failing(a)]
        found = await gather_limited(
            (self._failing_checks(a["agent_id"], alerts) for a in failing),
            self.config.concurrency,
        )
        for checks in found:
            out.extend(checks)
        out.extend(alerts.tasks)
        return tuple(out)

    async def aclose(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None

    # calls -------------------------------------------------------------------
    async def _agents(self) -> list[dict[str, Any]]:
        rows = await self._list("/agents/?detail=true")
        for row in rows:
            if not _str(row.get("agent_id")):
                raise RmmError(
                    "tactical GET /agents/: an agent without agent_id", reason="malformed"
                )
        return rows

    async def _failing_checks(self, agent_id: str, alerts: _Alerts) -> list[RmmFailure]:
        path = f"/agents/{agent_id}/checks/"
        return [
            _check(agent_id, row, alerts.of_check(agent_id, row.get("id")))
            for row in await self._list(path)
            if _result(row).get("status") == "failing"
        ]

    async def _alerts(self) -> list[dict[str, Any]]:
        """Every unresolved alert, snoozed ones too (a filter makes Tactical answer
        with a plain list; only a false `resolvedFilter` filters)."""
        return await self._list("/alerts/", method="PATCH", body={"resolvedFilter": False})

    async def _list(
        self, path_query: str, *, method: str = "GET", body: Any = None
    ) -> list[dict[str, Any]]:
        path, _, query = path_query.partition("?")
        label = f"tactical {method} {path}"
        reply = await fetch(
            self._http(),
            method,
            self.config.url + path,
            label=label,
            limit=self.config.max_body_bytes,
            timeout=self.config.timeout,
            params=dict(p.split("=", 1) for p in query.split("&")) if query else None,
            json=body,
            headers={
                "X-API-KEY": self.config.api_key.get_secret_value(),
                "User-Agent": self.config.user_agent,
                "Accept": "application/json",
            },
        )
        if reply.status in (401, 403):
            detail = _detail(reply.body)
            raise RmmError(
                f"{label}: HTTP {reply.status}: the API key was refused ({detail})",
                reason="auth",
                code=reply.status,
            )
        if reply.status != 200:
            raise RmmError(f"{label}: HTTP {reply.status}", reason="http", code=reply.status)
        try:
            rows = json.loads(reply.body)
        except (ValueError, UnicodeDecodeError):
            raise RmmError(f"{label}: the answer is not JSON", reason="not-xml") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise RmmError(f"{label}: expected a list of objects", reason="malformed")
        return rows

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session


# records ----------------------------------------------------------------------


def _device(agent: Mapping[str, Any], client_id: str, site_id: str) -> RmmDevice:
    user = _str(agent.get("logged_username"))
    extra = {
        key: _str(agent.get(key))
        for key in ("plat", "make_model", "serial_number", "version", "status", "goarch")
        if _str(agent.get(key))
    }
    if user in ("-", "None"):
        user = ""
    elif agent.get("italic"):
        # Tactical shows the *last* user, in italics, when nobody is logged on now.
        extra["last_logged_on_user"], user = user, ""
    return RmmDevice(
        id=_str(agent["agent_id"]),
        client_id=client_id,
        site_id=site_id,
        name=_str(agent.get("hostname")),
        kind="server" if agent.get("monitoring_type") == "server" else "workstation",
        addresses=_ips(agent.get("local_ips")),
        external_ip=_str(agent.get("public_ip")),
        os=_str(agent.get("operating_system")),
        last_seen=_time(agent.get("last_seen")),
        logged_on_user=user,
        description=_str(agent.get("description")),
        extra=extra,
    )


def _availability(agent: Mapping[str, Any], kind: FailureKind) -> RmmFailure:
    agent_id = _str(agent["agent_id"])
    return RmmFailure(
        key=availability_key(agent_id),
        device_id=agent_id,
        kind=kind,
        category=Category.AVAILABILITY,
        check_type=kind.value,
        description=f"Agent {kind.value}",
        started_at=_time(agent.get("last_seen")),  # silent since then
        status=kind.value,
    )


class _Alerts:
    """The unresolved alerts of one poll: when each check's failure began, and
    the failed tasks (which have no other trace in the API monitord reads)."""

    def __init__(self, rows: list[dict[str, Any]], agents: set[str]) -> None:
        self.checks: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.tasks: list[RmmFailure] = []
        for row in sorted(rows, key=lambda r: _str(r.get("alert_time"))):
            agent_id = _str(row.get("agent_id"))
            if agent_id not in agents:  # in maintenance, filtered out, or gone
                continue
            kind = row.get("alert_type")
            if kind == "check" and row.get("assigned_check") is not None:
                self.checks.setdefault((agent_id, _str(row["assigned_check"])), row)
            elif kind == "task" and row.get("assigned_task") is not None:
                self.tasks.append(_task(agent_id, row))

    def of_check(self, agent_id: str, check_id: object) -> Mapping[str, Any] | None:
        return self.checks.get((agent_id, _str(check_id)))


def _check(agent_id: str, row: Mapping[str, Any], alert: Mapping[str, Any] | None) -> RmmFailure:
    result = _result(row)
    check_type = _str(row.get("check_type"))
    output = (
        _str(result.get("more_info")) or _str(result.get("stdout")) or _str(result.get("stderr"))
    )
    status = _str(result.get("alert_severity")) or "failing"
    return RmmFailure(
        key=check_key(agent_id, row.get("id")),
        device_id=agent_id,
        kind=FailureKind.CHECK,
        category=CATEGORIES.get(check_type, Category.OTHER),
        check_type=check_type,
        description=_str(row.get("readable_desc")) or _str(row.get("name")) or check_type,
        output=output,
        # A check result keeps no start of its failure; its alert's time is the
        # start the webhook reports too. No alert (none configured): unknown.
        started_at=_time(alert.get("alert_time")) if alert else None,
        consecutive_fails=_fails(result.get("fail_count")),
        status="snoozed" if alert and alert.get("snoozed") else status,
    )


TASK_MESSAGE = re.compile(r"^.*? has task: (?P<name>.*) that failed\.$", re.S)


def _task(agent_id: str, alert: Mapping[str, Any]) -> RmmFailure:
    message = _str(alert.get("message"))
    named = TASK_MESSAGE.match(message)
    return RmmFailure(
        key=task_key(agent_id, alert["assigned_task"]),
        device_id=agent_id,
        kind=FailureKind.TASK,
        category=Category.TASK,
        check_type="task",
        description=named["name"] if named else message or "Automated task",
        started_at=_time(alert.get("alert_time")),
        status="snoozed" if alert.get("snoozed") else _str(alert.get("severity")) or "error",
    )


def _result(row: Mapping[str, Any]) -> Mapping[str, Any]:
    result = row.get("check_result")
    return result if isinstance(result, dict) else {}


def _has_failing(agent: Mapping[str, Any]) -> bool:
    checks = agent.get("checks")
    if not isinstance(checks, dict):
        return True  # not told: ask
    return bool(checks.get("has_failing_checks") or checks.get("failing"))


def _ips(value: Any) -> tuple[str, ...]:
    """`local_ips` is one string, "a, b" (or an error text); a list is taken too."""
    parts = value if isinstance(value, list) else str(value or "").split(",")
    out = []
    for part in parts:
        try:
            out.append(str(ipaddress.ip_address(str(part).strip())))
        except ValueError:
            continue
    return tuple(out)


def _time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()  # DRF writes UTC


def _str(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _fails(value: Any) -> int:
    """A failure count as the store holds it: 1 (this one) up to a 32-bit int."""
    try:
        return min(max(int(value), 1), 2**31 - 1)
    except (TypeError, ValueError):
        return 1


def _detail(body: bytes) -> str:
    try:
        found = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "no detail"
    detail = found.get("detail") if isinstance(found, dict) else None
    return str(detail)[:200] if detail else "no detail"
