"""N-able N-sight RMM (formerly SolarWinds RMM / GFI MAX): the Data Extraction API.

    rmm:
      sources:
        - name: nsight
          kind: nsight
          server: wwweurope1.systemmonitor.eu.com   # the account's regional API server
          api_key: env:NSIGHT_API_KEY

Every call is `GET https://<server>/api/?apikey=<key>&service=<name>&...` (the
key is a query parameter: there is no other way), answered in XML only. There is
no paging, so the adapter asks per client and per site:

- `inventory()`: list_clients → list_sites per client → list_servers and
  list_workstations per site (skipped when the client's count says it has none);
- `failures()`: list_clients → list_failing_checks per client (the docs advise
  per-client calls on large accounts; checks and tasks together).

Calls are paced to `max_calls_per_minute` (60, as N-able's own MCP server does)
on top of the feed's 90-second floor between polls (N-able's "do not send
automated API calls using a frequency less than 90 seconds"). An inventory costs
1 + clients + 2 x sites calls: 441 for 40 clients with 200 sites, the last of them
starting 7 minutes after the first at 60 a minute; each call has its own
`timeout`, so a bound around a whole inventory() must allow for the pace (a
failures() poll, 1 + clients calls, fits one minute). The User-Agent is
explicit and browser-like: N-sight sits behind a Cloudflare WAF that blocks
unrecognised agents. Bodies are read up to `max_body_bytes`, never further.

Errors are `RmmError`s naming the service called, never the URL (it carries the
key): a FAIL envelope is "api-error" with its code (code 3, a refused key, and an
HTTP 401/403 are "auth"); a Cloudflare block page is "not-xml".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, ParamSpec, TypeVar
from xml.etree.ElementTree import Element

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, field_validator
from yarl import URL

from monitord import __version__
from monitord.clock import Clock, SystemClock
from monitord.config.types import Secret
from monitord.sources.rmm import nsight_xml
from monitord.sources.rmm.base import (
    DeviceKind,
    RmmClient,
    RmmDevice,
    RmmError,
    RmmFailure,
    RmmInventory,
    RmmSite,
)
from monitord.sources.rmm.transport import Pacer, Reply, fetch, gather_limited

P = ParamSpec("P")
T = TypeVar("T")
USER_AGENT = f"Mozilla/5.0 (compatible; monitord/{__version__}; RMM feed)"


class NsightConfig(BaseModel):
    """The keys of an `rmm.sources[]` entry of kind `nsight`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "server": "wwweurope1.systemmonitor.eu.com",
        "api_key": "0123456789abcdef0123456789abcdef",
    }

    server: str  # the API server's host name, or a base URL (http(s)://host[:port][/path])
    api_key: Secret
    user_agent: str = Field(default=USER_AGENT, min_length=1)
    timeout: float = Field(default=60.0, gt=0)  # one call; the DEA is slow on big accounts
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_calls_per_minute: int = Field(default=60, ge=0)  # 0: unpaced (emulator, benchmark)
    concurrency: int = Field(default=4, ge=1, le=16)  # calls in flight (within the pace)
    clients: tuple[str, ...] = ()  # only these clients (ids or names); empty: all
    # One list_failing_checks call per client (the docs' advice for large accounts:
    # the whole account at once can time out), or one for the account (small ones).
    failing_checks_per_client: bool = True

    @field_validator("server")
    @classmethod
    def _server(cls, value: str) -> str:
        value = value.strip()
        url = URL(value if "://" in value else f"https://{value}")
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"expected a host name or an http(s) URL, got {value!r}")
        if url.query_string or url.fragment:
            raise ValueError("give the server without a query (the adapter adds /api/?...)")
        return value

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: Any) -> Any:
        if not value.get_secret_value().strip():
            raise ValueError("the API key is empty")
        return value

    def api_url(self) -> str:
        """`<base>/api/`: the trailing slash is part of the DEA's path."""
        url = URL(self.server if "://" in self.server else f"https://{self.server}")
        path = url.path.rstrip("/").removesuffix("/api")
        return str(url.with_path(f"{path}/api/"))


