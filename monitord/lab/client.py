"""`LabClient`: the control API from Python (tests, benchmarks, `monitord demo`)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import aiohttp

from monitord.lab.faults import Fault, FaultEvent
from monitord.lab.fleet import Fleet

DEFAULT_URL = "http://127.0.0.1:9788"


class LabClientError(Exception):
    """The control API refused a request: `status` and its `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class LabClient:
    """Async client of the lab control API.

    Use as `async with LabClient(url) as lab:`, or call `close()`. Every call
    raises LabClientError for an error answer and lets aiohttp's
    ClientError through for a connection problem. A session passed in is
    used as is and not closed.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._own_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def __aenter__(self) -> LabClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def fleet(self) -> Fleet:
        """The fleet the lab serves."""
        return Fleet.from_json(await self._request("GET", "/api/fleet", raw=True))

    async def inject(
        self, scope: str, name: str, fault: str, *, delay_ms: int | None = None
    ) -> str:
        """Inject a fault; returns its id (for `heal`)."""
        body: dict[str, Any] = {"scope": scope, "name": name, "fault": fault}
        if delay_ms is not None:
            body["delay_ms"] = delay_ms
        reply = await self._request("POST", "/api/faults", json=body)
        return str(reply["id"])

    async def heal(self, fault_id: str) -> Fault:
        """Heal one fault; returns it."""
        reply = await self._request("DELETE", f"/api/faults/{fault_id}")
        return Fault.from_dict(reply["healed"])

    async def heal_all(self) -> list[str]:
        """Heal every active fault; returns their ids."""
        reply = await self._request("POST", "/api/heal")
        return [str(i) for i in reply["healed"]]

    async def faults(self) -> list[Fault]:
        """Active faults, oldest first."""
        reply = await self._request("GET", "/api/faults")
        return [Fault.from_dict(f) for f in reply["faults"]]

    async def events(self, since: int = 0) -> list[FaultEvent]:
        """Inject/heal events with seq > `since`, oldest first."""
        reply = await self._request("GET", f"/api/events?since={since}")
        return [FaultEvent.from_dict(e) for e in reply["events"]]

    async def status(self) -> dict[str, Any]:
        """Counters: devices, listeners, requests and connections served, faults."""
        reply: dict[str, Any] = await self._request("GET", "/api/status")
        return reply

    async def _request(self, method: str, path: str, *, raw: bool = False, **kw: Any) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.request(method, self.base_url + path, **kw) as resp:
            if resp.status >= 400:
                try:
                    message = str((await resp.json())["error"])
                except (aiohttp.ContentTypeError, ValueError, KeyError, TypeError):
                    message = await resp.text()
                raise LabClientError(resp.status, message)
            return await resp.read() if raw else await resp.json()
