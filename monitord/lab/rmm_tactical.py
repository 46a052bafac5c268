"""A Tactical RMM API emulator (v1.5 serializers as shared/docs/rmm.md §2 reads
them): a real aiohttp server on loopback.

    emulator = TacticalEmulator(api_key="k")
    pk = emulator.add_agent(TacticalAgent("RkTqvYbW", "NFL-WS001", 1, "Northfield", 11, "HQ"))
    emulator.add_check(TacticalCheck(41, pk, "diskspace", "Disk Space Check: Drive C: ...",
                                     status="failing", more_info="Disk C: - 8.1% free"))
    await emulator.start()           # emulator.url

Routes (every one wants `X-API-KEY`; 401 `{"detail": ...}` without a valid one):

    GET   /agents/?detail=true|false[&client=&site=&monitoring_type=]
    GET   /agents/<agent_id>/           GET /agents/<agent_id>/checks/
    GET   /checks/                      PATCH /alerts/ {"top": N} or filters
    GET   /alerts/<pk>/

An agent's `status` is computed from `last_seen` as Tactical does (offline after
`offline_time` minutes, overdue after `overdue_time`; no last_seen: offline), and
`logged_username` follows the "italic" rule (nobody logged on but the agent
online: the last user, italic). Alerts (`raise_alert`, `resolve_alert`) are of a
check, an automated task (`TacticalTask`: the API shows a failed task only by
its alert) or the agent's availability. `fail_next` answers the next calls with an HTTP
status, `delay` holds answers back; `requests` records (method, path, query,
X-API-KEY, User-Agent). `render_webhook` fills a URL Action body template with
`{{alert.*}}`/`{{agent.*}}`/`{{client.*}}`/`{{site.*}}` as Tactical does, and
`post_webhook` sends it, for the webhook parser's tests.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web


@dataclass(slots=True)
class TacticalAgent:
    agent_id: str
    hostname: str
    client_id: int
    client_name: str
    site_id: int
    site_name: str
    monitoring_type: str = "workstation"
    last_seen: float | None = None
    logged_in_username: str = "None"  # Tactical's own spelling of nobody
    last_logged_in_user: str = ""
    local_ips: str = ""
    public_ip: str = ""
    operating_system: str = "Windows 11 Pro, 64 bit v23H2 (build 22631.3155)"
    description: str = ""
    maintenance_mode: bool = False
    offline_time: int = 4  # minutes
    overdue_time: int = 30
    pk: int = 0  # set by add_agent


@dataclass(slots=True)
class TacticalCheck:
    id: int
    agent_pk: int
    check_type: str  # diskspace, ping, cpuload, memory, winsvc, script, eventlog
    readable_desc: str
    status: str = "passing"  # passing | failing | pending
    alert_severity: str | None = None  # info | warning | error
    more_info: str = ""
    fail_count: int = 0
    last_run: float | None = None
    stdout: str | None = None
    stderr: str | None = None
    name: str = ""


@dataclass(slots=True)
class TacticalTask:
    """An automated task; a failed one is known to the API only by its alert."""

    id: int
    agent_pk: int
    name: str


@dataclass(frozen=True, slots=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    api_key: str | None
    user_agent: str


@dataclass
class TacticalEmulator:
    api_key: str = "tactical-emulator-key-0123456789"
    host: str = "127.0.0.1"
    port: int = 0
    clock: Callable[[], float] = time.time
    agents: dict[int, TacticalAgent] = field(default_factory=dict)
    checks: dict[int, TacticalCheck] = field(default_factory=dict)
    tasks: dict[int, TacticalTask] = field(default_factory=dict)
    alerts: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # HTTP statuses, consumed in order
    delay: float = 0.0
    url: str = ""
    _runner: web.AppRunner | None = None

    # the account -----------------------------------------------------------------
    def add_agent(self, agent: TacticalAgent) -> int:
        agent.pk = agent.pk or len(self.agents) + 1
        self.agents[agent.pk] = agent
        return agent.pk

    def add_check(self, check: TacticalCheck) -> None:
        self.checks[check.id] = check

    def add_task(self, task: TacticalTask) -> None:
        self.tasks[task.id] = task

    def raise_alert(
        self,
        check: TacticalCheck | None,
        agent_pk: int,
        *,
        task: TacticalTask | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """An unresolved alert: of `check`, else of `task`, else of the agent's
        availability (with Tactical's message for each); `fields` override any."""
        agent = self.agents[agent_pk]
        pk = len(self.alerts) + 1
        if check is not None:
            what = f"{check.check_type} check: {check.readable_desc}"
            alert_type, message = "check", f"{agent.hostname} has a {what} that failed."
        elif task is not None:
            alert_type, message = "task", f"{agent.hostname} has task: {task.name} that failed."
        else:
            alert_type = "availability"
            message = f"{agent.hostname} in {agent.client_name}, {agent.site_name} is overdue."
        alert = {
            "id": pk, "agent": agent_pk, "assigned_check": check.id if check else None,
            "assigned_task": task.id if task else None, "alert_type": alert_type,
            "message": message, "severity": "error", "alert_time": iso(self.clock()),
            "snoozed": False, "snooze_until": None, "resolved": False, "resolved_on": None,
            "hidden": False, "hostname": agent.hostname, "agent_id": agent.agent_id,
            "client": agent.client_name, "site": agent.site_name, **fields,
        }  # fmt: skip
        self.alerts[pk] = alert
        return alert

    def resolve_alert(self, pk: int) -> None:
        """`PUT /alerts/<pk>/ {"type": "resolve"}`: what Tactical does when the
        check or task passes again, or the agent reports."""
        self.alerts[pk] |= {"resolved": True, "resolved_on": iso(self.clock()), "snoozed": False}

    def status(self, agent: TacticalAgent) -> str:
        if agent.last_seen is None:
            return "offline"
        age = self.clock() - agent.last_seen
        if age > agent.overdue_time * 60:
            return "overdue"
        if age > agent.offline_time * 60:
            return "offline"
        return "online"

    def logged_username(self, agent: TacticalAgent) -> tuple[str, bool]:
        if agent.logged_in_username != "None":
            return agent.logged_in_username, False
        if self.status(agent) == "online" and agent.last_logged_in_user:
            return agent.last_logged_in_user, True
        return "-", False

    def agent_row(self, agent: TacticalAgent) -> dict[str, Any]:
        """`AgentTableSerializer` (detail=true)."""
        checks = [c for c in self.checks.values() if c.agent_pk == agent.pk]
        count = {s: sum(c.status == s for c in checks) for s in ("passing", "failing")}
        user, italic = self.logged_username(agent)
        return {
            "agent_id": agent.agent_id, "alert_template": None, "hostname": agent.hostname,
            "site_name": agent.site_name, "client_name": agent.client_name,
            "monitoring_type": agent.monitoring_type, "description": agent.description,
            "needs_reboot": False, "pending_actions_count": 0, "status": self.status(agent),
            "overdue_text_alert": False, "overdue_email_alert": True,
            "overdue_dashboard_alert": True,
            "last_seen": iso(agent.last_seen) if agent.last_seen is not None else None,
            "boot_time": (agent.last_seen or self.clock()) - 86400.0,
            "checks": {
                "total": len(checks), "passing": count["passing"], "failing": count["failing"],
                "warning": 0, "info": 0, "has_failing_checks": count["failing"] > 0,
            },
            "maintenance_mode": agent.maintenance_mode, "logged_username": user,
            "italic": italic, "policy": None, "block_policy_inheritance": False,
            "plat": "windows", "goarch": "amd64", "has_patches_pending": False,
            "version": "2.7.0", "operating_system": agent.operating_system,
            "public_ip": agent.public_ip, "cpu_model": ["Intel(R) Core(TM) i5-10500"],
            "graphics": "Intel(R) UHD Graphics 630", "local_ips": agent.local_ips,
            "make_model": "HP ProDesk 400 G7", "physical_disks": ["Samsung SSD 256GB"],
            "custom_fields": [], "serial_number": f"SYN{agent.pk:06d}",
        }  # fmt: skip

    def check_row(self, check: TacticalCheck) -> dict[str, Any]:
        """`CheckSerializer` with its `check_result`."""
        agent = self.agents[check.agent_pk]
        return {
            "id": check.id, "agent": agent.pk, "policy": None, "name": check.name,
            "check_type": check.check_type, "readable_desc": check.readable_desc,
            "alert_severity": "warning", "fails_b4_alert": 1, "run_interval": 0,
            "email_alert": False, "text_alert": False, "dashboard_alert": True,
            "assignedtasks": [], "alert_template": None,
            "check_result": {
                "id": 900 + check.id, "agent": agent.pk, "assigned_check": check.id,
                "status": check.status, "alert_severity": check.alert_severity,
                "more_info": check.more_info,
                "last_run": iso(check.last_run) if check.last_run is not None else None,
                "fail_count": check.fail_count, "outage_history": None, "extra_details": None,
                "stdout": check.stdout, "stderr": check.stderr, "retcode": None,
                "execution_time": "0.0000", "history": [],
            },
        }  # fmt: skip

    # the server --------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/agents/", self._agents)
        app.router.add_get("/agents/{agent_id}/", self._agent)
        app.router.add_get("/agents/{agent_id}/checks/", self._agent_checks)
        app.router.add_get("/checks/", self._all_checks)
        app.router.add_route("PATCH", "/alerts/", self._alerts)
        app.router.add_get("/alerts/{pk}/", self._alert)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{self.port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TacticalEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        key = request.headers.get("X-API-KEY")
        self.requests.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                key,
                request.headers.get("User-Agent", ""),
            )
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_next:
            status = self.fail_next.pop(0)
            return web.json_response({"detail": f"emulated HTTP {status}"}, status=status)
        if key is None:
            detail = "Authentication credentials were not provided."
            return web.json_response({"detail": detail}, status=401)
        if key != self.api_key:
            return web.json_response({"detail": "Invalid API key"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def _agents(self, request: web.Request) -> web.Response:
        query = request.query
        agents = [
            a
            for a in self.agents.values()
            if query.get("monitoring_type", a.monitoring_type) == a.monitoring_type
            and query.get("client", str(a.client_id)) == str(a.client_id)
            and query.get("site", str(a.site_id)) == str(a.site_id)
        ]
        if query.get("detail", "true") == "false":
            rows = [
                {"id": a.pk, "hostname": a.hostname, "agent_id": a.agent_id,
                 "client": a.client_id, "site": a.site_id}
                for a in agents
            ]  # fmt: skip
        else:
            rows = [self.agent_row(a) for a in agents]
        return web.json_response(rows)

    def _find(self, request: web.Request) -> TacticalAgent:
        for agent in self.agents.values():
            if agent.agent_id == request.match_info["agent_id"]:
                return agent
        raise web.HTTPNotFound(text=json.dumps({"detail": "Not found."}))

    async def _agent(self, request: web.Request) -> web.Response:
        agent = self._find(request)
        row = self.agent_row(agent) | {
            "logged_in_username": agent.logged_in_username,
            "last_logged_in_user": agent.last_logged_in_user,
            "client": agent.client_id,
        }
        return web.json_response(row)

    async def _agent_checks(self, request: web.Request) -> web.Response:
        agent = self._find(request)
        rows = [self.check_row(c) for c in self.checks.values() if c.agent_pk == agent.pk]
        return web.json_response(rows)

    async def _all_checks(self, request: web.Request) -> web.Response:
        return web.json_response([self.check_row(c) for c in self.checks.values()])

    async def _alerts(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "top" in body:
            live = [
                a
                for a in self.alerts.values()
                if not (a["resolved"] or a["snoozed"] or a["hidden"])
            ]
            top = live[: int(body["top"])]
            return web.json_response({"alerts_count": len(live), "alerts": top})
        # As Tactical's view: resolved/snoozed filter only when false (true: all),
        # clientFilter holds client pks.
        clients = body.get("clientFilter")
        found = [
            a
            for a in self.alerts.values()
            if not (body.get("resolvedFilter", True) is False and a["resolved"])
            and not (body.get("snoozedFilter", True) is False and a["snoozed"])
            and ("severityFilter" not in body or a["severity"] in body["severityFilter"])
            and (clients is None or self.agents[a["agent"]].client_id in clients)
        ]
        return web.json_response(found)

    async def _alert(self, request: web.Request) -> web.Response:
        alert = self.alerts.get(int(request.match_info["pk"]))
        if alert is None:
            raise web.HTTPNotFound(text=json.dumps({"detail": "Not found."}))
        return web.json_response(alert)

    # URL Actions (webhooks) ------------------------------------------------------------
    def render_webhook(self, template: str, alert: Mapping[str, Any]) -> Any:
        """`template` with its placeholders filled from `alert`, its agent, client and
        site, then `json.loads(strict=False)`, as Tactical renders a URL Action body."""
        agent = self.agents[int(alert["agent"])]
        agent_fields = {
            **asdict(agent),
            "status": self.status(agent),
            "client": {"name": agent.client_name},
            "site": {"name": agent.site_name, "client": {"name": agent.client_name}},
        }
        check = self.checks.get(alert.get("assigned_check") or -1)
        row = self.check_row(check) if check is not None else None
        task = self.tasks.get(alert.get("assigned_task") or -1)
        context = {
            "alert": dict(alert)
            | {
                "assigned_check": row,
                "assigned_task": asdict(task) if task is not None else None,
                "get_result": row["check_result"] if row else None,
            },
            "agent": agent_fields,
            "client": {"name": agent.client_name, "id": agent.client_id},
            "site": {"name": agent.site_name, "id": agent.site_id},
            "global": {},
        }

        def value(match: re.Match[str]) -> str:
            found: Any = context[match.group(1)]
            for part in match.group(2).split("."):
                found = found.get(part.strip(), "") if isinstance(found, dict) else ""
            text = "" if found is None else str(found)
            # Escaped so the body stays JSON whatever the value (a "DOMAIN\\user").
            return json.dumps(text)[1:-1]

        return json.loads(PLACEHOLDER.sub(value, template), strict=False)

    async def post_webhook(self, url: str, template: str, alert: Mapping[str, Any]) -> int:
        """Render and POST one URL Action (8 s timeout, as Tactical); the status."""
        body = self.render_webhook(template, alert)
        timeout = aiohttp.ClientTimeout(total=8)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, json=body) as reply,
        ):
            await reply.read()
            return reply.status


# Tactical's RE_DB_VALUE, with the dotted path captured whole.
PLACEHOLDER = re.compile(r"\{\{\s*(client|site|agent|global|alert)\.([\w\-\s\.]+?)\s*\}\}")


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
