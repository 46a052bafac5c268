"""An N-able N-sight Data Extraction API emulator: a real aiohttp server on loopback.

    emulator = NsightEmulator(FixtureAccount(fixtures_dir), api_key="k")
    await emulator.start()            # emulator.url: "http://127.0.0.1:<port>"
    ...                                # GET {url}/api/?apikey=k&service=list_clients
    emulator.fault = Fault("waf")      # the next answers are a Cloudflare block page
    await emulator.close()

It serves `GET`/`POST /api/` and dispatches on `service` (shared/docs/rmm.md §1.8):
a wrong or missing `apikey` gets errorcode 3, a missing required parameter 5
(with its name), an invalid one 4; any other path answers HTTP 403 (the DEA's
"wrong host or path"). The account behind it is pluggable (`Account`):

- `FixtureAccount(dir)` serves the fixture files byte for byte per the fixtures'
  README map, filtering `list_failing_checks` by client and check type;
- `NsightAccount` (`rmm_nsight_model`) is an account as data, mutable while the
  emulator runs; `ViewAccount(provider)` re-renders one from records that a
  provider (the lab's `RmmView`) hands out.

Every request is recorded (`calls`: service, parameters, the apikey as sent and
whether it came in the query string, User-Agent). `fault` makes the answers
misbehave (`Fault`): a delay, a WAF page (403 or 200), FAIL code 3, an HTTP error
status, a dropped `status` attribute, or a huge body streamed in chunks (never held
in memory) whose progress is recorded in `streams`, so a test can show that the
client gave up early. `transform` rewrites every answer's bytes (a test's
ISO-8859-1 "Müller", say).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from aiohttp import web

from monitord.lab.rmm_nsight_model import NsightAccount
from monitord.lab.rmm_nsight_xml import (
    ApiFail,
    checked,
    document,
    filter_failing,
    items,
    parse_file,
)
from monitord.sources.rmm.base import RmmFailure, RmmInventory

if TYPE_CHECKING:
    from monitord.lab.lab import Lab

FaultKind = Literal["delay", "waf", "login_failed", "http_status", "drop_status", "huge"]
MiB = 1 << 20


class Account(Protocol):
    """What the emulator asks of an account; both raise nothing but ApiFail."""

    def respond(self, service: str, params: Mapping[str, str]) -> bytes: ...

    def fail(self, code: int, message: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Fault:
    """How the emulator misbehaves; `services` limits it to some (None: all)."""

    kind: FaultKind
    seconds: float = 30.0  # delay
    status: int = 403  # waf (403 or 200), http_status
    size: int = 50 * MiB  # huge
    declare_length: bool = False  # huge: send Content-Length (else chunked)
    services: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    service: str
    params: dict[str, str]  # without apikey
    apikey: str | None  # as sent
    key_in_query: bool  # the apikey came as a query parameter
    user_agent: str
    at: float


@dataclass(slots=True)
class Stream:
    """One huge body being sent: bytes written so far, whether all were, and
    whether the handler is done (it finished, or the client hung up)."""

    service: str
    size: int
    sent: int = 0
    finished: bool = False
    done: bool = False


class FixtureAccount:
    """The fixture set of shared/fixtures/rmm/nsight, served as its README maps it."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        if not (directory / "list_clients.xml").is_file():
            raise FileNotFoundError(f"no N-sight fixtures in {directory}")
        attrs, rows = parse_file(directory / "list_failing_checks.xml")
        self._attrs = attrs
        self._failing = rows[0][1] if rows and isinstance(rows[0][1], list) else []

    def respond(self, service: str, params: Mapping[str, str]) -> bytes:
        if service == "list_failing_checks":
            return self._failing_checks(params.get("clientid"), params.get("check_type"))
        by_service = {
            "list_clients": ("list_clients.xml", None),
            "list_sites": ("list_sites_client_{}.xml", "clientid"),
            "list_servers": ("list_servers_site_{}.xml", "siteid"),
            "list_workstations": ("list_workstations_site_{}.xml", "siteid"),
            "list_checks": ("list_checks_device_{}.xml", "deviceid"),
            "list_device_monitoring_details": ("list_device_monitoring_details_{}.xml", "deviceid"),
            "list_outages": ("list_outages_device_{}.xml", "deviceid"),
            "list_devices_at_client": ("list_devices_at_client_{}_{}.xml", "clientid"),
        }
        pattern, param = by_service[service]
        name = pattern.format(params.get(param or "", ""), params.get("devicetype", ""))
        path = self.dir / name
        if not path.is_file():
            # An id the account does not have: the DEA's answer is unknown [I].
            raise ApiFail(4, f"Invalid value for parameter: {param}")
        return path.read_bytes()

    def _failing_checks(self, client_id: str | None, check_type: str | None) -> bytes:
        if check_type == "random":
            check_type = None
        if check_type is None and client_id is None:
            return (self.dir / "list_failing_checks.xml").read_bytes()
        if check_type is None and client_id == "410002":
            return (self.dir / "list_failing_checks_client_410002.xml").read_bytes()
        if check_type == "tasks" and client_id is None:
            return (self.dir / "list_failing_checks_tasks.xml").read_bytes()
        rows = filter_failing(self._failing, client_id=client_id, check_type=check_type)
        return document(items(rows), created=self._attrs["created"], host=self._attrs["host"])

    def fail(self, code: int, message: str) -> bytes:
        files = {3: "error_login_failed.xml", 4: "error_invalid_parameter.xml"}
        body = (self.dir / files.get(code, "error_missing_parameter.xml")).read_bytes()
        # The files name `siteid`; put in the parameter this request got wrong.
        param = message.rpartition(": ")[2]
        return body if code == 3 else body.replace(b": siteid<", f": {param}<".encode())