class NsightSource:
    """`RmmSource` for one N-sight account."""

    kind: ClassVar[str] = "nsight"
    min_poll_interval: ClassVar[float] = 90.0  # N-able's etiquette between automated calls
    Config: ClassVar[type[NsightConfig]] = NsightConfig

    def __init__(
        self,
        config: NsightConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self._session = session
        self._own_session = session is None
        self._url = config.api_url()
        clock = clock or SystemClock()
        self._pacer = Pacer(config.max_calls_per_minute, clock.monotonic, sleep)
        # Each device's utc_offset from the last inventory: failing checks carry
        # device-local times (see nsight_xml).
        self._offsets: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"NsightSource(server={self.config.server!r})"

    async def inventory(self) -> RmmInventory:
        listed = await self._clients()
        site_lists = await gather_limited(
            (self._sites(client) for client, _, _ in listed), self.config.concurrency
        )
        calls: list[Awaitable[list[RmmDevice]]] = []
        for (client, servers, workstations), sites in zip(listed, site_lists, strict=True):
            for site in sites:
                if servers != 0:  # None: not told, ask
                    calls.append(self._devices("server", client.id, site.id))
                if workstations != 0:
                    calls.append(self._devices("workstation", client.id, site.id))
        device_lists = await gather_limited(calls, self.config.concurrency)
        devices = tuple(d for found in device_lists for d in found)
        offsets = {d.id: int(d.extra["utc_offset"]) for d in devices if "utc_offset" in d.extra}
        self._offsets = offsets
        return RmmInventory(
            tuple(client for client, _, _ in listed),
            tuple(site for sites in site_lists for site in sites),
            devices,
        )

    async def failures(self) -> tuple[RmmFailure, ...]:
        listed = await self._clients()
        if not self.config.failing_checks_per_client:
            root, offset = await self._call("list_failing_checks")
            ids = {client.id for client, _, _ in listed}
            return tuple(
                self._records(
                    "list_failing_checks", nsight_xml.failures, root, self._offsets, offset, ids
                )
            )
        found = await gather_limited(
            (self._failing(client.id) for client, _, _ in listed), self.config.concurrency
        )
        return tuple(f for failures in found for f in failures)

    async def aclose(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None

    # calls -------------------------------------------------------------------
    async def _clients(self) -> list[tuple[RmmClient, int | None, int | None]]:
        root, _ = await self._call("list_clients")
        listed = self._records("list_clients", nsight_xml.clients, root)
        wanted = set(self.config.clients)
        if wanted:
            listed = [c for c in listed if c[0].id in wanted or c[0].name in wanted]
        return listed

    async def _sites(self, client: RmmClient) -> list[RmmSite]:
        root, _ = await self._call("list_sites", clientid=client.id)
        return self._records("list_sites", nsight_xml.sites, root, client.id)

    async def _devices(self, kind: DeviceKind, client_id: str, site_id: str) -> list[RmmDevice]:
        service = f"list_{kind}s"
        root, _ = await self._call(service, siteid=site_id)
        return self._records(service, nsight_xml.devices, root, kind, client_id, site_id)

    async def _failing(self, client_id: str) -> list[RmmFailure]:
        root, offset = await self._call("list_failing_checks", clientid=client_id)
        return self._records(
            "list_failing_checks", nsight_xml.failures, root, self._offsets, offset
        )

    def _records(self, service: str, parse: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
        try:
            return parse(*args, **kw)
        except RmmError as exc:
            raise RmmError(f"nsight {service}: {exc}", reason=exc.reason) from None

    async def _call(self, service: str, **params: str) -> tuple[Element, int | None]:
        label = f"nsight {service}" + "".join(f" {k}={v}" for k, v in params.items())
        await self._pacer.wait()
        query = {
            "apikey": self.config.api_key.get_secret_value(),
            "service": service,
            **params,
        }
        reply = await fetch(
            self._http(),
            "GET",
            self._url,
            label=label,
            limit=self.config.max_body_bytes,
            timeout=self.config.timeout,
            params=query,
            headers={"User-Agent": self.config.user_agent, "Accept": "text/xml"},
        )
        if reply.status != 200:
            raise _http_error(reply, label)
        return nsight_xml.parse(reply.body, label)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session


def _http_error(reply: Reply, label: str) -> RmmError:
    status = reply.status
    if status in (401, 403):
        if _cloudflare(reply):
            return RmmError(
                f"{label}: HTTP {status}, blocked by the server's WAF (an HTML page); "
                "check user_agent",
                reason="not-xml",
                code=status,
            )
        return RmmError(
            f"{label}: HTTP {status}: refused (a wrong server or path, or the key)",
            reason="auth",
            code=status,
        )
    if 300 <= status < 400:
        target = URL(reply.headers.get("Location", "")).host or "elsewhere"
        return RmmError(
            f"{label}: HTTP {status}, redirected to {target}; configure that server",
            reason="http",
            code=status,
        )
    return RmmError(f"{label}: HTTP {status}", reason="http", code=status)


def _cloudflare(reply: Reply) -> bool:
    return (
        "cf-ray" in reply.headers
        or reply.headers.get("Server", "").lower() == "cloudflare"
        or b"cloudflare" in reply.body[:4096].lower()
    )
