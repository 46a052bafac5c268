"""`Lab`: a fleet's listeners, its faults and its control API, started and stopped as one.

Up to `DEVICES_PER_SHARD` devices are served in the caller's own event loop;
above that (or when `shards` > 1 is asked for) every device is served by
worker processes, dealt out round-robin so each worker gets an even share of
every customer and site, and the caller's loop runs only the control API.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol

from monitord.lab.control import ControlServer
from monitord.lab.faults import Effect, EventLog, Fault, FaultBook, FaultEvent, UnknownFault
from monitord.lab.fleet import Fleet
from monitord.lab.rmm_view import RmmView
from monitord.lab.servers import BANNER, DeviceServers, LabError
from monitord.lab.shards import ProcessShard, raise_fd_limit

DEVICES_PER_SHARD = 5000


def default_shards(devices: int) -> int:
    """One process up to DEVICES_PER_SHARD devices, one more per started block above."""
    return max(1, math.ceil(devices / DEVICES_PER_SHARD))


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Shard(Protocol):
    async def start(self) -> None: ...
    async def apply(self, effects: Mapping[str, Effect]) -> None: ...
    async def stop(self) -> None: ...
    async def stats(self) -> dict[str, int]: ...


class Lab:
    """The simulated fleet, live on loopback, with fault injection.

    Use `async with Lab(fleet, control_port=0) as lab:` in tests (port 0 picks
    a free control port; read it back from `control_url`). `inject`/`heal`
    return only once every listener involved has been switched, so a client
    observes the fault as soon as the call returns. Never installs signal
    handlers; `monitord.lab.main` does that for the foreground command.
    """

    def __init__(
        self,
        fleet: Fleet,
        *,
        control_host: str = "127.0.0.1",
        control_port: int | None = 9788,
        tcp_port: int = 8022,
        http_port: int = 8080,
        shards: int | None = None,
        banner: bytes = BANNER,
        use_uvloop_in_shards: bool = True,
        clock: Callable[[], datetime] = _utc_now,
        rmm: bool = False,
    ) -> None:
        self.fleet = fleet
        # What an RMM says about the fleet (its faults plus RMM-only injections), for
        # an RMM emulator to serve; None: the lab has no RMM.
        self.rmm = RmmView(fleet) if rmm else None
        self.tcp_port, self.http_port = tcp_port, http_port
        self.shards = shards if shards is not None else default_shards(len(fleet.devices))
        if self.shards < 1:
            raise ValueError(f"shards must be at least 1, got {self.shards}")
        self.startup_seconds = 0.0
        self._control_host, self._control_port = control_host, control_port
        self._banner, self._uvloop = banner, use_uvloop_in_shards
        self._clock = clock
        self._book = FaultBook(fleet)
        self._events = EventLog()
        self._lock = asyncio.Lock()
        self._shard_of: dict[str, int] = {}
        self._shards: list[_Shard] = []
        self._control: ControlServer | None = None
        self._fleet_json: bytes | None = None

    @property
    def control_url(self) -> str:
        """`http://host:port` of the control API; raises LabError before start."""
        if self._control is None:
            raise LabError("the control API is not running")
        return self._control.url

    async def start(self) -> None:
        """Bind every listener, then the control API. Raises LabError (a port is
        taken, a worker failed) after undoing whatever had started."""
        started = time.perf_counter()
        try:
            await self._start_shards()
            if self._control_port is not None:
                self._control = ControlServer(self)
                await self._control.start(self._control_host, self._control_port)
        except BaseException:
            await self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started

    async def stop(self) -> None:
        """Close the control API and every listener; idempotent, never raises LabError."""
        if self._control is not None:
            await self._control.stop()
            self._control = None
        shards, self._shards = self._shards, []
        await asyncio.gather(*(s.stop() for s in shards))

    async def __aenter__(self) -> Lab:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def inject(
        self, scope: str, name: str, fault: str, *, delay_ms: int | None = None
    ) -> Fault:
        """Inject `fault` ("down", "service_down", "http_error", "slow") on the
        device, site or customer `name`. Raises ValueError for a bad scope, kind or
        delay, UnknownTarget (a LookupError) for an unknown name."""
        async with self._lock:
            new, effects = self._book.add(scope, name, fault, delay_ms, self._clock())
            await self._apply(effects)
            self._events.record("inject", new, new.injected_at)
            return new

    async def heal(self, fault_id: str) -> Fault:
        """Heal one fault; devices still covered by other faults keep those.
        Raises UnknownFault (a LookupError)."""
        async with self._lock:
            at = self._clock()
            old, effects = self._book.remove(fault_id)
            await self._apply(effects)
            self._events.record("heal", old, at)
            return old

    async def heal_all(self) -> tuple[Fault, ...]:
        """Heal every active fault; returns them, oldest first."""
        healed: list[Fault] = []
        for fault in self._book.active():
            try:
                healed.append(await self.heal(fault.id))
            except UnknownFault:  # healed concurrently by someone else
                continue
        return tuple(healed)

    def now(self) -> datetime:
        """The lab's clock (UTC)."""
        return self._clock()

    def faults(self) -> tuple[Fault, ...]:
        """Active faults, oldest first."""
        return self._book.active()

    def events(self, since: int = 0) -> tuple[FaultEvent, ...]:
        """Inject/heal events with `seq` > `since`, oldest first."""
        return self._events.since(since)

    def shard_of(self, device: str) -> int:
        """Index of the shard serving `device` (0 when unsharded). Raises KeyError."""
        return self._shard_of[device]

    def fleet_json(self) -> bytes:
        """`fleet.to_json()`, encoded once (it is ~2.5 MB at 10,000 devices)."""
        if self._fleet_json is None:
            self._fleet_json = self.fleet.to_json().encode()
        return self._fleet_json

    async def stats(self) -> dict[str, int]:
        """Counters summed over every shard (see DeviceServers.stats)."""
        total: dict[str, int] = {"shards": len(self._shards)}
        for shard in self._shards:
            for key, value in (await shard.stats()).items():
                total[key] = total.get(key, 0) + value
        return total

    async def _start_shards(self) -> None:
        names = [(d.name, d.address) for d in self.fleet.devices]
        slices = [names[i :: self.shards] for i in range(self.shards)]
        self._shard_of.clear()
        for i, part in enumerate(slices):
            self._shard_of.update((name, i) for name, _ in part)
        if self.shards == 1:
            raise_fd_limit(len(names))
            ports = {"tcp_port": self.tcp_port, "http_port": self.http_port}
            self._shards = [DeviceServers(names, banner=self._banner, **ports)]
        else:
            self._shards = [
                ProcessShard(
                    i,
                    part,
                    tcp_port=self.tcp_port,
                    http_port=self.http_port,
                    banner=self._banner,
                    use_uvloop=self._uvloop,
                )
                for i, part in enumerate(slices)
            ]
        results = await asyncio.gather(*(s.start() for s in self._shards), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def _apply(self, effects: Mapping[str, Effect]) -> None:
        per_shard: dict[int, dict[str, Effect]] = {}
        for name, effect in effects.items():
            per_shard.setdefault(self._shard_of[name], {})[name] = effect
        await asyncio.gather(*(self._shards[i].apply(part) for i, part in per_shard.items()))