class ViewAccount:
    """An `NsightAccount` rebuilt from `provider()` (inventory and failures, e.g.
    the lab's RmmView), at most every `max_age` seconds: a sync makes hundreds of
    calls, and rebuilding 1,200 devices for each would dominate its cost."""

    def __init__(
        self,
        provider: Callable[[], tuple[RmmInventory, Iterable[RmmFailure]]],
        *,
        max_age: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        host: str = "rmm.example.net",
        tz_offset: int = 3600,
    ) -> None:
        self.provider, self.max_age, self._clock = provider, max_age, clock
        self.host, self.tz_offset = host, tz_offset
        self._built: tuple[float, NsightAccount] | None = None

    def current(self) -> NsightAccount:
        now = self._clock()
        if self._built is None or now - self._built[0] >= self.max_age:
            inventory, failures = self.provider()
            account = NsightAccount.from_records(
                inventory, failures, host=self.host, tz_offset=self.tz_offset
            )
            self._built = (now, account)
        return self._built[1]

    def respond(self, service: str, params: Mapping[str, str]) -> bytes:
        return self.current().respond(service, params)

    def fail(self, code: int, message: str) -> bytes:
        return self.current().fail(code, message)


def lab_account(lab: Lab, *, max_age: float = 1.0) -> ViewAccount:
    """The N-sight account of `lab`'s RMM view (a `Lab(rmm=True)`): its agents, and
    what the RMM reports failing given the lab's faults and RMM-only injections."""
    view = lab.rmm
    if view is None:
        raise ValueError("the lab runs without an RMM view (Lab(rmm=True))")

    def records() -> tuple[RmmInventory, tuple[RmmFailure, ...]]:
        now = lab.now().timestamp()
        return view.inventory(now), view.failures(lab.faults(), now)

    return ViewAccount(records, max_age=max_age)


WAF_PAGE = b"""<!DOCTYPE html>
<html lang="en-US"><head><title>Attention Required! | Cloudflare</title>
<meta charset="UTF-8" /></head>
<body><div id="cf-wrapper"><h1>Sorry, you have been blocked</h1>
<h2>You are unable to access systemmonitor.example</h2>
<p>This website is using a security service to protect itself from online attacks.</p>
<p>Cloudflare Ray ID: <strong>8f0c1d2e3a4b5c6d</strong></p></div></body></html>
"""


