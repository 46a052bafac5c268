"""An N-sight account as data (clients, sites, devices, failing checks), mutable at
runtime and rendered by the emulator in the DEA's own format (`rmm_nsight_xml`):
the element order of the fixtures, ISO-8859-1 bytes (a user "Müller" is one 0xFC
byte), CDATA strings, local dates and times.

Times are UTC epoch seconds in the model; the document shows them as N-sight does:
`created` in the account's zone (`tz_offset`), a device's dates and times in its
own (`utc_offset`; the fixtures' devices share the account's +01:00), plus the
explicit `utc_*` fields. Fields the model does not carry get fixed, plausible
values; `NsDevice.fields` overrides any of them by tag.

`NsightAccount.from_records` builds an account from the adapter-neutral records of
`monitord.sources.rmm.base` (what the lab's `RmmView` produces), so the lab can
drive the emulator from its faults. Mutate through the methods: they keep the
per-client and per-site indexes that let 1,200 devices answer in microseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

from monitord.lab.rmm_nsight_xml import ApiFail, Node, document, error, items
from monitord.sources.rmm.base import FailureKind, RmmFailure, RmmInventory

Availability = Literal["", "offline", "overdue", "unreachable"]


@dataclass(slots=True)
class NsClient:
    id: str
    name: str
    dashboard_username: str = "none"
    timezone: str = ""
    creation_date: str = "2020-01-01"


@dataclass(slots=True)
class NsSite:
    id: str
    client_id: str
    name: str
    connection_ok: bool = True
    primary_router: str = ""
    secondary_router: str = ""
    creation_date: str = "2020-01-01"


@dataclass(slots=True)
class NsDevice:
    id: str
    site_id: str
    name: str
    kind: Literal["server", "workstation"] = "workstation"
    description: str = ""
    ip: str = ""
    external_ip: str = ""
    os: str = ""
    user: str = ""  # logged on at the last scan, "DOMAIN\\user"; "" for nobody
    domain: str = ""
    last_seen: float | None = None  # the last 24x7 upload (UTC epoch)
    utc_offset: int = 3600
    availability: Availability = ""  # what list_failing_checks says about the agent
    availability_since: float | None = None
    fields: dict[str, str] = field(default_factory=dict)  # any other tag's value


@dataclass(slots=True)
class NsCheck:
    id: str
    device_id: str
    check_type: str
    description: str
    output: str = ""
    status: str = "testerror"  # testerror | testalertdelayed | testcleared
    started: float | None = None  # when the failure began
    last: float | None = None  # the last failed run
    consecutive_fails: int = 1
    dsc_247: int = 1  # 1 = 24x7, 2 = Daily Safety Check, 3 = Automated Task


class NsightAccount:
    """One account; `respond(service, params)` is the emulator's backend call."""

    def __init__(
        self,
        *,
        host: str = "rmm.example.net",
        tz_offset: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host, self.tz_offset, self.clock = host, tz_offset, clock
        self.clients: dict[str, NsClient] = {}
        self.sites: dict[str, NsSite] = {}
        self.devices: dict[str, NsDevice] = {}
        self.checks: dict[str, NsCheck] = {}
        self._site_ids: dict[str, list[str]] = {}  # client → its sites
        self._device_ids: dict[str, list[str]] = {}  # site → its devices
        self._check_ids: dict[str, list[str]] = {}  # device → its failing checks

    # building ----------------------------------------------------------------
    def add(self, *objects: NsClient | NsSite | NsDevice | NsCheck) -> None:
        for obj in objects:
            if isinstance(obj, NsClient):
                self.clients[obj.id] = obj
            elif isinstance(obj, NsSite):
                self.sites[obj.id] = obj
                _append(self._site_ids, obj.client_id, obj.id)
            elif isinstance(obj, NsDevice):
                old = self.devices.get(obj.id)
                if old is not None and old.site_id != obj.site_id:
                    self._device_ids[old.site_id].remove(obj.id)
                self.devices[obj.id] = obj
                _append(self._device_ids, obj.site_id, obj.id)
            else:
                former = self.checks.get(obj.id)
                if former is not None and former.device_id != obj.device_id:
                    self._check_ids[former.device_id].remove(obj.id)
                self.checks[obj.id] = obj
                _append(self._check_ids, obj.device_id, obj.id)

    def remove_device(self, device_id: str) -> None:
        gone = self.devices.pop(device_id, None)
        if gone is not None:
            self._device_ids[gone.site_id].remove(device_id)
            for check_id in list(self._check_ids.get(device_id, ())):
                self.clear(check_id)

    def clear(self, check_id: str) -> None:
        """The check passes again: it leaves the failing list."""
        gone = self.checks.pop(check_id, None)
        if gone is not None:
            self._check_ids[gone.device_id].remove(check_id)

    def set_availability(self, device_id: str, state: Availability, since: float | None) -> None:
        device = self.devices[device_id]
        device.availability, device.availability_since = state, since if state else None

    @classmethod
    def from_records(
        cls,
        inventory: RmmInventory,
        failures: Iterable[RmmFailure],
        *,
        now: float | None = None,
        host: str = "rmm.example.net",
        tz_offset: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> NsightAccount:
        """The account that would report `inventory` and `failures`: a check
        failure's key is its checkid, an availability failure marks its device."""
        account = cls(host=host, tz_offset=tz_offset, clock=clock)
        now = account.clock() if now is None else now
        for c in inventory.clients:
            account.add(NsClient(c.id, c.name))
        for s in inventory.sites:
            routers = [*s.routers, "", ""]
            account.add(
                NsSite(s.id, s.client_id, s.name, s.connection_ok is not False, *routers[:2])
            )
        for d in inventory.devices:
            account.add(
                NsDevice(
                    d.id,
                    d.site_id,
                    d.name,
                    d.kind,
                    d.description,
                    ",".join(d.addresses),
                    d.external_ip,
                    d.os,
                    d.logged_on_user,
                    last_seen=d.last_seen,
                    utc_offset=account.tz_offset,
                )
            )
        for f in failures:
            if f.kind in (FailureKind.OFFLINE, FailureKind.OVERDUE, FailureKind.UNREACHABLE):
                if f.device_id in account.devices:
                    account.set_availability(f.device_id, f.kind.value, f.started_at)  # type: ignore[arg-type]
                continue
            account.add(
                NsCheck(
                    f.key,
                    f.device_id,
                    f.check_type,
                    f.description,
                    f.output,
                    f.status or "testerror",
                    f.started_at,
                    now,
                    f.consecutive_fails,
                    3 if f.kind == FailureKind.TASK else 1,
                )
            )
        return account

    # the API -----------------------------------------------------------------
    def respond(self, service: str, params: Mapping[str, str]) -> bytes:
        """Raises ApiFail; `params` were validated (`rmm_nsight_xml.checked`)."""
        if service == "list_clients":
            rows = [self._client(c) for c in self.clients.values()]
        elif service == "list_sites":
            client_id = self._known(params, "clientid", self.clients)
            rows = [self._site(self.sites[i]) for i in self._site_ids.get(client_id, ())]
        elif service in ("list_servers", "list_workstations"):
            kind = service.removeprefix("list_").removesuffix("s")
            site_id = self._known(params, "siteid", self.sites)
            found = (self.devices[i] for i in self._device_ids.get(site_id, ()))
            rows = [self._device(d) for d in found if d.kind == kind]
        elif service == "list_failing_checks":
            if "clientid" in params:
                self._known(params, "clientid", self.clients)
            rows = self._failing(params.get("clientid"), params.get("check_type"))
        else:
            raise ApiFail(4, "Invalid value for parameter: service")  # not emulated
        return self._document(items(rows))

    def fail(self, code: int, message: str) -> bytes:
        return self._document(error(code, message), status="FAIL")

    def _document(self, children: list[Node], status: str = "OK") -> bytes:
        zone = timezone(timedelta(seconds=self.tz_offset))
        created = datetime.fromtimestamp(self.clock(), zone).isoformat(timespec="seconds")
        return document(children, created=created, host=self.host, status=status)

    def _known(self, params: Mapping[str, str], name: str, found: Mapping[str, object]) -> str:
        value = params[name]
        if value not in found:
            raise ApiFail(4, f"Invalid value for parameter: {name}")  # [I] for unknown ids
        return value

    # rows --------------------------------------------------------------------
    def _client(self, c: NsClient) -> Node:
        devices = [
            self.devices[d]
            for s in self._site_ids.get(c.id, ())
            for d in self._device_ids.get(s, ())
        ]
        servers = sum(d.kind == "server" for d in devices)
        return (
            "client",
            [
                ("name", c.name),
                ("clientid", c.id),
                ("view_dashboard", "0"),
                ("view_wkstsn_assets", "0"),
                ("dashboard_username", c.dashboard_username),
                ("timezone", c.timezone),
                ("creation_date", c.creation_date),
                ("server_count", str(servers)),
                ("workstation_count", str(len(devices) - servers)),
                ("mobile_device_count", "0"),
                ("device_count", str(len(devices))),
            ],
        )

    def _site(self, s: NsSite) -> Node:
        return (
            "site",
            [
                ("siteid", s.id),
                ("name", s.name),
                ("connection_ok", "1" if s.connection_ok else "0"),
                ("creation_date", s.creation_date),
                ("primary_router", s.primary_router),
                ("secondary_router", s.secondary_router),
            ],
        )

    def _device(self, d: NsDevice) -> Node:
        seen = d.last_seen if d.last_seen is not None else self.clock()
        local, utc = _local(seen, d.utc_offset), _utc(seen)
        n = int(d.id) if d.id.isdigit() else 0
        server = d.kind == "server"
        up = "0" if d.availability else "1"
        rows: list[Node] = [
            ("guid", f"{n:08x}-5e00-4000-8000-{n:012x}"),
            ("name", d.name),
            ("description", d.description),
            ("install_date", "2020-01-01"),
            ("last_boot_time", str(int(seen) - 86400)),
            ("dsc_active", "1"),
            ("atz_dst_date", "0000-03-05:00T02:00:00"),
            ("utc_apt", utc),
            ("utc_offset", str(d.utc_offset)),
            ("user", d.user),
            ("domain", d.domain),
            ("manufacturer", ""),
            ("model", ""),
            ("ip", d.ip),
            ("external_ip", d.external_ip),
            ("mac1", ""),
            ("mac2", ""),
            ("mac3", ""),
            ("os", d.os),
            ("os_details", d.os),
            ("serverid" if server else "workstationid", d.id),
            ("agent_version", "10_14_2"),
            ("agent_mode", "1"),
            ("online", up),
            ("active_247", "1"),
            ("check_interval_247", "5" if server else "60"),
            ("status_247", "5"),
            ("local_date_247", local[:10]),
            ("local_time_247", local[11:]),
            ("utc_time_247", utc),
            ("dsc_hour", "6"),
            ("dsc_status", "1"),
            ("dsc_local_date", local[:10]),
            ("dsc_local_time", "06:02:22"),
            ("dsc_utc_time", f"{local[:10]} 05:02:22"),
        ]
        if server:
            rows += [
                ("miss_factor_247", "2.0"),
                ("email_overdue_alert", "1"),
                ("sms_overdue_alert", "1"),
                ("missed_247", "1" if d.availability else "0"),
                ("remote_connection_type", "0"),
                ("remote_address", ""),
                ("remote_port", ""),
                ("remote_username", ""),
                ("remote_domain", ""),
            ]
        rows += [
            ("tz_bias", str(-d.utc_offset // 60)),
            ("tz_dst_bias", "-60"),
            ("tz_std_bias", "0"),
            ("tz_mode", "1"),
            ("tz_dst_date", "0000-03-05:00T02:00:00"),
            ("tz_std_date", "0000-10-05:00T03:00:00"),
            ("assetid", str(n + 1000000)),
            ("wins_name", d.name),
            ("role", "2" if server else "1"),
            ("chassis_type", "17" if server else "3"),
            ("device_serial", f"SYN{d.id}"),
            ("processor_count", "1"),
            ("total_memory", "17179869184"),
            ("service_pack", "0"),
            ("os_serial_number", ""),
            ("os_product_key", ""),
            ("os_type", "18"),
            ("last_scan_time", f"{local[:10]} 06:18:00"),
        ]
        if d.fields:
            rows = [(tag, d.fields.get(tag, v) if isinstance(v, str) else v) for tag, v in rows]
        return (d.kind, rows)

    def _failing(self, client_id: str | None, check_type: str | None) -> list[Node]:
        clients = [client_id] if client_id is not None else list(self.clients)
        out: list[Node] = []
        for c in clients:
            sites = [
                site
                for s in self._site_ids.get(c, ())
                if (site := self._failing_site(s, check_type))
            ]
            if sites:
                name = self.clients[c].name
                out.append(("client", [("clientid", c), ("name", name), *sites]))
        return out

    def _failing_site(self, site_id: str, check_type: str | None) -> Node | None:
        groups: dict[str, list[Node]] = {"workstation": [], "server": []}
        for device_id in self._device_ids.get(site_id, ()):
            device = self.devices[device_id]
            row = self._failing_device(device, check_type)
            if row is not None:
                groups[device.kind].append(row)
        kept: list[Node] = [(f"{k}s", rows) for k, rows in groups.items() if rows]
        if not kept:
            return None
        return ("site", [("siteid", site_id), ("name", self.sites[site_id].name), *kept])

    def _failing_device(self, d: NsDevice, check_type: str | None) -> Node | None:
        rows: list[Node] = [("id", d.id), ("name", d.name)]
        if d.availability and check_type != "tasks":
            local = _local(d.availability_since or 0.0, d.utc_offset)
            rows.append(
                (
                    d.availability,
                    [
                        ("description", d.availability.capitalize()),
                        ("startdate", local[:10]),
                        ("starttime", local[11:]),
                    ],
                )
            )
        checks = [
            self._check(self.checks[i], d.utc_offset)
            for i in self._check_ids.get(d.id, ())
            if check_type not in ("tasks", "checks")
            or (self.checks[i].check_type == "1023") == (check_type == "tasks")
        ]
        if checks:
            rows.append(("failed_checks", checks))
        return (d.kind, rows) if len(rows) > 2 else None

    def _check(self, c: NsCheck, offset: int) -> Node:
        last = _local(c.last if c.last is not None else self.clock(), offset)
        start = _local(c.started, offset) if c.started is not None else ""
        return (
            "check",
            [
                ("checkid", c.id),
                ("check_type", c.check_type),
                ("description", c.description),
                ("dsc_247", str(c.dsc_247)),
                ("date", last[:10]),
                ("time", last[11:]),
                ("startdate", start[:10]),
                ("starttime", start[11:]),
                ("formatted_output", c.output),
                ("checkstatus", c.status),
                ("consecutive_fails", str(c.consecutive_fails)),
            ],
        )


def _append(index: dict[str, list[str]], key: str, value: str) -> None:
    bucket = index.setdefault(key, [])
    if value not in bucket:
        bucket.append(value)


def _local(epoch: float, offset: int) -> str:
    """`YYYY-MM-DD HH:MM:SS` at UTC+offset seconds."""
    return (datetime.fromtimestamp(int(epoch), UTC) + timedelta(seconds=offset)).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%d %H:%M:%S")