@dataclass
class NsightEmulator:
    account: Account
    api_key: str = "nsight-emulator-key-0123456789"
    host: str = "127.0.0.1"
    port: int = 0
    fault: Fault | None = None
    transform: Callable[[bytes], bytes] | None = None
    calls: list[Call] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("GET", "/api/", self._api)
        app.router.add_route("POST", "/api/", self._api)
        app.router.add_route("*", "/{tail:.*}", self._wrong_path)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{self.port}"
        return self.url

    async def close(self) -> None:
        self._closing.set()  # delayed answers end now
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> NsightEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def services(self) -> list[str]:
        """The services called, in order."""
        return [c.service for c in self.calls]

    # handlers ----------------------------------------------------------------
    async def _wrong_path(self, request: web.Request) -> web.Response:
        return web.Response(status=403, text="403 Forbidden", content_type="text/html")

    async def _api(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            query.update({k: str(v) for k, v in (await request.post()).items()})
        key = query.pop("apikey", None)
        service = query.get("service", "")
        self.calls.append(
            Call(
                request.method, request.path, service,
                {k: v for k, v in query.items() if k != "service"}, key,
                "apikey" in request.query, request.headers.get("User-Agent", ""), time.time(),
            )
        )  # fmt: skip
        fault = self.fault
        if fault is not None and (fault.services is None or service in fault.services):
            answer = await self._fault(fault, request, service)
            if answer is not None:
                return answer
        return self._xml(self._answer(key, service, query))

    def _answer(self, key: str | None, service: str, query: dict[str, str]) -> bytes:
        if key != self.api_key:
            return self.account.fail(3, "Login failed")
        try:
            return self.account.respond(service, checked(service, query))
        except ApiFail as exc:
            return self.account.fail(exc.code, exc.message)

    def _xml(self, body: bytes, status: int = 200) -> web.Response:
        if self.transform is not None:
            body = self.transform(body)
        return web.Response(body=body, status=status, content_type="text/xml")

    async def _fault(
        self, fault: Fault, request: web.Request, service: str
    ) -> web.StreamResponse | None:
        if fault.kind == "delay":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.seconds)
            return None
        if fault.kind == "waf":
            return web.Response(
                body=WAF_PAGE,
                status=fault.status,
                content_type="text/html",
                headers={"Server": "cloudflare", "CF-RAY": "8f0c1d2e3a4b5c6d-FRA"},
            )
        if fault.kind == "login_failed":
            return self._xml(self.account.fail(3, "Login failed"))
        if fault.kind == "http_status":
            return web.Response(status=fault.status, text=f"HTTP {fault.status}")
        if fault.kind == "drop_status":
            body = self._answer(request.query.get("apikey"), service, dict(request.query))
            return self._xml(body.replace(b' status="OK"', b"", 1))
        return await self._huge(fault, request, service)

    async def _huge(self, fault: Fault, request: web.Request, service: str) -> web.StreamResponse:
        """A valid-looking list of `fault.size` bytes, written 64 KiB at a time."""
        stream = Stream(service, fault.size)
        self.streams.append(stream)
        response = web.StreamResponse(headers={"Content-Type": "text/xml"})
        if fault.declare_length:
            response.content_length = fault.size
        await response.prepare(request)
        head = b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<result status="OK"><items>\n'
        row = b"<client><name><![CDATA[Padding Ltd]]></name><clientid>1</clientid></client>\n"
        chunk = row * (64 * 1024 // len(row))
        tail = b"</items></result>\n"
        try:
            await response.write(head)
            stream.sent = len(head)
            while stream.sent + len(chunk) + len(tail) <= fault.size:
                await response.write(chunk)
                stream.sent += len(chunk)
            pad = fault.size - stream.sent - len(tail)
            await response.write(b" " * pad + tail)
            stream.sent = fault.size
            await response.write_eof()
            stream.finished = True
        except (ConnectionError, RuntimeError):
            pass  # the client hung up: what `stream.sent` says is all it could have read
        finally:
            stream.done = True
        return response
